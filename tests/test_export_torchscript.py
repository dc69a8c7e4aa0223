"""torch.jit.script on the generated PyTorch programs: the scripted runtime against the step-by-step
reference, scripted programs saved, loaded back and proved against Keras by `rnnspec export
--format torchscript` (a stateful one carrying its states in its buffers), and the messages.

Every example and graph spec scripts and equals Keras in the slow tier
(tests/test_export.py::test_every_example_model_exports_and_equals_keras), and so do the fuzzers'
drawn specs and graphs, against the eager program (below).
"""

from __future__ import annotations

import shutil

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from rnnspec.check import load_models
from rnnspec.cli import main
from rnnspec.compiler import generate
from rnnspec.equivalence.harness import load_program
from rnnspec.runtime import torch_rnn as R
from tests.golden import EXAMPLES
from tests.strategies import graph_specs, specs
from tests.test_export import SPECS, padded_mask, reference


class OneStateLayer(nn.Module):
    """A masked one-state module's `masked`, as a scripted forward."""

    def __init__(self, rnn: nn.Module, zero_masked: bool) -> None:
        super().__init__()
        self.rnn = rnn
        self.zero_masked = zero_masked

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.rnn.masked(x, mask, state, zero_masked=self.zero_masked, states=True)


class TwoStatesLayer(nn.Module):
    """A masked LSTM's `masked`, as a scripted forward."""

    def __init__(self, rnn: nn.Module, zero_masked: bool) -> None:
        super().__init__()
        self.rnn = rnn
        self.zero_masked = zero_masked

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        return self.rnn.masked(x, mask, state, zero_masked=self.zero_masked, states=True)


def _flat(final):
    return final if isinstance(final, tuple) else (final,)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("initial", [False, True])
def test_scripted_masked_equals_the_masked_recurrence_at_every_position(kind, bidirectional, initial):
    """Scripted, `masked` of a fused module (right and left padding, holes, a fully padded row)
    gives the step-by-step reference's outputs, last outputs and final states, and the eager
    `masked`'s outputs where masked steps repeat the last output."""
    torch.manual_seed(0)
    rnn = getattr(R, f"Masked{kind}")(5, 4, batch_first=True, bidirectional=bidirectional)
    plain = getattr(nn, kind)(5, 4, batch_first=True, bidirectional=bidirectional)
    plain.load_state_dict(rnn.state_dict())  # the same parameters, under the same names
    x, mask = torch.randn(6, 7, 5), padded_mask()
    state = None
    if initial:
        state = torch.randn(2 if bidirectional else 1, 6, 4)
        state = (state, torch.randn_like(state)) if kind == "LSTM" else state
    layer = TwoStatesLayer if kind == "LSTM" else OneStateLayer
    want_out, want_last, want_final = reference(plain, x, mask, state)
    with torch.no_grad():
        out, last, final = torch.jit.script(layer(rnn, True))(x, mask, state)
        torch.testing.assert_close(out.double(), want_out, atol=1e-6, rtol=0)
        torch.testing.assert_close(last.double(), want_last, atol=1e-6, rtol=0)
        for found, want in zip(_flat(final), _flat(want_final), strict=True):
            torch.testing.assert_close(found.double(), want, atol=1e-6, rtol=0)
        repeated, _, _ = torch.jit.script(layer(rnn, False))(x, mask, state)
        eager, _, _ = rnn.masked(x, mask, state)
    torch.testing.assert_close(repeated, eager, atol=1e-6, rtol=0)
    assert not torch.equal(repeated, out)  # (the masked steps differ: the two modes are both run)


def _program(source: str, label: str):
    (model,) = load_models(source)
    return load_program(generate(model, "pytorch", f"{label}.rnn"), label)


def test_a_scripted_stepped_program_equals_the_eager_one_on_any_padding():
    """Stepped modules (a bidirectional GRU with reset_after=false, a relu LSTM returning its
    states) scripted: the per-timestep loop, each row stopping at its last unmasked step."""
    torch.manual_seed(2)
    module = _program(SPECS["stepped"], "stepped").build_model().eval()
    scripted = torch.jit.script(module)
    x = torch.randn(6, 7, 3)
    x[~padded_mask()] = 0.0
    with torch.no_grad():
        for found, want in zip(scripted(x), module(x), strict=True):
            torch.testing.assert_close(found, want, atol=1e-6, rtol=0)


def test_masking_exports_to_torchscript_and_the_artefact_holds_the_trained_weights(tmp_path, capsys):
    program = _program((EXAMPLES / "masking.rnn").read_text(), "masking")
    torch.manual_seed(3)
    trained = program.build_model().eval()
    torch.save(trained.state_dict(), tmp_path / "trained.pt")
    spec, out = str(EXAMPLES / "masking.rnn"), tmp_path / "masking.pt"
    args = [
        "export",
        spec,
        "--format",
        "torchscript",
        "-o",
        str(out),
        "--weights",
        str(tmp_path / "trained.pt"),
    ]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{spec}: masked_features: torchscript ok  max |diff| ")
    assert lines[0].endswith(
        "8 batches: mixed padding, no padding, right padding, interior holes, one step valid, one row, "
        "one timestep, 260 timesteps"
    )
    assert lines[1:] == [f"  wrote {out}: inputs x; outputs dense_1"]
    loaded = torch.jit.load(str(out))
    x = torch.randn(5, 9, 8)
    x[~padded_mask(5, 9, seed=2)] = -1.0
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), trained(x), atol=1e-6, rtol=0)


def test_a_stateful_artefact_carries_its_states_and_forgets_them_on_reset(tmp_path, capsys):
    """A stateful masked program (an LSTM before a bidirectional GRU returning its states) keeps
    its states in its buffers once scripted: proved against Keras over chunks and a reset, and
    call for call the eager program's outputs."""
    spec = tmp_path / "stateful_masked.rnn"
    spec.write_text(SPECS["stateful_masked"])
    out = tmp_path / "sm.pt"
    assert main(["export", str(spec), "--format", "torchscript", "-o", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{spec}: sm: torchscript ok  max |diff| ")
    assert lines[0].endswith(
        "6 batches: chunk 1, chunk 2, chunk 3, reset, after reset, chunk 1, after reset, chunk 2, "
        "after reset, chunk 3"
    )
    assert lines[1] == (
        f"  wrote {out}: inputs tokens; outputs bidirectional_1.forward, bidirectional_1.backward, "
        "bidirectional_1.forward_h, bidirectional_1.backward_h"
    )
    module = _program(SPECS["stateful_masked"], "sm").build_model().eval()
    loaded = torch.jit.load(str(out))
    weights = loaded.state_dict()  # TorchScript lists the states too (not persistent=False)
    assert sorted(set(weights) - set(module.state_dict())) == ["_lstm_1_c", "_lstm_1_h"]
    module.load_state_dict({key: value for key, value in weights.items() if not key.startswith("_")})
    loaded.reset_states()
    chunks = [
        torch.tensor([[1, 2, 0], [0, 3, 4]]),
        torch.tensor([[0, 0, 0], [5, 0, 6]]),
        torch.tensor([[7, 8, 0], [1, 1, 1]]),
    ]
    with torch.no_grad():
        first = [loaded(chunk) for chunk in chunks]
        assert [torch.equal(a, b) for a, b in zip(loaded(chunks[0]), first[0], strict=True)] != [True] * 4
        loaded.reset_states()
        again = [loaded(chunk) for chunk in chunks]
        for chunk, found, repeat in zip(chunks, first, again, strict=True):
            for f, r, w in zip(found, repeat, module(chunk), strict=True):
                torch.testing.assert_close(f, w, atol=1e-6, rtol=0)
                assert torch.equal(f, r)


def test_a_scripted_program_refuses_train_mode_where_keras_dropout_needs_the_loop():
    """Recurrent dropout on a fused layer steps the layer in train mode, a module built in
    `forward`: scripted, eval mode is the eager program's and train mode raises, never silently
    drops no unit."""
    source = (
        "model d {\n    input tokens: int32[*]\n    embedding(20, 4, mask_zero=true)\n"
        "    gru(3, dropout=0.2, return_sequences=true)\n    lstm(2, recurrent_dropout=0.1)\n}\n"
    )
    module = _program(source, "dropout").build_model().eval()
    scripted = torch.jit.script(module)
    tokens = torch.tensor([[1, 2, 0, 0], [0, 3, 4, 5], [0, 0, 0, 0]])
    with torch.no_grad():
        torch.testing.assert_close(scripted(tokens), module(tokens), atol=1e-6, rtol=0)
        scripted.train()
        with pytest.raises(torch.jit.Error, match="Keras's recurrent dropout runs eagerly only"):
            scripted(tokens)
        module.train()
        assert module(tokens).shape == (3, 2)  # eagerly, the stepped loop with Keras's masks


def test_a_user_layer_torchscript_cannot_compile_exits_2_with_its_message(tmp_path, capsys):
    shutil.copytree(EXAMPLES / "my_layers", tmp_path / "my_layers")
    shutil.copy(EXAMPLES / "silence.rnn", tmp_path)
    layers = tmp_path / "my_layers" / "torch_layers.py"
    text = layers.read_text()
    old = "    def compute_mask(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:\n"
    assert old in text
    layers.write_text(text.replace(old, "    def compute_mask(self, x, mask=None, **options):\n"))
    spec, out = tmp_path / "silence.rnn", tmp_path / "silence.pt"
    assert main(["export", str(spec), "--format", "torchscript", "-o", str(out)]) == 2
    captured = capsys.readouterr()
    line = text.splitlines().index(old.rstrip("\n")) + 1
    assert captured.out == ""
    assert captured.err == (
        f"{spec}: error: torchscript cannot export `silence`: NotSupportedError: Compiled functions "
        "can't take variable number of arguments or use keyword-only arguments with defaults "
        f"({layers}:{line})\n"
    )
    assert not out.exists()


def _scripted_equals_eager(source: str, seed: int) -> None:
    """The program of `source` scripted equals it eagerly, in eval mode, on verify's batches (or
    its chunks, call after call, for a stateful model): eager equals Keras, the fuzzers prove."""
    import numpy as np

    from rnnspec.equivalence import inputs as inputs_mod

    (model,) = load_models(source)
    torch.manual_seed(seed)
    module = load_program(generate(model, "pytorch", "drawn.rnn"), "drawn").build_model().eval()
    scripted = torch.jit.script(module)
    cases = inputs_mod.chunks(model, 3, 5, seed) if model.stateful else inputs_mod.cases(model, 4, 5, seed)
    for case in cases:
        arrays = case.array if isinstance(case.array, tuple) else (case.array,)
        args = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
        with torch.no_grad():
            want, found = module(*args), scripted(*args)
        want = want if isinstance(want, tuple) else (want,)
        found = found if isinstance(found, tuple) else (found,)
        for f, w in zip(found, want, strict=True):
            # (NaN where the eager program overflows to NaN too: some drawn weights do.)
            torch.testing.assert_close(
                f, w, atol=1e-6, rtol=0, equal_nan=True, msg=lambda m, case=case: f"{case.name}: {m}"
            )


@pytest.mark.slow
@settings(max_examples=100)
@given(source=specs(), seed=st.integers(0, 2**16))
def test_every_drawn_program_scripts_and_equals_the_eager_one(source, seed):
    _scripted_equals_eager(source, seed)


@pytest.mark.slow
@settings(max_examples=100)
@given(source=graph_specs(), seed=st.integers(0, 2**16))
def test_every_drawn_graph_scripts_and_equals_the_eager_one(source, seed):
    _scripted_equals_eager(source, seed)
