"""The options of `rnnspec verify`: argparse `type=` checks, and the dataclass library code takes.

Each checker turns the text of one option into its value or raises `argparse.ArgumentTypeError`
with the reason; argparse then prints `rnnspec verify: error: argument --atol: ...` and exits 2.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

SEED_LIMIT = 2**32  # numpy's default_rng and torch's manual_seed both take [0, 2**32)
# Keep the proof quick: more rows or timesteps than these would make one run take minutes.
BATCH_LIMIT = 4096
TIME_LIMIT = 100_000
CHUNKS_LIMIT = 1000


def tolerance(text: str) -> float:
    """A finite tolerance >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number such as 1e-5, got `{text}`") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got `{text}`")
    return value


def _integer(text: str, low: int, high: int, what: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got `{text}`") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{what} must be in [{low}, {high}], got {value}")
    return value


def seed(text: str) -> int:
    return _integer(text, 0, SEED_LIMIT - 1, "the seed")


def batch(text: str) -> int:
    return _integer(text, 1, BATCH_LIMIT, "the batch size")


def timesteps(text: str) -> int:
    return _integer(text, 1, TIME_LIMIT, "the number of timesteps")


def chunks(text: str) -> int:
    return _integer(text, 1, CHUNKS_LIMIT, "the number of chunks")


@dataclass(frozen=True)
class VerifyOptions:
    """What one verification runs: `rnnspec verify`'s options, with its defaults."""

    seed: int = 0
    atol: float = 1e-5
    rtol: float = 0.0
    batch: int = 6
    time: int = 7
    chunks: int = 3
    thorough: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> VerifyOptions:
        return cls(
            seed=args.seed,
            atol=args.atol,
            rtol=args.rtol,
            batch=args.batch,
            time=args.time,
            chunks=args.chunks,
            thorough=args.thorough,
        )
