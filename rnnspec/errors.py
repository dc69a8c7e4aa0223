"""Diagnostics: every user mistake becomes `FILE:LINE:COL: error: message` plus the line and a caret."""

from __future__ import annotations

from dataclasses import dataclass, field

from rnnspec.text import escape_unprintable, excerpt, normalize, split_lines


@dataclass(frozen=True)
class Pos:
    line: int
    col: int


@dataclass(frozen=True)
class Diagnostic:
    pos: Pos | None
    message: str
    severity: str = "error"

    def render(self, path: str, source: str | None) -> str:
        path = escape_unprintable(path)  # a file name cannot break the message into fake lines
        if self.pos is None:
            return f"{path}: {self.severity}: {self.message}"
        head = f"{path}:{self.pos.line}:{self.pos.col}: {self.severity}: {self.message}"
        lines = split_lines(normalize(source)) if source is not None else []
        if not 1 <= self.pos.line <= len(lines):
            return head
        text, col = excerpt(lines[self.pos.line - 1], self.pos.col)
        caret = " " * (col - 1) + "^"
        return f"{head}\n    {text}\n    {caret}"


class UserError(Exception):
    """A mistake in what the user gave us (a file, a path, an option), worded for them: exit 2.

    The message is complete, path and position included; the command line prints it as it is.
    """


@dataclass
class SpecError(Exception):
    """One or more diagnostics against a spec file; the CLI prints them and exits 2."""

    diagnostics: list[Diagnostic] = field(default_factory=list)

    @classmethod
    def single(cls, message: str, pos: Pos | None = None) -> SpecError:
        return cls([Diagnostic(pos, message)])

    def __str__(self) -> str:
        return "\n".join(
            f"{d.pos.line}:{d.pos.col}: {d.message}" if d.pos else d.message for d in self.diagnostics
        )

    def render(self, path: str, source: str | None) -> str:
        return "\n".join(d.render(path, source) for d in self.diagnostics)


class Unsupported(SpecError):
    """A layer kind (or one form of it) that a target or tool has no handler for: exit 2."""

    @classmethod
    def of(cls, kind: str, tool: str, pos: Pos | None = None, detail: str = "") -> Unsupported:
        return cls([Diagnostic(pos, f"layer kind `{kind}`{detail} is not supported by {tool}")])


# A file with thousands of mistakes gets the first ones, not thousands of lines.
MAX_DIAGNOSTICS = 50


def first_lines(lines: list[str], indent: str = "  ") -> list[str]:
    """At most MAX_DIAGNOSTICS problem lines, then how many more there were."""
    shown = lines[:MAX_DIAGNOSTICS]
    if len(lines) > MAX_DIAGNOSTICS:
        shown.append(f"{indent}... and {len(lines) - MAX_DIAGNOSTICS:,} more")
    return shown


class Reporter:
    """Collects diagnostics so that independent mistakes are all reported in one run."""

    def __init__(self) -> None:
        self.diagnostics: list[Diagnostic] = []

    def error(self, pos: Pos | None, message: str) -> None:
        self.diagnostics.append(Diagnostic(pos, message))

    def raise_if_any(self) -> None:
        if self.diagnostics:
            found = sorted(self.diagnostics, key=_order)
            if len(found) > MAX_DIAGNOSTICS:
                more = len(found) - MAX_DIAGNOSTICS
                found = found[:MAX_DIAGNOSTICS] + [Diagnostic(None, f"{more:,} more errors not shown")]
            raise SpecError(found)


def _order(d: Diagnostic) -> tuple[int, int]:
    return (d.pos.line, d.pos.col) if d.pos else (0, 0)


def closest(word: str, choices: list[str] | tuple[str, ...]) -> str | None:
    """The nearest valid spelling, for "did you mean" hints."""
    import difflib

    # Case and underscores first: Keras's `LSTM`, `SimpleRNN`, `Relu` are `lstm`, `simple_rnn`, `relu`.
    folded = {choice.lower().replace("_", ""): choice for choice in choices}
    if word.lower().replace("_", "") in folded:
        return folded[word.lower().replace("_", "")]
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    near = closest(word, choices)
    return f" (did you mean `{near}`?)" if near else ""
