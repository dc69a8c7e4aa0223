"""The command line: argument parsing, exit codes (cli/exit.py), the one error printer, file
output (through rnnspec/files.py). No compiler logic of its own, and no library module imports it.

Each command's module here (review, migrate, verify) adds its parsers and runs the library.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from rnnspec import __version__, options
from rnnspec.check import select_model
from rnnspec.cli import export, migrate, review
from rnnspec.cli.exit import Exit
from rnnspec.cli.verify import run_verify
from rnnspec.compiler import generate
from rnnspec.errors import SpecError, UserError
from rnnspec.files import check_output, load_spec, write_text
from rnnspec.targets import TARGETS
from rnnspec.text import terminal_safe, terminal_text

EXAMPLES = """\
examples:
  rnnspec compile examples/sentiment.rnn --target keras
  rnnspec compile examples/sentiment.rnn --target pytorch -o sentiment_torch.py
  rnnspec verify examples/*.rnn
"""


# Library modules raise UserError; the command line prints it and exits 2.
UsageError = UserError


def cmd_compile(args: argparse.Namespace) -> int:
    if args.output is not None:  # `-o ""` (an unset shell variable) is refused, not stdout
        check_output(args.output, [Path(args.file)])
    source, models = load_spec(args.file)
    try:
        model = select_model(models, args.model)
    except SpecError as exc:
        raise UsageError(exc.render(args.file, source)) from None
    try:
        code = generate(model, args.target, Path(args.file).name)
    except SpecError as exc:  # a kind or form the target does not support
        raise UsageError(exc.render(args.file, source)) from None
    if args.output is not None:
        write_text(args.output, code, [Path(args.file)])
    else:
        sys.stdout.write(code)
    return Exit.OK


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
        "--gradients",
        action="store_true",
        help="also compare the gradients of a loss with respect to every input and weight",
    )
    ver.add_argument(
        "--weights", metavar="FILE", help="trained weights (.keras, .weights.h5, .pt) to prove it on"
    )
    ver.set_defaults(func=run_verify)

    review.add_parsers(sub)
    migrate.add_parsers(sub)
    export.add_parsers(sub)
    return parser


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so half-written temporary files are removed on the way out."""
    raise SystemExit(128 + signum)


class _Escaping(io.TextIOBase):
    """A standard stream that lets no control character through (line breaks and tabs aside):
    file names, spec text and archive names in any message cannot drive the terminal."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(terminal_safe(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def fileno(self) -> int:
        return self.stream.fileno()

    def isatty(self) -> bool:
        return self.stream.isatty()


class _ClosedStream(io.TextIOBase):
    """Stands in for a standard output the process was started without (`rnnspec ... >&-`)."""

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "standard output is closed")


def _report(message: str) -> None:
    try:
        print(terminal_text(message), file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr closed: nothing left to tell
        pass


def main(argv: list[str] | None = None) -> int:
    if sys.stdout is None:
        sys.stdout = _ClosedStream()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Escaping(saved[0]), _Escaping(saved[1])
    try:
        return _main(argv)
    finally:
        sys.stdout, sys.stderr = saved


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # its own messages go through the escaping stream too
    if not getattr(args, "func", None):
        parser.print_help()
        return Exit.ERROR
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        code = args.func(args)
        sys.stdout.flush()
        return code
    except UserError as exc:
        _report(str(exc))
        return Exit.ERROR
    except SpecError as exc:  # pragma: no cover - commands render these themselves
        _report(exc.render("<spec>", None))
        return Exit.ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`rnnspec compile ... | head`): not an error of ours; keep Python
        # from complaining again when it flushes stdout at exit.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return Exit.ERROR
    except OSError as exc:
        # Every file the user named is checked and read with a worded message; what is left is
        # the standard streams: closed, or on a full disk.
        if exc.errno == errno.EBADF:
            _report("rnnspec: error: cannot write to standard output (it is closed)")
        else:
            _report(f"rnnspec: error: cannot write the output: {exc.strerror or exc}")
        return Exit.ERROR
    except Exception as exc:
        return _internal_error(exc)


def _internal_error(exc: BaseException) -> int:
    detail = (str(exc).splitlines() or [""])[0][:300]
    _report(
        f"rnnspec: internal error ({type(exc).__name__}: {detail}); this is a bug in rnnspec: please report it "
        "with the command and its input files attached"
    )
    return Exit.ERROR


if __name__ == "__main__":
    sys.exit(main())
