"""`rnnspec export`: its command line (the work is rnnspec/export.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rnnspec import options
from rnnspec.check import select_model
from rnnspec.cli.exit import Exit
from rnnspec.errors import SpecError, UserError
from rnnspec.export import FORMATS, ExportFailed, describe, export
from rnnspec.files import load_spec
from rnnspec.options import VerifyOptions
from rnnspec.text import escape_unprintable
from rnnspec.verify import VerifyError


def check_suffix(output: str, fmt: str) -> None:
    """Refuse an output named for another format (`-o m.onnx` with `--format torchscript`)."""
    suffix = Path(output).suffix.lower()
    named = {ext: name for name, ext in FORMATS.items()}.get(suffix)
    if named is not None and named != fmt:
        raise UserError(
            f"{escape_unprintable(output)}: error: the name ends in {suffix}, the suffix of --format {named}; "
            f"--format {fmt} writes a {FORMATS[fmt]} file (name it so, or pass --format {named})"
        )


def cmd_export(args: argparse.Namespace) -> int:
    check_suffix(args.output, args.format)
    source, models = load_spec(args.file)
    try:
        model = select_model(models, args.model)
    except SpecError as exc:
        raise UserError(exc.render(args.file, source)) from None
    options = VerifyOptions(seed=args.seed, atol=args.atol, rtol=args.rtol, batch=args.batch, time=args.time)
    try:
        exported = export(model, args.file, args.format, args.output, options, args.weights)
    except (VerifyError, ExportFailed) as exc:
        print(f"rnnspec export: error: {exc}" if isinstance(exc, VerifyError) else str(exc), file=sys.stderr)
        return Exit.ERROR
    print(describe(exported, args.file, args.format, args.output), flush=True)
    return Exit.OK if exported.result.passed else Exit.MISMATCH


def add_parsers(sub: Any) -> None:
    defaults = VerifyOptions()
    parser = sub.add_parser(
        "export",
        help="export the PyTorch program to ONNX, torch.export or TorchScript, and prove the artefact equals Keras",
        epilog="example:\n  rnnspec export examples/masking.rnn --format onnx -o masking.onnx",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", help="the .rnn spec")
    parser.add_argument("--format", required=True, choices=sorted(FORMATS))
    parser.add_argument("-o", "--output", required=True, help="the artefact to write (.onnx, .pt2, .pt)")
    parser.add_argument("--model", help="which model, when the file defines several")
    parser.add_argument(
        "--weights", metavar="FILE", help="trained weights (.keras, .weights.h5, .pt) to export and prove"
    )
    parser.add_argument(
        "--seed",
        type=options.seed,
        default=defaults.seed,
        help="seed of the proof's inputs, and of its weights without --weights (default 0)",
    )
    parser.add_argument("--atol", type=options.tolerance, default=defaults.atol, help="default 1e-5")
    parser.add_argument("--rtol", type=options.tolerance, default=defaults.rtol, help="default 0")
    parser.add_argument("--batch", type=options.batch, default=defaults.batch, help="default 6")
    parser.add_argument("--time", type=options.timesteps, default=defaults.time, help="default 7")
    parser.set_defaults(func=cmd_export)
