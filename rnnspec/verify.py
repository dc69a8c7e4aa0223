"""`rnnspec verify`: the user-facing front of the equivalence harness."""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import sys
import traceback
import warnings
from pathlib import Path

from rnnspec.equivalence.extern import ExternContractError, user_code_path
from rnnspec.ir import Model


class VerifyError(Exception):
    """Code that does not load or run, or frameworks that are missing (exit 2)."""


@contextlib.contextmanager
def quiet_stderr():
    """TensorFlow's C++ start-up chatter goes straight to fd 2; hide it while importing."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_frameworks() -> None:
    from rnnspec.equivalence.harness import configure_frameworks

    configure_frameworks()
    # The one-timestep batch makes attention pooling's softmax run over a single value, on purpose.
    warnings.filterwarnings("ignore", message="You are using a softmax over axis")
    try:
        with quiet_stderr():
            import keras  # noqa: F401
            import torch  # noqa: F401
    except ImportError as exc:
        raise VerifyError(
            f"verify needs Keras (TensorFlow backend) and PyTorch: {exc}; "
            "install them with `pip install 'rnnspec[keras,torch]'`"
        ) from None


def prefix_model(model: Model, length: int) -> Model:
    """The model cut after its first `length` layers (a valid model: only the end may return states)."""
    cut = copy.deepcopy(model)
    cut.layers = cut.layers[:length]
    cut.outputs = list(cut.layers[-1].outputs)
    return cut


def first_divergent_layer(model: Model, source_name: str, **options) -> str | None:
    """Verify growing prefixes of the generated programs; name the first layer whose output differs."""
    found = first_divergence(model, source_name, **options)
    return found[0] if found else None


def first_divergence(model: Model, source_name: str, **options) -> tuple[str, str | None] | None:
    """The first layer whose output differs and, at a user's layer, which classes and the first
    position where they differ (its output, or the mask it produces)."""
    from rnnspec.compiler import generate
    from rnnspec.equivalence.extern import describe_layer, first_difference
    from rnnspec.equivalence.harness import Programs, verify

    for length in range(1, len(model.layers) + 1):
        cut = prefix_model(model, length)
        layer = model.layers[length - 1]
        programs = Programs(generate(cut, "keras", source_name), generate(cut, "pytorch", source_name))
        if layer.extern is None:
            if not verify(cut, programs, **options).passed:
                return layer.name, None
            continue
        differs = first_difference(cut, programs, **options)
        if differs:
            return layer.name, f"{describe_layer(layer)}; {differs}"
    return None


def verify_one(model: Model, source_name: str, args: argparse.Namespace):
    from rnnspec.compiler import generate
    from rnnspec.equivalence.harness import Programs, Result, verify

    keras_code = _read_code(args.keras_code) if args.keras_code else generate(model, "keras", source_name)
    torch_code = (
        _read_code(args.pytorch_code) if args.pytorch_code else generate(model, "pytorch", source_name)
    )
    options = dict(
        seed=args.seed, atol=args.atol, rtol=args.rtol, batch=args.batch, steps=args.time, chunks=args.chunks
    )
    if getattr(args, "weights", None):
        from rnnspec.port import read_weights

        options["keras_weights"] = read_weights(model, Path(args.weights), args.spec_of_weights)
    try:
        result = verify(model, Programs(keras_code, torch_code), **options)
    except ExternContractError as exc:  # a user's class does not do what its spec declares
        return Result(model.name, passed=False, error=f"the programs did not run: {exc}"), True
    except Exception as exc:  # user-edited code may fail in any way; report it, exit 2
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        result = Result(model.name, passed=False, error=f"the programs did not run: {detail}")
        return result, True
    # Layer by layer works by cutting the generated programs after each layer; code a user
    # edited cannot be cut, so its report names the worst position only.
    if not result.passed and result.error is None and not (args.keras_code or args.pytorch_code):
        found = first_divergence(model, source_name, **options)
        if found:
            result.first_divergent_layer, result.divergence = found
    if getattr(args, "gradients", False):
        from rnnspec.equivalence.gradients import GradientResult, verify_gradients

        try:
            result.gradients = verify_gradients(model, Programs(keras_code, torch_code), **options)
        except Exception as exc:  # as above: edited code may fail only under autograd
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            result.gradients = GradientResult(passed=False, error=f"the gradients did not run: {detail}")
            return result, True
    return result, False


def _read_code(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise VerifyError(f"{path}: error: cannot read the program: {exc}") from None


def describe(result, source: str) -> str:
    if result.error:
        return f"{source}: {result.name}: ERROR {result.error}"
    worst = result.worst
    output = result.outputs[worst.output] if worst.output < len(result.outputs) else str(worst.output)
    where = f"output `{output}`, row {worst.row}" + (
        f", timestep {worst.timestep}" if worst.timestep is not None else ""
    )
    head = "ok" if result.passed else "MISMATCH"
    line = (
        f"{source}: {result.name}: {head}  max |diff| {result.max_abs_diff:.3g} "
        f"({where}, batch '{worst.case}': keras {worst.keras:.7g}, pytorch {worst.torch:.7g}); "
        f"{len([c for c in result.cases if c != 'reset'])} batches: {', '.join(result.cases)}"
    )
    if not result.passed and result.divergence:
        line += f"\n  first layer that diverges: {result.divergence}"
    elif not result.passed and result.first_divergent_layer:
        line += f"\n  first layer that diverges: `{result.first_divergent_layer}`"
    if result.gradients is not None:
        line += f"\n  {result.gradients.describe()}"
    return line


def run_verify(args: argparse.Namespace) -> int:
    from rnnspec.cli import UsageError, load_spec

    loaded: list[tuple[str, list[Model]]] = []
    failed_spec = False
    for path in args.files:
        try:
            _, models = load_spec(path)
        except UsageError as exc:  # report every file's mistakes before stopping
            print(exc, file=sys.stderr)
            failed_spec = True
            continue
        if args.model:
            models = [m for m in models if m.name == args.model]
            if not models:
                raise UsageError(f"{path}: error: no model `{args.model}` in this file")
        loaded.append((path, models))
    if failed_spec:
        return 2
    if getattr(args, "weights", None):
        found = [m.name for _, models in loaded for m in models]
        if len(found) != 1:
            raise UsageError(
                f"rnnspec verify: error: --weights needs exactly one model; this run has {len(found)}"
                + (f" ({', '.join(found)}); choose one with --model" if found else "")
            )
        args.spec_of_weights = next(path for path, models in loaded if models)
    try:
        import_frameworks()
    except VerifyError as exc:
        print(f"rnnspec verify: error: {exc}", file=sys.stderr)
        return 2
    results = []
    errored = False
    for path, models in loaded:
        for model in models:
            try:
                with user_code_path(path, model):  # where the programs import a user's layers from
                    result, error = verify_one(model, Path(path).name, args)
            except VerifyError as exc:
                print(str(exc), file=sys.stderr)
                return 2
            errored |= error
            results.append((path, result))
            if not args.json:
                head, *rest = describe(result, path).split("\n")
                if getattr(args, "weights", None):
                    head += f"; trained weights from {args.weights}"
                print("\n".join([head, *rest]), flush=True)
    if args.json:
        extra = {"weights": args.weights} if getattr(args, "weights", None) else {}
        print(json.dumps({"models": [dict(r.as_json(), file=p, **extra) for p, r in results]}, indent=2))
    if errored:
        return 2
    return 0 if all(r.passed and (r.gradients is None or r.gradients.passed) for _, r in results) else 1
