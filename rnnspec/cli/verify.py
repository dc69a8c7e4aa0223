"""`rnnspec verify`: its command line (the work is rnnspec/verify.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rnnspec.cli.exit import Exit
from rnnspec.equivalence.extern import user_code_path
from rnnspec.errors import SpecError, UserError
from rnnspec.files import load_spec
from rnnspec.ir import Model
from rnnspec.options import VerifyOptions
from rnnspec.verify import VerifyError, describe, import_frameworks, roundoff_warning, verify_one

UsageError = UserError


def run_verify(args: argparse.Namespace) -> int:
    for option in ("weights", "keras_code", "pytorch_code"):
        if getattr(args, option, None) == "":  # an unset shell variable: never "verify without it"
            raise UsageError(f"rnnspec verify: error: the --{option.replace('_', '-')} path is empty")
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
            known = [m.name for m in models]
            models = [m for m in models if m.name == args.model]
            if not models:
                raise UsageError(
                    f"{path}: error: no model `{args.model}` in this file; it defines: {', '.join(known)}"
                )
        loaded.append((path, models))
    if failed_spec:
        return Exit.ERROR
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
        return Exit.ERROR
    results = []
    errored = False
    for path, models in loaded:
        for model in models:
            try:
                with user_code_path(path, model):  # where the programs import a user's layers from
                    result, error = verify_one(
                        model,
                        Path(path).name,
                        VerifyOptions.from_args(args),
                        keras_code=args.keras_code,
                        pytorch_code=args.pytorch_code,
                        weights=getattr(args, "weights", None),
                        spec_of_weights=getattr(args, "spec_of_weights", None),
                        gradients=getattr(args, "gradients", False),
                    )
            except VerifyError as exc:
                print(str(exc), file=sys.stderr)
                return Exit.ERROR
            except SpecError as exc:  # a kind or form a target does not support
                print(exc.render(path, load_spec(path)[0]), file=sys.stderr)
                return Exit.ERROR
            errored |= error
            results.append((path, result))
            if result.roundoff:
                print(roundoff_warning(result, path), file=sys.stderr, flush=True)
            if not args.json:
                head, *rest = describe(result, path).split("\n")
                if getattr(args, "weights", None):
                    head += f"; trained weights from {args.weights}"
                print("\n".join([head, *rest]), flush=True)
    if args.json:
        extra = {"weights": args.weights} if getattr(args, "weights", None) else {}
        print(
            json.dumps(
                {"models": [dict(r.as_json(), file=p, **extra) for p, r in results]},
                indent=2,
                allow_nan=False,
            )
        )
    if errored:
        return Exit.ERROR
    passed = all(r.passed and (r.gradients is None or r.gradients.passed) for _, r in results)
    return Exit.OK if passed else Exit.MISMATCH
