"""Random valid specs over the whole language: the Keras and PyTorch programs must agree.

The hypothesis profile comes from tests/conftest.py ("ci" by default: 50 derandomized examples;
RNNSPEC_HYPOTHESIS_PROFILE=thorough for 500 random ones). A failure prints the shrunk spec, the
verification report and the generated PyTorch program.

Tolerance. Programs are held to `rnnspec verify`'s default (|diff| <= 1e-5 in float32). Random
weights and unbounded activations in a recurrence (`exponential`, `linear`, `relu`, ...) can make
a stack ill-conditioned: outputs reach 1e3-1e30, or float32 roundoff is amplified step after step,
and the two frameworks' different (equally valid) orders of summation then part by more than
1e-5. So a float32 mismatch is accepted only when the very same two programs, run in float64 on
the same weights and inputs, agree to 1e-9 (relative): they compute the same function, and float32
cannot resolve it. A semantic slip (a gate, a bias, a mask, a direction) shows in float64 too.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from rnnspec.check import load_model
from rnnspec.compiler import generate
from rnnspec.equivalence import inputs as inputs_mod
from rnnspec.equivalence import weights as weights_mod
from rnnspec.equivalence.harness import Programs, Result, configure_frameworks, load_program, to_numpy, verify
from rnnspec.ir import Model
from rnnspec.verify import describe
from tests.strategies import REGRESSION_SPECS, specs

FLOAT64_TOLERANCE = 1e-9


def check_equivalent(source: str, *, float64_fallback: bool = False, **options) -> None:
    configure_frameworks()
    model = load_model(source)
    programs = Programs(generate(model, "keras", "fuzz.rnn"), generate(model, "pytorch", "fuzz.rnn"))
    try:
        result = verify(model, programs, **options)
    except Exception as exc:  # as `rnnspec verify` does: a program that does not run is a failure
        result = Result(
            model.name, passed=False, error=f"the programs did not run: {type(exc).__name__}: {exc}"
        )
    note = ""
    if not result.passed and result.error is None and float64_fallback:
        diff = float64_difference(model, programs, **options)
        if diff <= FLOAT64_TOLERANCE:
            event("float32 roundoff only: the programs agree in float64")
            return
        note = f"\nin float64 too: max relative difference {diff:.3g}"
    assert result.passed, f"{describe(result, 'fuzz.rnn')}{note}\n{report(source, programs)}"


def report(source: str, programs: Programs) -> str:
    return f"--- spec ---\n{source}--- pytorch ---\n{programs.torch_code}"


@contextlib.contextmanager
def keras_float64():
    import keras

    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)


def float64_difference(
    model: Model, programs: Programs, *, seed: int = 0, steps: int = 7, chunks: int = 3, batch: int = 6
) -> float:
    """The largest relative difference of the two programs run in float64, on verify's batches."""
    import numpy as np
    import torch

    with keras_float64():
        keras_program = load_program(programs.keras_code, f"{model.name}_keras64")
        torch_program = load_program(programs.torch_code, f"{model.name}_pytorch64")
        keras_model = keras_program.build_model()
        weights = weights_mod.random_keras_weights(model, seed)
        weights_mod.set_keras_weights(
            model,
            keras_model,
            {name: [a.astype(np.float64) for a in arrays] for name, arrays in weights.items()},
        )
        torch_module = torch_program.build_model()
        weights_mod.load_torch_state(torch_module, weights_mod.keras_to_torch(model, weights))
        torch_module.double().eval()
        if model.stateful:
            batches = inputs_mod.chunks(model, 2 * chunks, steps, seed)
        else:
            batches = inputs_mod.cases(model, batch, steps, seed)
        worst = 0.0
        for number, case in enumerate(batches):
            if model.stateful and number == chunks:
                keras_program.reset_states(keras_model)
                torch_module.reset_states()
            x = case.array.astype(np.float64) if case.array.dtype.kind == "f" else case.array
            keras_out = to_numpy(keras_model(x, training=False))
            with torch.no_grad():
                torch_out = to_numpy(torch_module(torch.from_numpy(x)))
            for k, t in zip(keras_out, torch_out, strict=True):
                same = (k == t) | (np.isnan(k) & np.isnan(t))  # equal infinities, NaN and NaN
                with np.errstate(invalid="ignore", over="ignore"):
                    diff = np.where(same, 0.0, np.abs(k - t) / np.maximum(np.abs(k), 1.0))
                worst = max(worst, float(np.nan_to_num(diff, nan=np.inf).max(initial=0.0)))
    return worst


@settings(max_examples=6 * settings().max_examples)
@given(source=specs())
def test_every_drawn_spec_is_valid_and_compiles(source):
    """Cheap and wide: the strategy draws only specs the checker accepts; both programs are Python."""
    model = load_model(source)
    for target in ("keras", "pytorch"):
        compile(generate(model, target, "fuzz.rnn"), f"fuzz_{target}.py", "exec")


@given(source=specs(), steps=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_keras_and_pytorch_agree(source, steps, seed):
    check_equivalent(source, float64_fallback=True, steps=steps, seed=seed, chunks=2)


@pytest.mark.parametrize("source", list(REGRESSION_SPECS.values()), ids=list(REGRESSION_SPECS))
def test_regression_spec(source):
    check_equivalent(source)
