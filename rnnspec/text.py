"""Text that comes from outside: one definition of a line, and quoting for every place it lands.

A spec is read as UTF-8 with an optional BOM and any of `\\n`, `\\r\\n` or `\\r` line endings (as
editors on every platform write them); after `normalize`, a line ends at `\\n` and nowhere else,
for the parser, for columns, for excerpts and for `fmt` alike. Other separators that
`str.splitlines()` honours (`\\f`, `\\v`, `\\x1c`-`\\x1e`, `\\x85`, U+2028, U+2029) are ordinary
characters inside a line.

Whatever reaches generated code, a spec written by `import`, or the terminal passes through one
of the quoting functions below; each has a test that tries to break it.
"""

from __future__ import annotations

BOM = "\ufeff"


def normalize(text: str) -> str:
    """The text with a leading BOM dropped and every line ending made `\\n`."""
    if text.startswith(BOM):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def newline_of(text: str) -> str:
    """The line ending a file was written with (`\\r\\n`, `\\r` or `\\n`), to write it back the same way."""
    if "\r\n" in text:
        return "\r\n"
    if "\r" in text:
        return "\r"
    return "\n"


def split_lines(text: str) -> list[str]:
    """The lines of normalized text; a final line ending does not start another line."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape_unprintable(text: str) -> str:
    """Every character that is not printable (controls, line separators, ...) as a `\\xNN` escape."""
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def docstring_text(text: str) -> str:
    """`text` for the inside of a `\"\"\"` docstring in generated Python: it cannot end the string,
    start an escape of its own, or hold anything but printable ASCII; the docstring's value is
    `text` exactly."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch.isascii() and ch.isprintable():
            out.append(ch)
        else:
            out.append(_escape(ch))
    return "".join(out)


def comment_text(text: str) -> str:
    """`text` for a `#` comment in a spec: one line, printable characters only."""
    return escape_unprintable(text)


def terminal_safe(text: str) -> str:
    """`text` with every unprintable character escaped but line breaks and tabs."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch in "\n\t" else _escape(ch) for ch in text)


def terminal_text(text: str, limit: int = 2000) -> str:
    """A message for the terminal: line breaks kept, every other control character escaped (no
    escape sequence from a spec or an archive reaches the terminal), each line at most `limit`
    characters."""
    lines = []
    for line in text.split("\n"):
        line = escape_unprintable(line.replace("\t", " "))
        if len(line) > limit:
            line = line[: limit - 1] + "…"
        lines.append(line)
    return "\n".join(lines)


def excerpt(line: str, col: int, width: int = 100) -> tuple[str, int]:
    """The part of a source line to show under a message, and the caret's column in it.

    Unprintable characters are shown escaped (the caret moves with them); a long line is cut to a
    window of about `width` characters around `col`, with `…` where it was cut.
    """
    # Cut first (an escape is at most 10 characters for one), escape after: linear in the window,
    # not in the line, however many messages point into one long line.
    before, after = line[max(0, col - 1 - width) : col - 1], line[col - 1 : col - 1 + width]
    cut_before, cut_after = col - 1 > width, len(line) > col - 1 + width
    before = escape_unprintable(before.replace("\t", " "))
    after = escape_unprintable(after.replace("\t", " "))
    if cut_before:
        before = "…" + before
    if cut_after:
        after += "…"
    if len(before) + len(after) <= width:
        return before + after, len(before) + 1
    keep = width // 2
    if len(before) > keep:
        before = "…" + before[-(keep - 1) :]
    room = width - len(before)
    if len(after) > room:
        after = after[: room - 1] + "…"
    return before + after, len(before) + 1
