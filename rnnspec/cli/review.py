"""`rnnspec check`, `summary`, `fmt`: the review tools' command lines (the work is rnnspec/review.py)."""

from __future__ import annotations

import argparse
import sys

from rnnspec.cli.exit import Exit
from rnnspec.errors import Diagnostic, UserError
from rnnspec.files import load_spec, write_text
from rnnspec.review import format_source, render_summary, review_layer
from rnnspec.text import BOM, newline_of, normalize, split_lines, terminal_text


def cmd_check(args: argparse.Namespace) -> int:
    source, models = load_spec(args.file)
    warned = False
    for model in models:
        print(f"{args.file}: model `{model.name}`: ok")
        for warning in model.warnings:  # a graph's: unused values, a mask Keras ignores
            warned = True
            print(warning.render(args.file, source))
        for layer in model.layers:
            report = review_layer(model, layer)
            if report is None:
                continue
            print(f"  {layer.name} ({layer.kind}{'(' + layer.inner.kind + ')' if layer.inner else ''})")
            print(f"    {report.keras}")
            print(f"    {report.pytorch}")
            for text in report.warnings:
                warned = True
                print(Diagnostic(layer.pos, text, "warning").render(args.file, None))
    return Exit.MISMATCH if warned and args.strict else Exit.OK


def cmd_summary(args: argparse.Namespace) -> int:
    _, models = load_spec(args.file)
    if args.model:
        known = [m.name for m in models]
        models = [m for m in models if m.name == args.model]
        if not models:
            raise UserError(
                f"{args.file}: error: no model `{args.model}` in this file; it defines: {', '.join(known)}"
            )
    sys.stdout.write("\n".join(render_summary(m) for m in models))
    return Exit.OK


def cmd_fmt(args: argparse.Namespace) -> int:
    source, _ = load_spec(args.file)  # never reformat a spec that does not check
    formatted = format_source(source)
    # Written back as it came: a BOM and Windows (or old Mac) line endings are kept.
    bom = BOM if source.startswith(BOM) else ""
    formatted = bom + formatted.replace("\n", newline_of(source))
    if args.check:
        if formatted != source:
            print(f"{args.file}: would reformat", file=sys.stderr)
            _show_diff(source, formatted, args.file)
            return Exit.MISMATCH
        return Exit.OK
    if formatted != source:
        write_text(args.file, formatted)
        print(f"{args.file}: reformatted", file=sys.stderr)
    return Exit.OK


def _show_diff(old: str, new: str, path: str) -> None:
    """The change `fmt` would make, as a unified diff on stderr."""
    import difflib

    diff = difflib.unified_diff(
        split_lines(normalize(old)),
        split_lines(normalize(new)),
        f"{path}",
        f"{path} (formatted)",
        lineterm="",
    )
    for line in diff:
        print(terminal_text(line), file=sys.stderr)


def add_parsers(sub) -> None:
    check = sub.add_parser("check", help="validate a spec and report how each recurrent layer will run")
    check.add_argument("file")
    check.add_argument("--strict", action="store_true", help="exit 1 when there are warnings")
    check.set_defaults(func=cmd_check)
    summary = sub.add_parser(
        "summary", help="layers, output shapes and parameter counts, from the spec alone"
    )
    summary.add_argument("file")
    summary.add_argument("--model", help="only this model")
    summary.set_defaults(func=cmd_summary)
    fmt = sub.add_parser("fmt", help="rewrite a spec in canonical layout (comments kept)")
    fmt.add_argument("file")
    fmt.add_argument("--check", action="store_true", help="exit 1 if the file would change; write nothing")
    fmt.set_defaults(func=cmd_fmt)
