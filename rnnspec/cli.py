"""The command line: argument parsing, exit codes, messages. No compiler logic of its own.

Exit codes: 0 ok, 1 a verification mismatch, 2 an error in what the user gave us.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from rnnspec import __version__
from rnnspec.errors import SpecError
from rnnspec.targets import TARGETS

EXAMPLES = """\
examples:
  rnnspec compile examples/sentiment.rnn --target keras
  rnnspec compile examples/sentiment.rnn --target pytorch -o sentiment_torch.py
  rnnspec verify examples/*.rnn
"""


class UsageError(Exception):
    """A mistake in the command line or the files it names (exit 2)."""


def read_spec(path: str) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: error: cannot read the file: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise UsageError(
            f"{path}:{line}:{col}: error: the file is not UTF-8 text (byte 0x{data[exc.start]:02x})"
        ) from None


def load_spec(path: str) -> tuple[str, list]:
    """Read and check a spec file: its text and models, or a UsageError holding every diagnostic."""
    from rnnspec.check import load_models

    source = read_spec(path)
    try:
        return source, load_models(source)
    except SpecError as exc:
        raise UsageError(exc.render(path, source)) from None


def write_atomically(path: Path, text: str, protected: list[Path]) -> None:
    """Write `text` to `path` via a temporary file and a rename; refuse to overwrite a spec."""
    target = path.resolve()
    for spec in protected:
        if spec.resolve() == target:
            raise UsageError(f"{path}: error: refusing to overwrite the input spec with generated code")
    if target.is_dir():
        raise UsageError(f"{path}: error: is a directory; give a file name for -o")
    if not target.parent.is_dir():
        raise UsageError(f"{path}: error: the directory {target.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_output(path: Path, protected: list[Path], force: bool) -> None:
    target = path.resolve()
    for other in protected:
        if other.resolve() == target or (other.exists() and path.exists() and os.path.samefile(other, path)):
            raise UsageError(f"{path}: error: refusing to overwrite an input file")
    if target.is_dir():
        raise UsageError(f"{path}: error: is a directory; give a file name")
    if not target.parent.is_dir():
        raise UsageError(f"{path}: error: the directory {target.parent} does not exist")
    if path.exists() and not force:
        raise UsageError(f"{path}: error: the file exists; pass --force to overwrite it")


def cmd_compile(args: argparse.Namespace) -> int:
    from rnnspec.check import select_model
    from rnnspec.compiler import generate

    source, models = load_spec(args.file)
    try:
        model = select_model(models, args.model)
    except SpecError as exc:
        raise UsageError(exc.render(args.file, source)) from None
    code = generate(model, args.target, Path(args.file).name)
    if args.output:
        write_atomically(Path(args.output), code, [Path(args.file)])
    else:
        sys.stdout.write(code)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from rnnspec.verify import run_verify

    return run_verify(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnspec",
        description="Compile an RNN model spec (.rnn) to Keras or PyTorch, and prove the two agree.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rnnspec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    comp = sub.add_parser(
        "compile",
        help="print the Keras or PyTorch program for a spec",
        epilog="example:\n  rnnspec compile examples/sentiment.rnn --target pytorch -o model.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    comp.add_argument("file", help="the .rnn spec")
    comp.add_argument("--target", required=True, choices=TARGETS)
    comp.add_argument("--model", help="which model, when the file defines several")
    comp.add_argument("-o", "--output", help="write the program here (atomically) instead of stdout")
    comp.set_defaults(func=cmd_compile)

    from rnnspec import options

    defaults = options.VerifyOptions()
    ver = sub.add_parser(
        "verify",
        help="prove the Keras and PyTorch programs compute the same function",
        epilog="example:\n  rnnspec verify examples/*.rnn --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ver.add_argument("files", nargs="+", metavar="FILE", help=".rnn specs")
    ver.add_argument("--model", help="verify only this model")
    ver.add_argument(
        "--seed", type=options.seed, default=defaults.seed, help="seed for weights and inputs (default 0)"
    )
    ver.add_argument(
        "--atol", type=options.tolerance, default=defaults.atol, help="absolute tolerance (default 1e-5)"
    )
    ver.add_argument(
        "--rtol", type=options.tolerance, default=defaults.rtol, help="relative tolerance (default 0)"
    )
    ver.add_argument(
        "--batch",
        type=options.batch,
        default=defaults.batch,
        help="rows per batch for stateless models (default 6)",
    )
    ver.add_argument(
        "--time",
        type=options.timesteps,
        default=defaults.time,
        help="timesteps where the spec leaves them free (default 7)",
    )
    ver.add_argument(
        "--chunks",
        type=options.chunks,
        default=defaults.chunks,
        help="stateful chunks before and after the reset (default 3)",
    )
    ver.add_argument(
        "--thorough",
        action="store_true",
        help="two more seeds, more rows, longer sequences (2 to 4 times as long)",
    )
    ver.add_argument("--keras-code", help="a Keras program to verify instead of the generated one")
    ver.add_argument("--pytorch-code", help="a PyTorch program to verify instead of the generated one")
    ver.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    ver.add_argument(
        "--weights", metavar="FILE", help="trained weights (.keras, .weights.h5, .pt) to prove it on"
    )
    ver.set_defaults(func=cmd_verify)

    from rnnspec import review

    review.add_parsers(sub)
    from rnnspec import migrate

    migrate.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
