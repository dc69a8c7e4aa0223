"""All-pairs covering sets: few rows that still show every two values of any two dimensions together.

The fast test tier runs such a set of a test matrix; the `slow` tier runs the full product.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any


def pairs_of(row: Sequence[Any], strength: int = 2) -> set[tuple[tuple[int, Any], ...]]:
    """The ((dimension, value), ...) combinations of `strength` dimensions that one row covers."""
    return {tuple((i, row[i]) for i in dims) for dims in itertools.combinations(range(len(row)), strength)}


def all_pairs(
    dimensions: Sequence[Sequence[Any]],
    valid: Callable[[tuple[Any, ...]], bool] = lambda row: True,
    strength: int = 2,
) -> list[tuple[Any, ...]]:
    """Rows of the product of `dimensions` covering every pair of values any valid row covers.

    Greedy and deterministic: each step takes the first valid row of the product (in product
    order) that covers the most pairs not yet covered, until none is left. Pairs that no valid
    row shows (ruled out by `valid`) are not required. With `strength=1`, every value once.
    """
    strength = min(strength, len(dimensions))
    candidates = [row for row in itertools.product(*dimensions) if valid(row)]
    uncovered = set().union(*(pairs_of(row, strength) for row in candidates)) if candidates else set()
    chosen = []
    while uncovered:
        best = max(candidates, key=lambda row: len(pairs_of(row, strength) & uncovered))
        chosen.append(best)
        uncovered -= pairs_of(best, strength)
    return chosen
