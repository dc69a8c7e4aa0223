"""Reading the user's files and writing ours: the one set of rules every command follows.

Reading a spec: a regular file (not a device, FIFO or directory) of at most MAX_SPEC_BYTES,
UTF-8 with an optional BOM.

Writing an output (`compile -o`, `import -o`, `port --to`, `fmt` in place):

- The output must be a regular file or not exist yet. Devices, FIFOs, sockets, directories and
  anything under /dev or /proc are refused (`-o /dev/null`, `-o /dev/stdout`: leave out `-o` to
  print instead).
- A symlink is followed: the file it points to is replaced and the link stays a link.
- An input of the command (the spec, the weights read) is never the output, by any path.
- The new file is written under a temporary name in the output's own directory and renamed over
  the output, so a reader never sees half a file and an interrupted write (Ctrl-C, SIGTERM, a
  full disk) leaves the old file as it was and no temporary file behind. A file replaced keeps
  its permission bits; a new file gets the permissions the umask allows, as `open()` would.
- A file with several hard links is rewritten in place instead, so that every link sees the new
  text (the one case where the write is not atomic).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from rnnspec.check import load_models
from rnnspec.errors import SpecError, UserError
from rnnspec.text import escape_unprintable

MAX_SPEC_BYTES = 1 << 20  # 1 MiB: a hand-written spec is a few kB; an imported one a few more


def _show(path: str | os.PathLike[str]) -> str:
    return escape_unprintable(os.fspath(path))


def _stat(path: str | os.PathLike[str], follow: bool = True) -> os.stat_result | None:
    """The file's status, or None if it does not exist; a symlink loop or a bad path is an error."""
    try:
        return os.stat(path) if follow else os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    except OSError as exc:
        raise UserError(f"{_show(path)}: error: {exc.strerror or exc}") from None


def require_regular_file(path: str | os.PathLike[str], what: str = "file") -> None:
    """Refuse a path that is not a regular file (reading a FIFO blocks; /dev/zero never ends)."""
    shown = _show(path) or "''"
    if not os.fspath(path):
        raise UserError(f"error: the {what} path is empty")
    try:
        info = os.stat(path)
    except OSError as exc:
        raise UserError(f"{shown}: error: cannot read the file: {exc.strerror or exc}") from None
    _refuse_unless_regular(info, shown, what)


def _refuse_unless_regular(info: os.stat_result, shown: str, what: str) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise UserError(f"{shown}: error: is a directory, not a {what}")
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"{shown}: error: is not a regular file (a device, FIFO or socket); give a {what}")


def read_bytes(path: str | os.PathLike[str], what: str = "file", limit: int = MAX_SPEC_BYTES) -> bytes:
    """A regular file's bytes, refusing anything that is not a regular file or is over `limit`."""
    shown = _show(path)
    if not os.fspath(path):
        raise UserError(f"error: the {what} path is empty")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise UserError(f"{shown}: error: cannot read the file: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        _refuse_unless_regular(info, shown, what)
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > limit:
            raise UserError(
                f"{shown}: error: the {what} is {info.st_size:,} bytes; rnnspec reads at most {limit:,}"
            )
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise UserError(f"{shown}: error: cannot read the file: {exc.strerror or exc}") from None
    if len(data) > limit:  # the file grew while we read it
        raise UserError(
            f"{shown}: error: the {what} is over {limit:,} bytes; rnnspec reads at most {limit:,}"
        )
    return data


def read_spec(path: str | os.PathLike[str]) -> str:
    """A spec's text as written (BOM and line endings kept; rnnspec.text.normalize reads it)."""
    data = read_bytes(path, "spec")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        good = data[: exc.start].decode("utf-8")
        line = good.count("\n") + 1
        col = len(good) - (good.rfind("\n") + 1) + 1  # characters, not bytes, as everywhere else
        raise UserError(
            f"{_show(path)}:{line}:{col}: error: the file is not UTF-8 text (byte 0x{data[exc.start]:02x})"
        ) from None


def load_spec(path: str | os.PathLike[str]) -> tuple[str, list]:
    """Read and check a spec file: its text and models, or a UserError holding every diagnostic."""
    source = read_spec(path)
    try:
        return source, load_models(source)
    except SpecError as exc:
        raise UserError(exc.render(_show(path), source)) from None


def check_output(path: str | os.PathLike[str], inputs: list[Path] = (), *, force: bool = True) -> Path:
    """Apply the output rules to `path` before any work is done; return the file to replace."""
    shown = _show(path)
    if not os.fspath(path):
        raise UserError("error: the output path is empty")
    if os.fspath(path).endswith(os.sep):
        raise UserError(f"{shown}: error: names a directory (it ends with `{os.sep}`); give a file name")
    written, target = "/" + os.path.abspath(path).lstrip("/"), Path(os.path.realpath(path))
    if written.startswith(("/dev/", "/proc/")) or str(target).startswith(("/dev/", "/proc/")):
        # /dev/stdout, /dev/null, /proc/self/fd/1: a stream or a device, even where a regular
        # file is behind it, which a rename would take from under the shell's redirection.
        raise UserError(
            f"{shown}: error: rnnspec writes regular files only, not under /dev or /proc (leave out "
            "the output option to print to standard output)"
        )
    info = _stat(target)
    if info is not None:
        for fd, stream in ((1, "standard output"), (2, "standard error")):
            with contextlib.suppress(OSError):
                if os.path.samestat(info, os.fstat(fd)):
                    raise UserError(
                        f"{shown}: error: is the file {stream} goes to; leave out the output option to "
                        "print to standard output"
                    )
        if stat.S_ISDIR(info.st_mode):
            raise UserError(f"{shown}: error: is a directory; give a file name")
        if not stat.S_ISREG(info.st_mode):
            raise UserError(
                f"{shown}: error: is not a regular file (a device, FIFO or socket); rnnspec writes regular "
                "files only (leave out the output option to print to standard output)"
            )
        for other in inputs:
            other_info = _stat(other)
            if other_info is not None and os.path.samestat(info, other_info):
                raise UserError(f"{shown}: error: refusing to overwrite an input file ({_show(other)})")
        if not force:
            raise UserError(f"{shown}: error: the file exists; pass --force to overwrite it")
    parent = _stat(target.parent)
    if parent is None or not stat.S_ISDIR(parent.st_mode):
        raise UserError(f"{shown}: error: the directory {_show(target.parent)} does not exist")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        # Said now, before an export or a port does its work (the write itself would say it last).
        raise UserError(f"{shown}: error: cannot write in {_show(target.parent)}: Permission denied")
    return target


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def replacing(
    path: str | os.PathLike[str], inputs: list[Path] = (), *, force: bool = True, suffix: str = ""
) -> Iterator[Path]:
    """Yield a temporary path next to the output; when the block ends, it becomes the output.

    The writer in the block may be anything that writes a file by name (torch.save, Keras's
    save); on any error or interruption the temporary file is removed and the output untouched.
    """
    shown = _show(path)
    target = check_output(path, inputs, force=force)
    old = _stat(target)
    import tempfile

    try:
        # A short name of our own: the output's name may already be at the file-name limit.
        fd, name = tempfile.mkstemp(prefix=".rnnspec-", suffix=".tmp" + suffix, dir=target.parent)
    except OSError as exc:
        raise UserError(
            f"{shown}: error: cannot write in {_show(target.parent)}: {exc.strerror or exc}"
        ) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        mode = stat.S_IMODE(old.st_mode) if old is not None else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        if old is not None and old.st_nlink > 1:
            with open(tmp, "rb") as src, open(target, "r+b") as dst:
                dst.truncate(0)
                dst.write(src.read())
            tmp.unlink()
        else:
            os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"{shown}: error: cannot write the file: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(
    path: str | os.PathLike[str], text: str, inputs: list[Path] = (), *, force: bool = True
) -> None:
    """Write `text` (UTF-8, newlines as given) to `path` under the output rules."""
    with replacing(path, inputs, force=force) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)


def write_with(
    path: str | os.PathLike[str],
    writer: Callable[[Path], None],
    inputs: list[Path] = (),
    *,
    force: bool = True,
    suffix: str = "",
) -> None:
    """Let `writer` write the file by name, then move it into place under the output rules."""
    with replacing(path, inputs, force=force, suffix=suffix) as tmp:
        writer(tmp)
