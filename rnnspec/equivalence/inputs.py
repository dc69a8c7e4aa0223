"""Inputs a user would feed: padding on either side, holes, fully padded rows, near misses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rnnspec.ir import Model

if TYPE_CHECKING:
    import numpy as np

# Which timesteps of a row are padding, as a function of (row length T, rng).
PATTERNS = ("none", "right", "left", "holes", "all", "near_miss")


@dataclass
class Case:
    """One batch: the input array and, per row, the padding pattern it was made with."""

    name: str
    array: np.ndarray
    rows: list[str]


def _padding(pattern: str, steps: int, rng: np.random.Generator) -> np.ndarray:
    import numpy as np

    pad = np.zeros(steps, dtype=bool)
    if steps == 1:
        if pattern == "all":
            pad[:] = True
        return pad
    if pattern == "right":
        pad[rng.integers(1, steps) :] = True
    elif pattern == "left":
        pad[: rng.integers(1, steps)] = True
    elif pattern == "holes":
        pad[rng.choice(steps, size=max(1, steps // 3), replace=False)] = True
        pad[rng.integers(steps)] = False  # at least one step stays
    elif pattern == "all":
        pad[:] = True
    return pad


def masking_value(model: Model) -> float | None:
    for layer in model.layers:
        if layer.kind == "masking":
            return layer.attrs["mask_value"]
    return None


def make_batch(model: Model, rows: list[str], steps: int, rng: np.random.Generator) -> np.ndarray:
    """A batch whose rows follow `rows` (one padding pattern each)."""
    import numpy as np

    (inp,) = model.inputs
    if inp.dtype.startswith("int"):
        vocab = next(layer.attrs["input_dim"] for layer in model.layers if layer.kind == "embedding")
        ids = rng.integers(1 if vocab > 1 else 0, vocab, size=(len(rows), steps))
        for row, pattern in enumerate(rows):
            ids[row, _padding(pattern, steps, rng)] = 0
        return ids.astype(inp.dtype)
    if not inp.is_sequence:
        return rng.normal(size=(len(rows), inp.shape[0])).astype(np.float32)
    features = inp.shape[-1]
    x = rng.normal(size=(len(rows), steps, features)).astype(np.float32)
    value = masking_value(model)
    if value is not None:
        for row, pattern in enumerate(rows):
            x[row, _padding(pattern, steps, rng)] = value
            if pattern == "near_miss":  # only some features equal the mask value: not padding
                x[row, rng.integers(steps), : max(1, features - 1)] = value
    return x


def cases(model: Model, batch: int, steps: int, seed: int) -> list[Case]:
    """Batches for a stateless model: every padding pattern, and a batch of one timestep."""
    import numpy as np

    rng = np.random.default_rng(seed)
    (inp,) = model.inputs
    timed = inp.is_sequence or inp.dtype.startswith("int")
    fixed = inp.shape[0] if timed else None
    steps = fixed or steps
    rows = [PATTERNS[i % len(PATTERNS)] for i in range(batch)]
    found = [Case("mixed padding", make_batch(model, rows, steps, rng), rows)]
    found.append(Case("no padding", make_batch(model, ["none"] * batch, steps, rng), ["none"] * batch))
    right = [("right", "none")[i % 2] for i in range(batch)]
    found.append(Case("right padding", make_batch(model, right, steps, rng), right))
    if timed and fixed is None:
        found.append(Case("one timestep", make_batch(model, ["none"] * batch, 1, rng), ["none"] * batch))
    return found


def chunks(model: Model, count: int, steps: int, seed: int) -> list[Case]:
    """Consecutive batches for a stateful model: each row cycles through the padding patterns."""
    import numpy as np

    rng = np.random.default_rng(seed)
    (inp,) = model.inputs
    batch = model.batch_size or 1
    steps = inp.shape[0] or steps
    found = []
    for k in range(count):
        rows = [PATTERNS[(row + k) % len(PATTERNS)] for row in range(batch)]
        found.append(Case(f"chunk {k + 1}", make_batch(model, rows, steps, rng), rows))
    return found
