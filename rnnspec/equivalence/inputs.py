"""Inputs a user would feed: padding on either side, holes, fully padded rows, near misses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rnnspec.ir import Model

if TYPE_CHECKING:
    import numpy as np

# Which timesteps of a row are padding, as a function of (row length T, rng). "interior" pads
# only inside the row (its first and last steps stay); "first_only" and "last_only" keep one step.
PATTERNS = ("none", "right", "left", "holes", "all", "near_miss", "interior", "first_only", "last_only")

# Longer than 255, so that a length or index held in 8 bits wraps around.
LONG_STEPS = 260
# Longer than 65,536: run only where the PyTorch program holds lengths or indices in 16 bits.
VERY_LONG_STEPS = 65_600
SIXTEEN_BIT_TYPES = ("torch.int16", "torch.short", "torch.uint16")


@dataclass
class Case:
    """One batch: the input array and, per row, the padding pattern it was made with."""

    name: str
    array: np.ndarray
    rows: list[str]
    every_mode: bool = True  # False: too slow to run twice; training mode skips it


def _padding(pattern: str, steps: int, rng: np.random.Generator) -> np.ndarray:
    import numpy as np

    pad = np.zeros(steps, dtype=bool)
    if steps == 1:
        if pattern == "all":
            pad[:] = True
        return pad
    if pattern == "first_only":
        pad[1:] = True
    elif pattern == "last_only":
        pad[:-1] = True
    elif pattern == "interior":
        if steps >= 3:
            inside = rng.choice(np.arange(1, steps - 1), size=max(1, (steps - 2) // 2), replace=False)
            pad[inside] = True
    elif pattern == "right":
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


def min_steps(model: Model) -> int:
    """The fewest timesteps every layer accepts (a `valid` convolution or pooling needs a window's
    worth): the shortest sequence the proof may feed."""
    from rnnspec.kinds import kind_of

    def fits(steps: int) -> bool:
        for layer in model.layers:
            value = model.values[layer.inputs[0]]
            if layer.extern is not None or len(value.shape) < 2 or value.shape[0] is not None:
                continue  # only a varying time axis depends on the length fed
            kind = kind_of(layer)
            if steps < kind.min_steps(layer):
                return False
            steps = kind.steps_out(layer, steps)
        return True

    steps = 1
    while not fits(steps) and steps < LONG_STEPS:
        steps += 1
    return steps


def is_masked(model: Model) -> bool:
    """Whether a mask enters the model: where padding patterns change what the programs compute."""
    return any(
        (layer.kind == "embedding" and layer.attrs["mask_zero"]) or layer.kind == "masking"
        for layer in model.layers
    )


def cases(model: Model, batch: int, steps: int, seed: int, *, sixteen_bit: bool = False) -> list[Case]:
    """Batches for a stateless model: one per shape of input a fast path or a narrow type could
    get wrong. Every padding pattern mixed in one batch; no padding; right padding only; holes
    only inside the rows (first and last steps valid); rows with only their first or only their
    last step valid; a batch of one row; one timestep with a padded row; a sequence longer than
    255 steps (and longer than 65,536 where `sixteen_bit`).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    (inp,) = model.inputs
    timed = inp.is_sequence or inp.dtype.startswith("int")
    fixed = inp.shape[0] if timed else None
    free = timed and fixed is None
    shortest = min_steps(model) if free else 1
    steps = fixed or max(steps, shortest)
    masked = is_masked(model)

    def add(name: str, rows: list[str], length: int = steps) -> None:
        found.append(Case(name, make_batch(model, rows, length, rng), rows, length < LONG_STEPS))

    found: list[Case] = []
    add("mixed padding", [PATTERNS[i % len(PATTERNS)] for i in range(batch)])
    add("no padding", ["none"] * batch)
    add("right padding", [("right", "none")[i % 2] for i in range(batch)])
    if masked and timed and steps >= 3:
        add("interior holes", ["interior"] * batch)
    if masked and timed and steps >= 2:
        add("one step valid", [("first_only", "last_only")[i % 2] for i in range(batch)])
    add("one row", ["holes" if masked else "none"])
    if free:
        if shortest == 1:
            add("one timestep", [("none", "all")[i % 2] for i in range(max(batch, 2))], 1)
        else:  # the shortest sequence every layer takes
            add(f"{shortest} timesteps", [("none", "all")[i % 2] for i in range(max(batch, 2))], shortest)
        add(f"{LONG_STEPS} timesteps", ["none", "right", "interior"], LONG_STEPS)
        if sixteen_bit:
            add(f"{VERY_LONG_STEPS} timesteps", ["none", "right"], VERY_LONG_STEPS)
    return found


def chunk_lengths(model: Model, count: int, steps: int) -> list[int]:
    """Timesteps per stateful chunk: varied (a longer chunk, a single step) where the spec allows."""
    (inp,) = model.inputs
    if inp.shape[0] is not None:
        return [inp.shape[0]] * count
    shortest = min_steps(model)
    steps = max(steps, shortest)
    return [(steps, steps + 2, shortest)[k % 3] for k in range(count)]


def chunks(model: Model, count: int, steps: int, seed: int) -> list[Case]:
    """Consecutive batches for a stateful model: each row cycles through the padding patterns,
    and the chunks differ in length where the spec leaves the length free."""
    import numpy as np

    rng = np.random.default_rng(seed)
    batch = model.batch_size or 1
    found = []
    for k, length in enumerate(chunk_lengths(model, count, steps)):
        rows = [PATTERNS[(row + k) % len(PATTERNS)] for row in range(batch)]
        found.append(Case(f"chunk {k + 1}", make_batch(model, rows, length, rng), rows))
    return found
