"""Inputs a user would feed: padding on either side, holes, fully padded rows, near misses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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


def make_batch(model: Model, rows: list[str], steps: int, rng: np.random.Generator) -> Any:
    """A batch whose rows follow `rows` (one padding pattern each); for a graph, a tuple with one
    array per input, in declaration order."""
    import numpy as np

    if model.is_graph:
        return graph_batch(model, rows, steps, rng)
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
    worth): the shortest sequence the proof may feed (every input of a graph gets that length)."""
    from rnnspec.kinds import kind_of

    calls = [(n.layer, n.inputs) for n in model.nodes] or [(layer, layer.inputs) for layer in model.layers]

    def fits(steps: int) -> bool:
        for layer, inputs in calls:
            if not inputs:
                continue
            value = model.values[inputs[0]]
            if layer.extern is not None or len(value.shape) < 2 or value.shape[0] is not None:
                continue  # only a varying time axis depends on the length fed
            kind = kind_of(layer)
            if steps < kind.min_steps(layer):
                return False
            if kind.steps_out(layer, steps) < 1:
                return False
        return _chain_fits(model, steps)

    steps = 1
    while not fits(steps) and steps < LONG_STEPS:
        steps += 1
    return steps


def _chain_fits(model: Model, steps: int) -> bool:
    """Whether `steps` timesteps get through a stack's layers one after another (lengths shrink
    along the way: a strided convolution, then a pooling)."""
    from rnnspec.kinds import kind_of

    if model.nodes:
        return True  # (a graph's windowed layers are checked one by one above)
    for layer in model.layers:
        value = model.values[layer.inputs[0]]
        if layer.extern is not None or len(value.shape) < 2 or value.shape[0] is not None:
            continue
        kind = kind_of(layer)
        if steps < kind.min_steps(layer):
            return False
        steps = kind.steps_out(layer, steps)
    return True


def _vocabulary(model: Model, name: str) -> int:
    """The vocabulary of the embedding a graph's id input feeds (the smallest, if several)."""
    sizes = [
        node.layer.attrs["input_dim"]
        for node in model.nodes
        if node.layer.kind == "embedding" and name in node.inputs
    ]
    return min(sizes) if sizes else 2


def graph_batch(model: Model, rows: list[str], steps: int, rng: np.random.Generator) -> tuple[Any, ...]:
    """One array per input of a graph. Each input pads its rows with its own pattern (the row's
    pattern shifted by the input's index), so that two sequences of one row differ; explicit
    mask inputs are drawn the same way (True where a step is used); states are normal noise."""
    import numpy as np

    arrays = []
    value = masking_value(model)
    for index, inp in enumerate(model.inputs):
        own = [PATTERNS[(PATTERNS.index(row) + index) % len(PATTERNS)] if index else row for row in rows]
        length = inp.shape[0] if inp.shape[0] is not None else steps
        timed = inp.dtype in ("int32", "int64", "bool") or len(inp.shape) > 1
        if inp.dtype.startswith("int"):
            vocab = _vocabulary(model, inp.name)
            ids = rng.integers(1 if vocab > 1 else 0, vocab, size=(len(rows), length))
            for row, pattern in enumerate(own):
                ids[row, _padding(pattern, length, rng)] = 0
            arrays.append(ids.astype(inp.dtype))
        elif inp.dtype == "bool":
            mask = np.ones((len(rows), length), dtype=bool)
            for row, pattern in enumerate(own):
                mask[row, _padding(pattern, length, rng)] = False
            arrays.append(mask)
        elif not timed:
            arrays.append(rng.normal(size=(len(rows), inp.shape[0])).astype(np.float32))
        else:
            dims = [length] + [d if d is not None else steps for d in inp.shape[1:]]
            x = rng.normal(size=(len(rows), *dims)).astype(np.float32)
            if value is not None and len(inp.shape) == 2:
                for row, pattern in enumerate(own):
                    x[row, _padding(pattern, length, rng)] = value
                    if pattern == "near_miss":
                        x[row, rng.integers(length), : max(1, inp.shape[-1] - 1)] = value
            arrays.append(x)
    return tuple(arrays)


def is_masked(model: Model) -> bool:
    """Whether a mask enters the model: where padding patterns change what the programs compute."""
    return any(
        (layer.kind == "embedding" and layer.attrs["mask_zero"]) or layer.kind == "masking"
        for layer in model.layers
    ) or any(value.dtype == "bool" for value in model.inputs)


def _time_axis(model: Model) -> tuple[bool, int | None]:
    """Whether an input has a time axis, and its fixed length (None where any timed input is free)."""
    timed = [inp for inp in model.inputs if inp.is_sequence or inp.dtype != "float32" or len(inp.shape) > 2]
    if not timed:
        return False, None
    if any(inp.shape[0] is None for inp in timed):
        return True, None
    return True, timed[0].shape[0]


def cases(model: Model, batch: int, steps: int, seed: int, *, sixteen_bit: bool = False) -> list[Case]:
    """Batches for a stateless model: one per shape of input a fast path or a narrow type could
    get wrong. Every padding pattern mixed in one batch; no padding; right padding only; holes
    only inside the rows (first and last steps valid); rows with only their first or only their
    last step valid; a batch of one row; one timestep with a padded row; a sequence longer than
    255 steps (and longer than 65,536 where `sixteen_bit`).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    timed, fixed = _time_axis(model)
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
    timed, fixed = _time_axis(model)
    if not timed or fixed is not None:
        return [fixed or steps] * count
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
