"""Random valid specs over the whole language: the Keras and PyTorch programs must agree.

The hypothesis profile comes from tests/conftest.py (the default tier draws a fifth of the `slow`
tier's derandomized examples; RNNSPEC_HYPOTHESIS_PROFILE=thorough ten times as many, random). A failure prints the shrunk spec, the
verification report and the generated PyTorch program.

Tolerance. Programs are held to `rnnspec verify`'s rule: |diff| <= 1e-5 in float32, or, where
random weights and unbounded activations (`exponential`, `linear`, `relu`, ...) make a stack
ill-conditioned and float32 round-off grows past that, agreement in float64 (the same two programs
rerun in float64 on the same weights and inputs, to FLOAT64_TOLERANCE relative: wide enough for
documented float64 differences such as `gelu`'s 5e-9, far below any semantic slip). A slip (a
gate, a bias, a mask, a direction) shows in float64 too.
"""

from __future__ import annotations

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from rnnspec.check import load_model
from rnnspec.compiler import generate
from rnnspec.equivalence.harness import Programs, Result, configure_frameworks, verify
from rnnspec.options import VerifyOptions
from rnnspec.verify import describe
from tests.helpers import examples
from tests.strategies import REGRESSION_SPECS, graph_specs, specs


def check_equivalent(source: str, *, float64_fallback: bool = False, **options) -> None:
    configure_frameworks()
    model = load_model(source)
    programs = Programs(generate(model, "keras", "fuzz.rnn"), generate(model, "pytorch", "fuzz.rnn"))
    try:
        result = verify(model, programs, VerifyOptions(**options), float64_judgement=float64_fallback)
    except Exception as exc:  # as `rnnspec verify` does: a program that does not run is a failure
        result = Result(
            model.name, passed=False, error=f"the programs did not run: {type(exc).__name__}: {exc}"
        )
    if result.roundoff:
        event("float32 roundoff only: the programs agree in float64")
    assert result.passed, f"{describe(result, 'fuzz.rnn')}\n{report(source, programs)}"


def report(source: str, programs: Programs) -> str:
    return f"--- spec ---\n{source}--- pytorch ---\n{programs.torch_code}"


@settings(max_examples=examples(300))
@given(source=specs())
def test_every_drawn_spec_is_valid_and_compiles(source):
    """Cheap and wide: the strategy draws only specs the checker accepts; both programs are Python."""
    model = load_model(source)
    for target in ("keras", "pytorch"):
        compile(generate(model, target, "fuzz.rnn"), f"fuzz_{target}.py", "exec")


@settings(max_examples=examples(10))
@given(source=specs(), steps=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_keras_and_pytorch_agree(source, steps, seed):
    """A few drawn specs here (two in the default tier, ten in its `slow`-tier copy); the `slow` tier
    draws the profile's full count below."""
    check_equivalent(source, float64_fallback=True, time=steps, seed=seed, chunks=2)


@pytest.mark.slow
@given(source=specs(), steps=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_keras_and_pytorch_agree_on_more_specs(source, steps, seed):
    check_equivalent(source, float64_fallback=True, time=steps, seed=seed, chunks=2)


@settings(max_examples=examples(200))
@given(source=graph_specs())
def test_every_drawn_graph_is_valid_and_compiles(source):
    """Graphs (v1): several inputs, merges, shared layers, initial states, explicit masks."""
    model = load_model(source)
    for target in ("keras", "pytorch"):
        compile(generate(model, target, "fuzz.rnn"), f"fuzz_{target}.py", "exec")


@settings(max_examples=examples(10))
@given(source=graph_specs(), steps=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_keras_and_pytorch_agree_on_graphs(source, steps, seed):
    """As for stacks: a few drawn graphs here, the profile's full count in the `slow` tier."""
    check_equivalent(source, float64_fallback=True, time=steps, seed=seed)


@pytest.mark.slow
@given(source=graph_specs(), steps=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_keras_and_pytorch_agree_on_more_graphs(source, steps, seed):
    check_equivalent(source, float64_fallback=True, time=steps, seed=seed)


@pytest.mark.parametrize("source", list(REGRESSION_SPECS.values()), ids=list(REGRESSION_SPECS))
def test_regression_spec(source):
    check_equivalent(source)
