"""The exit codes of every command."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0  # done; verified
    MISMATCH = 1  # verify found a difference; `check --strict` warned; `fmt --check` would change
    ERROR = 2  # a mistake in what the user gave us (a file, a spec, an option), reported
