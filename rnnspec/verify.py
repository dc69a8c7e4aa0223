"""`rnnspec verify`: the user-facing front of the equivalence harness."""

from __future__ import annotations

import copy
import traceback
from pathlib import Path

from rnnspec.compiler import generate
from rnnspec.equivalence.divergence import first_difference
from rnnspec.equivalence.extern import ExternContractError, describe_layer
from rnnspec.equivalence.gradients import GradientResult, verify_gradients
from rnnspec.equivalence.harness import Programs, Result, verify
from rnnspec.frameworks import VerifyError, import_frameworks, quiet_stderr
from rnnspec.ir import Model
from rnnspec.options import VerifyOptions
from rnnspec.port import read_weights

__all__ = ["VerifyError", "describe", "import_frameworks", "quiet_stderr", "roundoff_warning", "verify_one"]


def prefix_model(model: Model, length: int) -> Model:
    """The model cut after its first `length` layers (a valid model: only the end may return states)."""
    cut = copy.deepcopy(model)
    if model.is_graph:  # the first `length` statements; every value of the last is an output
        cut.nodes = cut.nodes[:length]
        kept = {id(node.layer) for node in cut.nodes}
        cut.layers = [layer for layer in cut.layers if id(layer) in kept]
        cut.outputs = [key for key in cut.nodes[-1].outputs if not key.startswith("_#")]
        return cut
    cut.layers = cut.layers[:length]
    cut.outputs = list(cut.layers[-1].outputs)
    return cut


def legacy_options(options: VerifyOptions) -> dict:
    """The keyword arguments of the proofs that take them one by one (gradients, user layers)."""
    return dict(
        seed=options.seed,
        atol=options.atol,
        rtol=options.rtol,
        batch=options.batch,
        steps=options.time,
        chunks=options.chunks,
    )


def first_divergence(
    model: Model, source_name: str, options: VerifyOptions, **extra
) -> tuple[str, str | None] | None:
    """The first layer whose output differs and, at a user's layer, which classes and the first
    position where they differ (its output, or the mask it produces), or what it raised."""

    steps = model.nodes if model.is_graph else model.layers
    for length in range(1, len(steps) + 1):
        cut = prefix_model(model, length)
        layer = model.nodes[length - 1].layer if model.is_graph else model.layers[length - 1]
        programs = Programs(generate(cut, "keras", source_name), generate(cut, "pytorch", source_name))
        if layer.extern is None:
            if not verify(cut, programs, options, **extra).passed:
                return layer.name, None
            continue
        try:
            differs = first_difference(cut, programs, **legacy_options(options), **extra)
        except Exception as exc:  # the user's layer raises: say what verify's own run saw
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            differs = verify(cut, programs, options, **extra).problem or f"it raises {detail}"
        if differs:
            return layer.name, f"{describe_layer(layer)}; {differs}"
    return None


def verify_one(
    model: Model,
    source_name: str,
    options: VerifyOptions,
    *,
    keras_code: str | None = None,
    pytorch_code: str | None = None,
    weights: str | None = None,
    spec_of_weights: str | None = None,
    gradients: bool = False,
):
    """Verify one model: the generated programs, or the edited ones at `keras_code` / `pytorch_code`."""

    keras_text = _read_code(keras_code) if keras_code else generate(model, "keras", source_name)
    torch_text = _read_code(pytorch_code) if pytorch_code else generate(model, "pytorch", source_name)
    extra = {}
    if weights:
        extra["keras_weights"] = read_weights(model, Path(weights), spec_of_weights)
    try:
        result = verify(model, Programs(keras_text, torch_text), options, **extra)
    except ExternContractError as exc:  # a user's class does not do what its spec declares
        return Result(model.name, passed=False, error=f"the programs did not run: {exc}"), True
    except Exception as exc:  # user-edited code may fail in any way; report it, exit 2
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        result = Result(model.name, passed=False, error=f"the programs did not run: {detail}")
        return result, True
    # Layer by layer works by cutting the generated programs after each layer; code a user
    # edited cannot be cut, so its report names the worst position only.
    if not result.passed and result.error is None and not (keras_code or pytorch_code):
        found = first_divergence(model, source_name, options, **extra)
        if found:
            result.first_divergent_layer, result.divergence = found
    if gradients:
        try:
            result.gradients = verify_gradients(
                model, Programs(keras_text, torch_text), **legacy_options(options), **extra
            )
        except Exception as exc:  # as above: edited code may fail only under autograd
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            result.gradients = GradientResult(passed=False, error=f"the gradients did not run: {detail}")
            return result, True
    return result, False


def _read_code(path: str) -> str:
    """An edited program's text; a syntax error is the user's, told at its file:line:col."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise VerifyError(f"{path}: error: cannot read the program: {exc}") from None
    try:
        compile(text, path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f"{path}:{exc.lineno or 1}:{exc.offset or 1}"
        raise VerifyError(f"{where}: error: the program is not valid Python: {exc.msg}") from None
    except ValueError as exc:  # a NUL byte
        raise VerifyError(f"{path}: error: the program is not valid Python: {exc}") from None
    return text


def describe(result, source: str) -> str:
    if result.error:
        return f"{source}: {result.name}: ERROR {result.error}"
    if result.problem:
        line = f"{source}: {result.name}: MISMATCH {result.problem}"
        if result.divergence:
            line += f"\n  first layer that diverges: {result.divergence}"
        elif result.first_divergent_layer:
            line += f"\n  first layer that diverges: `{result.first_divergent_layer}`"
        return line
    worst = result.worst
    output = result.outputs[worst.output] if worst.output < len(result.outputs) else str(worst.output)
    where = f"output `{output}`, row {worst.row}" + (
        f", timestep {worst.timestep}" if worst.timestep is not None else ""
    )
    head = "ok" if result.passed else "MISMATCH"
    if result.roundoff:
        head = "ok (agree in float64)"
    line = (
        f"{source}: {result.name}: {head}  max |diff| {result.max_abs_diff:.3g} "
        f"({where}, batch '{worst.case}': keras {worst.keras:.7g}, pytorch {worst.torch:.7g}); "
        f"{len([c for c in result.cases if c != 'reset'])} batches: {', '.join(result.cases)}; "
        f"{proved_modes(result)}"
    )
    if result.float64_diff is not None and not result.roundoff:
        line += (
            f"\n  in float64 too: relative difference {result.float64_diff:.3g} "
            f"(batch '{result.float64_case}'), so not float32 round-off"
        )
    elif result.float64_error is not None:
        line += f"\n  the float64 rerun did not run ({result.float64_error}); float32 decides"
    if not result.passed and result.divergence:
        line += f"\n  first layer that diverges: {result.divergence}"
    elif not result.passed and result.first_divergent_layer:
        line += f"\n  first layer that diverges: `{result.first_divergent_layer}`"
    if result.gradients is not None:
        line += f"\n  {result.gradients.describe()}"
    return line


def roundoff_warning(result, source: str) -> str:
    return (
        f"{source}: {result.name}: warning: agree in float64 (float32 round-off grows to "
        f"{result.max_abs_diff:.3g} here, at {result.max_rel_diff:.3g} relative; in float64 the "
        f"programs differ by {result.float64_diff:.3g} relative)"
    ) + (
        f"; {result.float64_overflow} values overflow float64 too and were not compared"
        if result.float64_overflow
        else ""
    )


def proved_modes(result) -> str:
    """Which object was proved: the module build_model() returns, in which modes."""
    returned = {True: "train", False: "eval", None: "?"}[result.returned_training]
    proved = " and ".join(f".{mode}()" for mode in result.modes)
    text = f"proved build_model() (returned in {returned} mode) after {proved}"
    if result.modes == ["eval"] and result.train_skipped:
        text += f" (.train() not compared: {result.train_skipped})"
    if result.batches_run:
        text += f", {result.batches_run} runs"
    return text
