"""`rnnspec import` and `rnnspec port`: bring a trained Keras model into rnnspec, weights and all.

The work is rnnspec/importer.py and rnnspec/port.py; this module is their command lines.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rnnspec.check import load_model
from rnnspec.cli.exit import Exit
from rnnspec.equivalence.extern import ExternContractError, user_code_path
from rnnspec.errors import SpecError, UserError, first_lines
from rnnspec.files import check_output, read_spec, require_regular_file, write_text
from rnnspec.importer import ImportRefused, import_model
from rnnspec.port import FRAMEWORK, programs_for, read_weights, unknown_format, weights_format, write_weights
from rnnspec.text import escape_unprintable, terminal_text

UsageError = UserError


def cmd_import(args: argparse.Namespace) -> int:
    source = Path(args.model)
    require_regular_file(args.model)  # what is missing first, then what is in the way
    if args.output is not None:  # `-o ""` (an unset shell variable) is refused, not stdout
        check_output(args.output, [source], force=args.force)
    output = Path(args.output) if args.output is not None else None
    try:
        imported = import_model(source, after_preprocessing=args.after_preprocessing)
    except ImportRefused as exc:
        lines = [f"{source}: error: cannot import the model; these have no equivalent in the language:"]
        lines += first_lines(
            [f"  {escape_unprintable(message)}" for message in exc.problems]
        )  # one line each
        print(terminal_text("\n".join(lines)), file=sys.stderr)  # names from the archive, escaped
        return Exit.ERROR
    if output is None:
        sys.stdout.write(imported.text)
    else:
        write_text(output, imported.text, [source], force=args.force)
    if imported.cut:
        last = imported.cut[-1].split("`")[1]
        print(
            terminal_text(
                f"{source}: note: cut the preprocessing front {', '.join(imported.cut)}; the spec takes "
                f"what `{last}` emits. Run it in Keras, e.g. "
                f"keras.Model(model.inputs, model.get_layer({last!r}).output)(raw_inputs), and give the spec its output."
            ),
            file=sys.stderr,
        )
    return Exit.OK


def cmd_port(args: argparse.Namespace) -> int:
    spec_path = Path(args.file)
    source_path = Path(args.source)
    target_path = Path(args.target)
    text = read_spec(args.file)
    try:
        model = load_model(text, args.model)
    except SpecError as exc:
        print(exc.render(args.file, text), file=sys.stderr)
        return Exit.ERROR
    # what is missing first, then what is in the way; the strings, since Path("") is "."
    require_regular_file(args.source, "weights file")
    check_output(args.target, [spec_path, source_path], force=args.force)
    src_fmt, dst_fmt = weights_format(source_path), weights_format(target_path)
    for path, fmt, writing in ((source_path, src_fmt, False), (target_path, dst_fmt, True)):
        if fmt is None:
            raise unknown_format(path, writing)
    with user_code_path(spec_path, model):  # the programs import a user's layers from the spec's directory
        try:
            programs = programs_for(model, spec_path.name)
        except Exception as exc:
            raise UsageError(f"rnnspec port: error: {exc}") from None
        try:
            weights = read_weights(model, source_path, args.file, programs)
            count = write_weights(
                model, programs, weights, target_path, [spec_path, source_path], force=args.force
            )
        except ExternContractError as exc:
            raise UsageError(f"rnnspec port: error: {exc}") from None
    parameters = sum(int(a.size) for arrays in weights.values() for a in arrays)
    print(
        terminal_text(
            f"{source_path} -> {target_path}: {count} arrays, {parameters:,} parameters of `{model.name}` "
            f"({FRAMEWORK[src_fmt]} -> {FRAMEWORK[dst_fmt]})"
        )
    )
    return Exit.OK


def add_parsers(sub: Any) -> None:
    imp = sub.add_parser(
        "import",
        help="write the spec of a trained Keras model (.keras)",
        epilog="example:\n  rnnspec import trained.keras -o model.rnn",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imp.add_argument("model", metavar="MODEL", help="a Keras 3 .keras file")
    imp.add_argument("-o", "--output", help="write the spec here (atomically) instead of stdout")
    imp.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    imp.add_argument(
        "--after-preprocessing",
        action="store_true",
        help="import from the first layer after the model's preprocessing front "
        "(TextVectorization, StringLookup, IntegerLookup, Normalization): the spec takes what it emits",
    )
    imp.set_defaults(func=cmd_import)

    port = sub.add_parser(
        "port",
        help="convert trained weights between Keras (.keras, .weights.h5) and PyTorch (.pt)",
        epilog="example:\n  rnnspec port model.rnn --from trained.keras --to model.pt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    port.add_argument("file", metavar="SPEC", help="the .rnn spec the weights belong to")
    port.add_argument(
        "--from", dest="source", required=True, metavar="WEIGHTS", help=".keras, .weights.h5 or .pt"
    )
    port.add_argument("--to", dest="target", required=True, metavar="OUT", help=".keras, .weights.h5 or .pt")
    port.add_argument("--model", help="which model, when the spec defines several")
    port.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    port.set_defaults(func=cmd_port)
