"""`rnnspec check`, `summary` and `fmt`."""

import pytest

from rnnspec.check import load_model
from rnnspec.cli import main
from rnnspec.compiler import compile_source
from rnnspec.equivalence.extern import user_code_path
from rnnspec.equivalence.harness import configure_frameworks, load_program
from rnnspec.ir import MERGE_KINDS
from rnnspec.review import format_source, summary_rows
from tests.golden import EXAMPLES, example_models

MESSY = """# header comment

model   sentiment  {   # trailing on header
  input tokens:int32[ * ]
    # own-line comment
  embedding( 1000,64,mask_zero = true )   # after embedding


      lstm(128,
           return_sequences=true) as enc  # multi-line
  dense(10,activation=softmax)
  # before close
}
# between
model b(batch_size=2) { input x: float32[5, 3]
lstm(2, stateful=true) }
# the end
"""

CANONICAL = """# header comment

model sentiment {  # trailing on header
    input tokens: int32[*]
    # own-line comment
    embedding(1000, 64, mask_zero=true)  # after embedding

    lstm(128, return_sequences=true) as enc  # multi-line
    dense(10, activation=softmax)
    # before close
}

# between
model b(batch_size=2) {
    input x: float32[5, 3]
    lstm(2, stateful=true)
}
# the end
"""


def test_fmt_canonical_layout_keeps_comments():
    assert format_source(MESSY) == CANONICAL


def test_fmt_is_idempotent_and_examples_are_canonical():
    assert format_source(CANONICAL) == CANONICAL
    for spec in EXAMPLES.glob("*.rnn"):
        text = spec.read_text()
        assert format_source(text) == text, spec.name


@pytest.mark.parametrize("target", ["keras", "pytorch"])
def test_fmt_then_compile_gives_the_same_program(target):
    for name in ("sentiment", "b"):
        assert compile_source(MESSY, target, "m.rnn", name) == compile_source(
            CANONICAL, target, "m.rnn", name
        )


def test_fmt_cli_check_and_write(tmp_path, capsys):
    spec = tmp_path / "m.rnn"
    spec.write_text(MESSY)
    assert main(["fmt", "--check", str(spec)]) == 1
    assert spec.read_text() == MESSY
    assert main(["fmt", str(spec)]) == 0
    assert spec.read_text() == CANONICAL
    assert main(["fmt", "--check", str(spec)]) == 0
    capsys.readouterr()
    spec.write_text("model m {\n input x: float32[*, 2]\n lstm(0)\n}\n")
    assert main(["fmt", str(spec)]) == 2
    assert spec.read_text() == "model m {\n input x: float32[*, 2]\n lstm(0)\n}\n"


def test_fmt_check_prints_a_unified_diff_and_writes_nothing(tmp_path, capsys):
    spec = tmp_path / "m.rnn"
    messy = "model m {\n  input x:float32[*, 2]\n    lstm(3)   # the encoder\n}\n"
    spec.write_text(messy)
    capsys.readouterr()
    assert main(["fmt", "--check", str(spec)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"{spec}: would reformat\n"
        f"--- {spec}\n"
        f"+++ {spec} (formatted)\n"
        "@@ -1,4 +1,4 @@\n"
        " model m {\n"
        "-  input x:float32[*, 2]\n"
        "-    lstm(3)   # the encoder\n"
        "+    input x: float32[*, 2]\n"
        "+    lstm(3)  # the encoder\n"
        " }\n"
    )
    assert spec.read_text() == messy


def test_check_reports_kernels_and_warnings(tmp_path, capsys):
    spec = tmp_path / "m.rnn"
    spec.write_text(
        "model m {\n    input tokens: int32[*]\n    embedding(10, 4, mask_zero=true)\n"
        "    lstm(3, return_sequences=true)\n    gru(3, reset_after=false)\n}\n"
    )
    assert main(["check", str(spec)]) == 0
    out = capsys.readouterr().out
    assert out == (
        f"{spec}: model `m`: ok\n"
        "  lstm_1 (lstm)\n"
        "    Keras on a GPU: cuDNN kernel, if every mask is right-padded with no fully padded row at run time\n"
        "    PyTorch: fused nn.LSTM over each row's unmasked steps (packed)\n"
        f"{spec}:4:5: warning: `lstm_1` is masked and cuDNN-eligible: on a GPU, Keras's cuDNN path outputs zeros "
        "at padded timesteps where its CPU path (and the generated PyTorch) repeats the last output, and it rejects "
        "left padding, holes and fully padded rows; pass `use_cudnn=False` in Keras for the CPU semantics\n"
        "  gru_1 (gru)\n"
        "    Keras on a GPU: generic kernel: reset_after=false\n"
        "    PyTorch: per-timestep loop KerasGRU: nn.GRU applies the reset gate after the recurrent matmul "
        "(reset_after=true only)\n"
    )
    assert main(["check", "--strict", str(spec)]) == 1


def test_check_clean_spec_strict_exits_0(capsys):
    assert main(["check", "--strict", str(EXAMPLES / "bidirectional.rnn")]) == 0
    out = capsys.readouterr().out
    assert "PyTorch: fused nn.LSTM\n" in out and "warning" not in out


def test_summary_table(capsys):
    assert main(["summary", str(EXAMPLES / "sentiment.rnn")]) == 0
    assert capsys.readouterr().out == (
        "model `sentiment`\n"
        "layer        kind       output shape      params (Keras)  params (PyTorch)\n"
        "-----------  ---------  ----------------  --------------  ----------------\n"
        "tokens       input      (None, None)                   0                 0\n"
        "embedding_1  embedding  (None, None, 64)          64,000            64,000\n"
        "lstm_1       lstm       (None, 128)               98,816            99,328\n"
        "dense_1      dense      (None, 10)                 1,290             1,290\n"
        "-----------  ---------  ----------------  --------------  ----------------\n"
        "total                                            164,106           164,618\n"
    )


@pytest.mark.parametrize("path, name", example_models(), ids=lambda v: v if isinstance(v, str) else v.stem)
def test_summary_counts_match_the_frameworks(path, name):
    configure_frameworks()
    source = path.read_text()
    model = load_model(source, name)
    with user_code_path(path, model):
        keras_model = load_program(compile_source(source, "keras", "x.rnn", name), "k").build_model()
        module = load_program(compile_source(source, "pytorch", "x.rnn", name), "t").build_model()
    rows = summary_rows(model)
    # A user layer's weights are known only to its built classes: the summary shows `?`.
    users = [r[0] for r in rows if r[3] is None]
    assert users == [layer.name for layer in model.layers if layer.extern is not None]
    assert sum(r[3] or 0 for r in rows) == keras_model.count_params() - sum(
        keras_model.get_layer(u).count_params() for u in users
    )
    assert sum(r[4] or 0 for r in rows) == sum(
        p.numel() for key, p in module.named_parameters() if key.split(".")[0] not in users
    )
    for layer_name, kind, _, keras_count, torch_count in rows[len(model.inputs) :]:
        if layer_name in users:
            continue
        if kind in MERGE_KINDS:  # no weights; Keras names an unnamed merge itself
            assert keras_count == torch_count == 0
            continue
        assert keras_count == keras_model.get_layer(layer_name).count_params()
        submodule = getattr(module, layer_name, None)
        assert torch_count == (sum(p.numel() for p in submodule.parameters()) if submodule is not None else 0)
