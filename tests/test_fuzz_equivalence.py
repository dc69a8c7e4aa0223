"""Random valid specs over the whole language: the Keras and PyTorch programs must agree.

The hypothesis profile comes from tests/conftest.py ("ci" by default: 50 derandomized examples;
RNNSPEC_HYPOTHESIS_PROFILE=thorough for 500 random ones). A failure prints the shrunk spec, the
verification report and the generated PyTorch program.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnspec.check import load_model
from rnnspec.compiler import generate
from rnnspec.equivalence.harness import Programs, configure_frameworks, verify
from rnnspec.verify import describe
from tests.strategies import REGRESSION_SPECS, specs


def check_equivalent(source: str, **options) -> None:
    configure_frameworks()
    model = load_model(source)
    programs = Programs(generate(model, "keras", "fuzz.rnn"), generate(model, "pytorch", "fuzz.rnn"))
    result = verify(model, programs, **options)
    assert result.passed, (
        f"{describe(result, 'fuzz.rnn')}\n--- spec ---\n{source}--- pytorch ---\n{programs.torch_code}"
    )


@settings(
    max_examples=6 * settings().max_examples,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(source=specs())
def test_every_drawn_spec_is_valid_and_compiles(source):
    """Cheap and wide: the strategy draws only specs the checker accepts; both programs are Python."""
    model = load_model(source)
    for target in ("keras", "pytorch"):
        compile(generate(model, target, "fuzz.rnn"), f"fuzz_{target}.py", "exec")


@given(source=specs(), steps=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_keras_and_pytorch_agree(source, steps, seed):
    check_equivalent(source, steps=steps, seed=seed, chunks=2)


@pytest.mark.parametrize("source", list(REGRESSION_SPECS.values()), ids=list(REGRESSION_SPECS))
def test_regression_spec(source):
    check_equivalent(source)
