"""Deployment of the generated PyTorch programs: the runtime helpers unit-tested on their own,
`torch.jit.trace` on any padding, `torch.export`, ONNX and TorchScript artefacts proved against
Keras by `rnnspec export` (TorchScript's own tests: tests/test_export_torchscript.py), and its
messages.

The ONNX tests need onnx, onnxscript and onnxruntime (the `test` extra lists them); they skip,
saying so, where those are not installed.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnnspec import runtime
from rnnspec.cli import main
from rnnspec.compiler import compile_source
from rnnspec.equivalence.harness import load_program
from rnnspec.export import FORMATS
from rnnspec.runtime import torch_rnn as R
from tests.golden import EXAMPLES

HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime", "onnxscript"))
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="onnx, onnxscript and onnxruntime are not installed")


def reference(rnn, x, mask, state=None):
    """Keras's masked recurrence, step by step with torch's cells: (outputs, last, final)."""
    lstm = isinstance(rnn, nn.LSTM)
    cell_cls = {nn.LSTM: nn.LSTMCell, nn.GRU: nn.GRUCell}.get(type(rnn), nn.RNNCell)
    outs, lasts, finals = [], [], []
    for direction in range(2 if rnn.bidirectional else 1):
        suffix = "_reverse" if direction else ""
        kwargs = {} if cell_cls is not nn.RNNCell else {"nonlinearity": rnn.nonlinearity}
        cell = cell_cls(rnn.input_size, rnn.hidden_size, **kwargs).double()
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).data = getattr(rnn, f"{name}_l0{suffix}").detach().double()
        batch = x.shape[0]
        h = torch.zeros(batch, rnn.hidden_size, dtype=torch.float64)
        c = torch.zeros_like(h)
        if state is not None:
            h = (state[0] if lstm else state)[direction].double()
            c = state[1][direction].double() if lstm else c
        out = torch.zeros_like(h)
        ys = [None] * x.shape[1]
        order = range(x.shape[1] - 1, -1, -1) if direction else range(x.shape[1])
        for t in order:
            valid = mask[:, t : t + 1]
            if lstm:
                nh, nc = cell(x[:, t].double(), (h, c))
                c = torch.where(valid, nc, c)
            else:
                nh = cell(x[:, t].double(), h)
            h = torch.where(valid, nh, h)
            out = torch.where(valid, h, out)
            ys[t] = torch.where(valid, h, 0.0)
        outs.append(torch.stack(ys, 1))
        lasts.append(out)
        finals.append((h, c) if lstm else h)
    final = tuple(torch.stack(f) for f in zip(*finals)) if lstm else torch.stack(finals)
    return torch.cat(outs, -1), torch.stack(lasts), final


def padded_mask(batch=6, steps=7, seed=0):
    """Right and left padding, holes, a fully padded row and a full one."""
    rng = np.random.default_rng(seed)
    mask = rng.random((batch, steps)) > 0.4
    mask[0, 4:] = False
    mask[1, :3] = False
    mask[2] = False
    mask[3] = True
    return torch.from_numpy(mask)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("initial", [False, True])
def test_keras_rnn_equals_the_masked_recurrence_at_every_position(kind, bidirectional, initial):
    torch.manual_seed(0)
    rnn = getattr(nn, kind)(5, 4, batch_first=True, bidirectional=bidirectional)
    x = torch.randn(6, 7, 5)
    mask = padded_mask()
    directions = 2 if bidirectional else 1
    state = None
    if initial:
        state = torch.randn(directions, 6, 4)
        state = (state, torch.randn(directions, 6, 4)) if kind == "LSTM" else state
    want_out, want_last, want_final = reference(rnn, x, mask, state)
    with torch.no_grad():
        out, last, final = R.keras_rnn(rnn, x, mask, state, zero_masked=True, states=True)
        scanned = R.scan_rnn(rnn, x, mask, state, zero_masked=True)
    for found in ((out, last, final), scanned):
        torch.testing.assert_close(found[0].double(), want_out, atol=1e-6, rtol=0)
        torch.testing.assert_close(found[1].double(), want_last, atol=1e-6, rtol=0)
        finals = found[2] if isinstance(found[2], tuple) else (found[2],)
        wanted = want_final if isinstance(want_final, tuple) else (want_final,)
        for f, w in zip(finals, wanted, strict=True):
            torch.testing.assert_close(f.double(), w, atol=1e-6, rtol=0)


def test_pack_rows_moves_each_rows_steps_to_the_front_in_order():
    mask = padded_mask()
    x = torch.arange(6 * 7, dtype=torch.float32).view(6, 7, 1)
    packed = R.pack_rows(x, mask, mask.sum(1))
    for row in range(6):
        valid = x[row, mask[row], 0]
        assert packed[row, : len(valid), 0].tolist() == valid.tolist()
        assert packed[row, len(valid) :, 0].eq(0).all()


def test_the_lstm_cell_state_survives_a_forget_gate_of_exactly_zero():
    torch.manual_seed(1)
    rnn = nn.LSTM(2, 3, batch_first=True)
    with torch.no_grad():
        rnn.bias_ih_l0[3:6] = -1e4  # sigmoid(f) underflows to 0: the log is -inf
    x, mask = torch.randn(2, 5, 2), torch.tensor([[1, 1, 0, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    _, _, (h, c) = R.keras_rnn(rnn, x, mask, states=True)
    _, _, (want_h, want_c) = reference(rnn, x, mask)
    assert torch.isfinite(c).all()
    torch.testing.assert_close(h.double(), want_h, atol=1e-6, rtol=0)
    torch.testing.assert_close(c.double(), want_c, atol=1e-6, rtol=0)


def test_the_runtime_text_is_what_programs_get():
    text, imports = runtime.source({"keras_rnn"})
    assert (
        text.startswith("def exporting() -> bool:")
        and "def scan_rnn(" in text
        and "class KerasLSTM" not in text
    )
    assert imports == {"torch", "F", "nn"}
    program = compile_source((EXAMPLES / "masking.rnn").read_text(), "pytorch", "masking.rnn")
    assert text in program
    assert "from torch.nn.utils.rnn" not in program


def _load(stem: str):
    sys.path.insert(0, str(EXAMPLES))
    try:
        source = (EXAMPLES / f"{stem}.rnn").read_text()
        return load_program(compile_source(source, "pytorch", f"{stem}.rnn"), stem).build_model().eval()
    finally:
        sys.path.remove(str(EXAMPLES))


def test_jit_trace_on_an_unpadded_batch_holds_on_any_padding():
    """Traced on a batch without padding, the program still skips the padding of another batch
    (the old packed kernel, traced so, was up to 0.82 off)."""
    torch.manual_seed(0)
    module = _load("masking")
    plain = torch.randn(6, 7, 8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.no_grad():
            traced = torch.jit.trace(module, (plain,), check_trace=False)
    # No "Converting a tensor to a Python boolean might cause the trace to be incorrect" from the
    # program: under a trace it compares no sizes.
    assert [str(w.message) for w in caught if w.filename.startswith("<rnnspec")] == []
    x = torch.randn(6, 7, 8)
    x[~padded_mask()] = -1.0
    with torch.no_grad():
        assert torch.equal(traced(x), module(x))
        assert not torch.equal(module(x), module(torch.where(x == -1.0, 0.0, x)))


# Beyond the examples: stepped modules (a GRU with reset_after=false, a relu LSTM) returning
# their states, and a stateful masked LSTM before a bidirectional GRU that returns its states.
SPECS = {
    "stepped": "model stepped {\n    input x: float32[*, 3]\n    masking(mask_value=0.0)\n"
    "    bidirectional(gru(4, reset_after=false, return_sequences=true))\n"
    "    lstm(3, activation=relu, return_state=true)\n}\n",
    "stateful_masked": "model sm(batch_size=2) {\n    input tokens: int32[*]\n    embedding(9, 4, mask_zero=true)\n"
    "    lstm(3, stateful=true, return_sequences=true)\n"
    "    bidirectional(gru(2, return_state=true), merge_mode=none)\n}\n",
    "rebound": "model rebound {\n    input x: float32[*, 3]\n    y = lstm(4, return_sequences=true)(x)\n"
    "    x = dense(2)(y)\n    output x, y\n}\n",
}


def run_export(tmp_path, capsys, stem: str, fmt: str) -> str:
    spec = EXAMPLES / f"{stem}.rnn"
    if stem in SPECS:
        spec = tmp_path / f"{stem}.rnn"
        spec.write_text(SPECS[stem])
    out = tmp_path / f"{stem}.{fmt}"
    code = main(["export", str(spec), "--format", fmt, "-o", str(out)])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code == 0 and out.is_file(), text
    assert f"{fmt} ok" in text and "nothing written" not in text
    return text


@pytest.mark.parametrize("stem", ["masking", "stepped"])
def test_torch_export_artefact_equals_keras(tmp_path, capsys, stem):
    text = run_export(tmp_path, capsys, stem, "torch-export")
    assert "interior holes, one step valid, one row, one timestep, 260 timesteps" in text
    # The weights under the program's names (`lstm_1.weight_ih_l0`, not `model.lstm_1...`).
    source = SPECS[stem] if stem in SPECS else (EXAMPLES / f"{stem}.rnn").read_text()
    module = load_program(compile_source(source, "pytorch", f"{stem}.rnn"), stem).build_model()
    assert list(torch.export.load(str(tmp_path / f"{stem}.torch-export")).state_dict) == list(
        module.state_dict()
    )


@needs_onnx
@pytest.mark.parametrize("stem", ["attention", "paragraphs", "silence", "stateful_masked"])
def test_onnx_artefact_equals_keras(tmp_path, capsys, stem):
    text = run_export(tmp_path, capsys, stem, "onnx")
    if stem == "paragraphs":  # the carried state as explicit inputs and outputs
        assert "inputs x, lstm_1_h, lstm_1_c; outputs dense_1, lstm_1_h_next, lstm_1_c_next" in text
        import onnx

        graph = onnx.load(str(tmp_path / "paragraphs.onnx")).graph
        assert [i.name for i in graph.input] == ["x", "lstm_1_h", "lstm_1_c"]
        assert [o.name for o in graph.output] == ["dense_1", "lstm_1_h_next", "lstm_1_c_next"]
        assert "after reset, chunk 3" in text
    if stem == "stateful_masked":
        assert "inputs tokens, lstm_1_h, lstm_1_c; outputs bidirectional_1.forward," in text


def test_the_artefact_holds_the_trained_weights_given(tmp_path, capsys):
    torch.manual_seed(3)
    trained = _load("masking")
    torch.save(trained.state_dict(), tmp_path / "trained.pt")
    out = tmp_path / "masking.pt2"
    args = ["export", str(EXAMPLES / "masking.rnn"), "--format", "torch-export", "-o", str(out)]
    assert main([*args, "--weights", str(tmp_path / "trained.pt")]) == 0, capsys.readouterr()
    x = torch.randn(5, 9, 8)
    x[~padded_mask(5, 9, seed=2)] = -1.0
    loaded = torch.export.load(str(out))
    with torch.no_grad():
        torch.testing.assert_close(loaded.module()(x), trained(x), atol=1e-6, rtol=0)
    # Under the program's names (`lstm_1.weight_ih_l0`, not `model.lstm_1.weight_ih_l0`): they load.
    assert list(loaded.state_dict) == list(trained.state_dict())
    fresh = _load("masking")
    fresh.load_state_dict(loaded.state_dict)
    with torch.no_grad():
        assert torch.equal(fresh(x), trained(x))


def test_onnx_without_its_packages_is_a_message(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    out = tmp_path / "m.onnx"
    assert main(["export", str(EXAMPLES / "masking.rnn"), "--format", "onnx", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "rnnspec export: error: --format onnx needs onnx, onnxscript and onnxruntime" in err
    assert "pip install onnx onnxscript onnxruntime" in err and not out.exists()


def test_export_refuses_bad_options_and_outputs(tmp_path, capsys):
    spec = str(EXAMPLES / "masking.rnn")
    assert main(["export", spec, "--format", "onnx", "-o", str(tmp_path / "missing" / "m.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["export", spec, "--format", "onnx", "-o", spec]) == 2
    assert "refusing to overwrite an input file" in capsys.readouterr().err
    assert main(["export", spec, "--format", "onnx", "--model", "nope", "-o", str(tmp_path / "m.onnx")]) == 2
    assert "nope" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["export", spec, "--format", "tflite", "-o", str(tmp_path / "m.onnx")])
    assert exit_.value.code == 2
    assert "invalid choice: 'tflite'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("fmt", "name", "named"), [("torchscript", "m.onnx", "onnx"), ("onnx", "m.PT2", "torch-export")]
)
def test_export_refuses_an_output_named_for_another_format(tmp_path, capsys, fmt, name, named):
    out = tmp_path / name
    suffix = out.suffix.lower()
    assert main(["export", str(EXAMPLES / "masking.rnn"), "--format", fmt, "-o", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"{out}: error: the name ends in {suffix}, the suffix of --format {named}; --format {fmt} writes a "
        f"{FORMATS[fmt]} file (name it so, or pass --format {named})\n"
    )
    assert not list(tmp_path.iterdir())


# Graphs: several inputs (explicit masks and states among them), several outputs, merges, shared
# layers; one export per format here, the rest in the slow tier below.
GRAPHS = EXAMPLES.parent / "tests" / "data" / "graphs"
DIFF = r"(0|\d(?:\.\d+)?(?:e[-+]\d+)?)"


def exact_line(template: str, line: str) -> None:
    """`line` is `template` exactly, where `{diff}` is a max |diff| below the default 1e-5."""
    pattern = DIFF.join(re.escape(part) for part in template.split("{diff}"))
    match = re.fullmatch(pattern, line)
    assert match, f"{line!r}\nis not\n{template!r}"
    assert all(float(found) < 1e-5 for found in match.groups())


def test_a_graph_exports_to_torch_export_with_a_free_length_per_input(tmp_path, capsys):
    """seq2seq's artefact takes `source, target` and returns `probs`, proved against Keras, and
    takes a source and a target of different lengths (each its own dynamic dimension)."""
    from rnnspec.check import load_models

    models = {m.name: m for m in load_models((EXAMPLES / "seq2seq.rnn").read_text())}
    program = load_program(compile_source_of(models["seq2seq"]), "seq2seq")
    torch.manual_seed(4)
    trained = program.build_model().eval()
    torch.save(trained.state_dict(), tmp_path / "trained.pt")
    out, spec = tmp_path / "s.pt2", str(EXAMPLES / "seq2seq.rnn")
    args = ["export", spec, "--model", "seq2seq", "--format", "torch-export", "-o", str(out)]
    assert main([*args, "--weights", str(tmp_path / "trained.pt")]) == 0
    lines = capsys.readouterr().out.splitlines()
    exact_line(
        f"{spec}: seq2seq: torch-export ok  max |diff| {{diff}} vs Keras (output `probs`, row 1, "
        "timestep 6, batch '260 timesteps'); 8 batches: mixed padding, no padding, right padding, "
        "interior holes, one step valid, one row, one timestep, 260 timesteps",
        lines[0],
    )
    assert lines[1:] == [f"  wrote {out}: inputs source, target; outputs probs"]
    loaded = torch.export.load(str(out))
    assert loaded.graph_signature.user_inputs == ("source", "target")
    # The weights under the program's names (`encoder.weight_ih_l0`, not `model.encoder.weight_ih_l0`).
    assert list(loaded.state_dict) == list(trained.state_dict())
    rng = np.random.default_rng(5)
    source = torch.from_numpy(rng.integers(1, 5000, size=(3, 5)).astype(np.int32))
    source[0, 3:] = 0  # right padding, masked
    source[1, :2] = 0  # left padding
    target = torch.from_numpy(rng.integers(1, 6000, size=(3, 11)).astype(np.int32))
    with torch.no_grad():
        found, want = loaded.module()(source, target), trained(source, target)
    assert found.shape == (3, 11, 6000)
    torch.testing.assert_close(found, want, atol=1e-6, rtol=0)


def compile_source_of(model) -> str:
    from rnnspec.compiler import generate

    return generate(model, "pytorch", "seq2seq.rnn")


@needs_onnx
def test_a_graph_with_a_mask_input_and_a_state_input_exports_to_onnx(tmp_path, capsys):
    """explicit.rnn: a bool mask input and a state input, four outputs; the ONNX graph's inputs
    and outputs carry the spec's names in its order, with a free batch and free lengths."""
    import onnx

    spec, out = str(GRAPHS / "explicit.rnn"), tmp_path / "e.onnx"
    assert main(["export", spec, "--format", "onnx", "-o", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    exact_line(
        f"{spec}: explicit: onnx ok  max |diff| {{diff}} vs Keras (output `y`, row 5, timestep 2, "
        "batch 'one step valid'); 8 batches: mixed padding, no padding, right padding, interior holes, one step valid, one row, "
        "one timestep, 260 timesteps",
        lines[0],
    )
    assert lines[1:] == [f"  wrote {out}: inputs x, m, h0; outputs y, h, z, w"]
    graph = onnx.load(str(out)).graph

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert [(i.name, dims(i)[0], dims(i)[2:]) for i in graph.input] == [
        ("x", "batch", [3]),
        ("m", "batch", []),
        ("h0", "batch", []),
    ]
    assert all(isinstance(dims(graph.input[k])[1], str) for k in (0, 1))  # free lengths
    assert [o.name for o in graph.output] == ["y", "h", "z", "w"]


@pytest.mark.slow
@needs_onnx
def test_an_output_named_as_an_input_is_renamed_in_the_artefact(tmp_path, capsys):
    """`x = dense(2)(y)` rebinds the input's name: an ONNX graph names each value once."""
    import onnx

    text = run_export(tmp_path, capsys, "rebound", "onnx")
    assert text.endswith(f"  wrote {tmp_path / 'rebound.onnx'}: inputs x; outputs x_out, y\n")
    graph = onnx.load(str(tmp_path / "rebound.onnx")).graph
    assert [i.name for i in graph.input] == ["x"] and [o.name for o in graph.output] == ["x_out", "y"]


# Every model of every example, and the graphs of tests/data/graphs, under both formats.
ALL_MODELS = [
    (path, name)
    for path in [*sorted(EXAMPLES.glob("*.rnn")), *sorted(GRAPHS.glob("*.rnn"))]
    for name in re.findall(r"^model (\w+)", path.read_text(), flags=re.M)
]
# The artefact's inputs and outputs, where they are more than the spec's one input and its output.
NAMES = {
    "decoder_step": "inputs token, h0, c0; outputs probs, h, c",
    "encoder": "inputs source; outputs h, c",
    "three_heads": "inputs frames; outputs tags, topic, score",
    "review_classifier": "inputs tokens, meta; outputs probs",
    "siamese": "inputs left, right; outputs score",
    "streaming": "inputs x, side, lstm_1_h, lstm_1_c, gru_1_h; outputs w, h, lstm_1_h_next, lstm_1_c_next, gru_1_h_next",
    "merges": "inputs a, b, f; outputs r2, r3, r4, r5, r6, r7, r8, r9, r10, r1",
    "bidi": "inputs t, s; outputs f, b, gfh, gbh, q, o",
    "dropped": "inputs src, tgt; outputs y, z, p",
    "explicit": "inputs x, m, h0; outputs y, h, z, w",
    "stepped": "inputs x, h0, c0; outputs y, h, c, g, k",
    "paragraphs": "inputs x, lstm_1_h, lstm_1_c; outputs dense_1, lstm_1_h_next, lstm_1_c_next",
}


# A TorchScript artefact keeps a stateful model's states in its buffers: no state inputs or outputs.
SCRIPTED_NAMES = {
    "streaming": "inputs x, side; outputs w, h",
    "paragraphs": "inputs x; outputs dense_1",
}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["torch-export", pytest.param("onnx", marks=needs_onnx), "torchscript"])
@pytest.mark.parametrize(("path", "name"), ALL_MODELS, ids=[f"{p.stem}-{n}" for p, n in ALL_MODELS])
def test_every_example_model_exports_and_equals_keras(tmp_path, capsys, path, name, fmt):
    out = tmp_path / f"{name}{FORMATS[fmt]}"
    code = main(["export", str(path), "--model", name, "--format", fmt, "-o", str(out)])
    text = capsys.readouterr()
    lines = text.out.splitlines()
    assert code == 0 and out.is_file(), text.out + text.err
    assert lines[0].startswith(f"{path}: {name}: {fmt} ok  max |diff| ")
    names = {**NAMES, **SCRIPTED_NAMES} if fmt == "torchscript" else NAMES
    if name in names:
        assert lines[1] == f"  wrote {out}: {names[name]}"


# Layers that compute a shorter time axis from the input's (a strided or `valid` convolution, a
# pooling): the computed length may be 1 (and is, on the proof's shortest batch) while the example
# torch traces on has more; torch used to guard the artefact's input length against that 1
# (`x.size()[1] >= 5` refused the 3 and 4 timesteps Keras takes).
WINDOWED_SPECS = {
    "strided_conv": "conv1d(4, 3, strides=2, padding=valid)\n    lstm(8)\n    dense(1)",
    "pooling": "average_pooling1d(pool_size=2)\n    gru(8)",
    "same_conv": "conv1d(4, 3, strides=2, padding=same)\n    lstm(8)",
    "dilated_conv": "conv1d(4, 3, dilation_rate=2)\n    gru(8, return_sequences=true)",
    "causal_conv": "conv1d(4, 3, padding=causal, dilation_rate=2)\n    gru(8)",
    "conv_then_dense": "conv1d(4, 3, strides=2)\n    time_distributed(dense(6))\n    lstm(8)",
    "conv_then_bidirectional": "conv1d(4, 3, strides=2)\n"
    "    bidirectional(lstm(8, return_sequences=true))\n    dense(2)",
    "conv_then_stepped": "conv1d(4, 3, strides=2)\n    gru(8, reset_after=false)",
    "max_pooling": "max_pooling1d(pool_size=2)\n    lstm(8)",
    "max_pooling_same": "max_pooling1d(pool_size=3, padding=same)\n    simple_rnn(8)",
    "average_pooling_same": "average_pooling1d(pool_size=3, strides=2, padding=same)\n    lstm(8)",
    "wide_stride_same": "average_pooling1d(pool_size=2, strides=3, padding=same)\n    lstm(8)",
    "conv_then_pooling": "conv1d(4, 3, padding=same)\n    max_pooling1d(pool_size=2)\n"
    "    lstm(8, return_sequences=true)",
    "pooling_then_mask": "max_pooling1d(pool_size=3, strides=2)\n    layer_normalization()\n"
    "    masking()\n    gru(8, return_sequences=true)\n    dense(1)",
    "conv2d": "reshape(-1, 8, 1)\n    conv2d(2, 3, strides=2)\n    reshape(-1, 6)\n    lstm(8)",
    "conv2d_same": "reshape(-1, 8, 1)\n    conv2d(2, 3, strides=[2, 1], padding=same)\n"
    "    max_pooling2d(2)\n    reshape(-1, 8)\n    gru(8)",
}


def windowed_spec_text(name: str) -> str:
    return f"model {name} {{\n    input x: float32[*, 8]\n    {WINDOWED_SPECS[name]}\n}}\n"


def windowed_spec(tmp_path, name: str) -> str:
    spec = tmp_path / f"{name}.rnn"
    spec.write_text(windowed_spec_text(name))
    return str(spec)


def test_a_strided_convolution_exports_where_its_length_is_1(tmp_path, capsys):
    """conv1d(3, strides=2) makes 1 step of 3 and of 4: the artefact takes both, as Keras does,
    and refuses 2 (no window), as Keras and the eager program do."""
    spec, out = windowed_spec(tmp_path, "strided_conv"), tmp_path / "c.pt2"
    program = load_program(compile_source(Path(spec).read_text(), "pytorch", "strided_conv.rnn"), "s")
    torch.manual_seed(1)
    module = program.build_model().eval()
    torch.save(module.state_dict(), tmp_path / "trained.pt")
    args = ["export", spec, "--format", "torch-export", "-o", str(out)]
    assert main([*args, "--weights", str(tmp_path / "trained.pt")]) == 0
    lines = capsys.readouterr().out.splitlines()
    exact_line(
        f"{spec}: strided_conv: torch-export ok  max |diff| {{diff}} vs Keras (output `dense_1`, row 5, "
        "batch 'right padding'); 6 batches: mixed padding, no padding, right padding, one row, 3 timesteps, "
        "260 timesteps",
        lines[0],
    )
    assert lines[1:] == [f"  wrote {out}: inputs x; outputs dense_1"]
    loaded = torch.export.load(str(out))
    # The artefact's weights under the program's names (not `model.conv1d_1.weight`): they load.
    assert list(loaded.state_dict) == list(module.state_dict())
    fresh = program.build_model().eval()
    fresh.load_state_dict(loaded.state_dict)
    artefact = loaded.module()
    for steps in (3, 4, 5, 11):
        x = torch.randn(2, steps, 8)
        with torch.no_grad():
            torch.testing.assert_close(artefact(x), module(x), atol=1e-6, rtol=0)
    with pytest.raises(AssertionError, match=re.escape("Guard failed: x.size()[1] >= 3")):
        artefact(torch.randn(2, 2, 8))


@pytest.mark.parametrize(
    ("fmt", "row"), [("torch-export", 2), pytest.param("onnx", 0, marks=[needs_onnx, pytest.mark.slow])]
)
def test_a_pooling_before_a_gru_exports_where_its_length_is_1(tmp_path, capsys, fmt, row):
    spec, out = windowed_spec(tmp_path, "pooling"), tmp_path / f"p{FORMATS[fmt]}"
    assert main(["export", spec, "--format", fmt, "-o", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    exact_line(
        f"{spec}: pooling: {fmt} ok  max |diff| {{diff}} vs Keras (output `gru_1`, row {row}, "
        "batch '2 timesteps'); 6 batches: mixed padding, no padding, right padding, one row, 2 timesteps, "
        "260 timesteps",
        lines[0],
    )


def test_the_windowed_helpers_are_the_plain_calls_eagerly():
    """Eagerly, channels_last is the view torch.transpose / torch.permute gave (the export's
    contiguous copy is for torch.export only) and max_pool_valid is F.max_pool1d, bit for bit."""
    for x in (torch.randn(2, 3, 5), torch.randn(2, 3, 5, 4)):
        axes = (0, 2, 1) if x.dim() == 3 else (0, 2, 3, 1)
        view = R.channels_last(x)
        assert view.data_ptr() == x.data_ptr() and view.stride() == torch.permute(x, axes).stride()
    x = torch.randn(3, 11, 4)
    want = torch.transpose(F.max_pool1d(torch.transpose(x, 1, 2), 3, 2), 1, 2)
    found = R.max_pool_valid(x, 3, 2)
    assert torch.equal(found, want) and found.stride() == want.stride()


def test_same_padding_pads_as_tensorflow_at_every_length():
    """pad_same's ceiling (a floor of positive numbers, which the ONNX exporter keeps) is
    TensorFlow's: max((ceil(n / s) - 1) * s + span - n, 0) cells, the odd one after; and so is
    pad_same_2d's on each axis."""
    for length in range(1, 30):
        for kernel in range(1, 6):
            for stride in range(1, 5):
                for dilation in (1, 2) if stride == 1 else (1,):
                    span = (kernel - 1) * dilation + 1
                    total = max((-(-length // stride) - 1) * stride + span - length, 0)
                    before, after = total // 2, total - total // 2
                    x = torch.arange(1.0, length + 1).view(1, 1, -1)
                    assert torch.equal(R.pad_same(x, kernel, stride, dilation), F.pad(x, (before, after)))
                    column = x.view(1, 1, -1, 1)
                    padded = R.pad_same_2d(column, (kernel, 1), (stride, 1), dilation)
                    assert torch.equal(padded, F.pad(column, (0, 0, before, after)))


@needs_onnx
def test_a_strided_same_convolution_exports_to_onnx(tmp_path, capsys):
    """`same` padding's output count, ceil(n / s), is computed as a floor of positive numbers:
    the ONNX exporter rounds `-(-n // s)` toward zero (one output short on an odd length:
    onnxruntime refused 1 timestep). The initializers keep the program's weight names."""
    import onnx

    spec, out = windowed_spec(tmp_path, "same_conv"), tmp_path / "s.onnx"
    assert main(["export", spec, "--format", "onnx", "-o", str(out)]) == 0, capsys.readouterr()
    lines = capsys.readouterr().out.splitlines()
    exact_line(
        f"{spec}: same_conv: onnx ok  max |diff| {{diff}} vs Keras (output `lstm_1`, row 3, batch 'one timestep'); "
        "6 batches: mixed padding, no padding, right padding, one row, one timestep, 260 timesteps",
        lines[0],
    )
    assert lines[1:] == [f"  wrote {out}: inputs x; outputs lstm_1"]
    program = load_program(compile_source(Path(spec).read_text(), "pytorch", "same_conv.rnn"), "s")
    names = [i.name for i in onnx.load(str(out)).graph.initializer if not i.name.startswith("val_")]
    assert {"conv1d_1.weight", "conv1d_1.bias"} <= set(names) <= set(program.build_model().state_dict())


# Inputs named as what deployable's generated forward used to look up by name (its helper,
# builtins): a parameter of that forward, each hid it ('FakeTensor' object is not callable).
SHADOWING = {
    "size_oblivious": "model so {\n    input size_oblivious: float32[*, 8]\n    conv1d(4, 3, strides=2)\n"
    "    lstm(8)\n}\n",
    "zip": "model zp(batch_size=2) {\n    input zip: float32[*, 8]\n    lstm(6, stateful=true)\n}\n",
}
SHADOWING_NAMES = {
    "size_oblivious": ("so", "inputs size_oblivious; outputs lstm_1", "one row, 3 timesteps, 260 timesteps"),
    "zip": (
        "zp",
        "inputs zip, lstm_1_h, lstm_1_c; outputs lstm_1, lstm_1_h_next, lstm_1_c_next",
        "after reset, chunk 3",
    ),
}


@pytest.mark.parametrize("fmt", ["torch-export", pytest.param("onnx", marks=[needs_onnx, pytest.mark.slow])])
@pytest.mark.parametrize("name", list(SHADOWING))
def test_an_input_named_as_a_helper_or_builtin_exports(tmp_path, capsys, name, fmt):
    spec, out = tmp_path / f"{name}.rnn", tmp_path / f"n{FORMATS[fmt]}"
    spec.write_text(SHADOWING[name])
    assert main(["export", str(spec), "--format", fmt, "-o", str(out)]) == 0, capsys.readouterr()
    lines = capsys.readouterr().out.splitlines()
    model, names, batches = SHADOWING_NAMES[name]
    assert lines[0].startswith(f"{spec}: {model}: {fmt} ok  max |diff| ") and lines[0].endswith(batches)
    assert lines[1:] == [f"  wrote {out}: {names}"]


def _conv_lstm():
    source = windowed_spec_text("strided_conv")
    torch.manual_seed(2)
    return load_program(compile_source(source, "pytorch", "strided_conv.rnn"), "c").build_model().eval()


def test_deployable_without_states_is_the_model_under_its_own_names():
    """A program without state: the same parameters under the same names, the same signature,
    bit-identical outputs eagerly; torch.jit.script compiles it (as the model's class)."""
    import inspect

    from rnnspec.export import deployable

    module = _conv_lstm()
    program = deployable(module)
    assert list(program.state_dict()) == list(module.state_dict())
    assert all(p is q for p, q in zip(program.parameters(), module.parameters(), strict=True))
    assert list(inspect.signature(program.forward).parameters) == ["x"]
    x = torch.randn(3, 9, 8)
    with torch.no_grad():
        want = module(x)
        assert torch.equal(program(x), want)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            scripted = torch.jit.script(program)
        assert torch.equal(scripted(x), want)
    assert type(module).forward is module.forward.__func__  # the model itself is left as it was


@pytest.mark.parametrize("missing", ["setting", "module"])
def test_deployable_runs_where_torch_has_no_size_oblivious_setting(monkeypatch, missing):
    """torch before `backed_size_oblivious` (pyproject allows torch 2.2): `config.patch` of an
    unknown key raises AttributeError; the module, or its config, absent. deployable runs the
    model as it is, bit for bit, with states and without."""
    from torch.fx.experimental import _config as config

    from rnnspec.export import deployable

    if missing == "setting":  # as `del config.backed_size_oblivious` hides it, leaving no override behind
        monkeypatch.setattr(config._config["backed_size_oblivious"], "hide", True)
        assert not hasattr(config, "backed_size_oblivious")
    else:
        monkeypatch.setitem(sys.modules, "torch.fx.experimental._config", None)
    module, x = _conv_lstm(), torch.randn(3, 9, 8)
    with torch.no_grad():
        assert torch.equal(deployable(module)(x), module(x))
    source = SHADOWING["zip"]
    stateful = load_program(compile_source(source, "pytorch", "zip.rnn"), "z").build_model().eval()
    x, h, c = torch.randn(2, 5, 8), torch.randn(1, 2, 6), torch.randn(1, 2, 6)
    with torch.no_grad():
        out, h1, c1 = deployable(stateful)(x, h, c)
        stateful._lstm_1_h, stateful._lstm_1_c = h, c
        assert torch.equal(out, stateful(x)) and torch.equal(h1, stateful._lstm_1_h)
        assert torch.equal(c1, stateful._lstm_1_c)


def test_the_documented_export_of_a_program_runs_as_written(tmp_path, capsys, monkeypatch):
    """docs/deployment.md's `conv_lstm.rnn`, its compile command and its Python, as written."""
    import shlex

    text = (Path(__file__).parent.parent / "docs" / "deployment.md").read_text()
    section = text[text.index("### Exporting a program yourself") :]
    spec, python = re.findall(r"```(?:python)?\n(.*?)```", section, flags=re.S)[:2]
    command = re.search(r"compiled with `rnnspec (compile [^`]+)`", section)[1]
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    Path("conv_lstm.rnn").write_text(spec)
    assert main(shlex.split(command)) == 0, capsys.readouterr()
    capsys.readouterr()
    torch._dynamo.reset()
    try:
        exec(compile(python, "deployment.md", "exec"), {})
    finally:
        sys.modules.pop("conv_lstm_torch", None)
    assert capsys.readouterr().out == "torch.Size([3, 8])\n"


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["torch-export", pytest.param("onnx", marks=needs_onnx)])
@pytest.mark.parametrize("name", list(WINDOWED_SPECS))
def test_every_windowed_layer_exports_where_its_length_is_1(tmp_path, capsys, name, fmt):
    """Each spec's shortest batch (the proof's) makes a computed length of 1 (`valid` and strided
    windows; `same` and `causal` keep the length, 1 on `one timestep`)."""
    from rnnspec.check import load_models
    from rnnspec.equivalence.inputs import min_steps
    from rnnspec.kinds import kind_of

    spec, out = windowed_spec(tmp_path, name), tmp_path / f"w{FORMATS[fmt]}"
    assert main(["export", spec, "--format", fmt, "-o", str(out)]) == 0, capsys.readouterr()
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith(f"{spec}: {name}: {fmt} ok  max |diff| ")
    (model,) = load_models(Path(spec).read_text())
    shortest = min_steps(model)
    assert f", {'one timestep' if shortest == 1 else f'{shortest} timesteps'}, 260 timesteps" in line
    length = shortest
    for layer in model.layers:
        if layer.kind in ("conv1d", "max_pooling1d", "average_pooling1d", "conv2d", "max_pooling2d"):
            length = kind_of(layer).steps_out(layer, length)
    assert length == 1


# A graph (two inputs of their own lengths, a convolution and a pooling) and a stateful stack.
WINDOWED_MODELS = {
    "graph_conv": "model graph_conv {\n    input x: float32[*, 8]\n    input y: float32[*, 8]\n"
    "    a = conv1d(4, 3, strides=2)(x)\n    b = max_pooling1d(3, strides=2)(y)\n"
    "    h = lstm(6)(a)\n    g = gru(6)(b)\n    s = add()(h, g)\n    output s\n}\n",
    "stateful_conv": "model stateful_conv(batch_size=2) {\n    input x: float32[*, 8]\n"
    "    conv1d(4, 3, strides=2)\n    lstm(6, stateful=true)\n}\n",
}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["torch-export", pytest.param("onnx", marks=needs_onnx)])
@pytest.mark.parametrize("name", list(WINDOWED_MODELS))
def test_a_windowed_graph_and_stateful_stack_export(tmp_path, capsys, name, fmt):
    spec, out = tmp_path / f"{name}.rnn", tmp_path / f"w{FORMATS[fmt]}"
    spec.write_text(WINDOWED_MODELS[name])
    assert main(["export", str(spec), "--format", fmt, "-o", str(out)]) == 0, capsys.readouterr()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{spec}: {name}: {fmt} ok  max |diff| ")
    if name == "graph_conv":
        assert lines[0].endswith("one row, 3 timesteps, 260 timesteps")
    else:  # the shortest chunk (3 steps, one convolved) among them
        assert "chunk 3" in lines[0] and lines[1] == (
            f"  wrote {out}: inputs x, lstm_1_h, lstm_1_c; outputs lstm_1, lstm_1_h_next, lstm_1_c_next"
        )
