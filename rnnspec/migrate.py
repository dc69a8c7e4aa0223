"""`rnnspec import` and `rnnspec port`: bring a trained Keras model into rnnspec, weights and all.

The commands live in rnnspec/importer.py and rnnspec/port.py; this module only registers them.
"""

from __future__ import annotations

import argparse
from typing import Any


def cmd_import(args: argparse.Namespace) -> int:
    from rnnspec.importer import cmd_import as run

    return run(args)


def cmd_port(args: argparse.Namespace) -> int:
    from rnnspec.port import cmd_port as run

    return run(args)


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
