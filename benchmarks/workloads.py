"""What is benchmarked: the examples, and batch 64 x 120 timesteps of ids through one recurrent layer.

A workload is a spec, the inputs for each padding pattern, and the hand-written baseline. Every
padded row keeps the same number of valid tokens under right padding, left padding and holes (the
lengths are drawn once per workload), so those three cases do the same recurrent work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import handwritten
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PATTERNS = ("none", "right", "left", "holes")
BATCH, STEPS = 64, 120


@dataclass
class Workload:
    name: str
    group: str  # "synthetic" or "example"
    source: str  # the .rnn text
    handwritten: Callable[[str], object]  # pattern -> nn.Module
    patterns: tuple[str, ...]
    batch: int = BATCH
    steps: int = STEPS
    vocab: int | None = None  # token ids when set, else float features
    features: int = 0
    mask_value: float | None = None  # for float inputs with a Masking layer
    sequences: bool = False  # the output has a time axis: compare valid positions only
    stateful: bool = False
    spec_path: str = ""
    notes: list[str] = field(default_factory=list)


def synthetic(kind: str, bidirectional: bool = False, batch: int = BATCH) -> Workload:
    layer = f"{kind}(128, return_sequences=true)"
    name = f"{'bi' if bidirectional else ''}{kind}"
    if bidirectional:
        layer = f"bidirectional({layer})"
    source = (
        f"model {name}_128 {{\n    input tokens: int32[*]\n    embedding(1000, 64, mask_zero=true)\n"
        f"    {layer}\n}}\n"
    )
    attr = "bidirectional_1" if bidirectional else f"{kind}_1"
    return Workload(
        name=f"{name} 128 (seq)" + (f" batch {batch}" if batch != BATCH else ""),
        group="synthetic" if batch == BATCH else "latency",
        batch=batch,
        source=source,
        handwritten=lambda pattern: handwritten.Encoder(kind, attr, 1000, 64, 128, bidirectional, pattern),
        patterns=PATTERNS,
        vocab=1000,
        sequences=True,
    )


def example(file: str, make: Callable[[str], object], patterns=PATTERNS, **kwargs) -> Workload:
    path = ROOT / "examples" / file
    return Workload(
        name=file.removesuffix(".rnn"),
        group="example",
        source=path.read_text(encoding="utf-8"),
        handwritten=make,
        patterns=patterns,
        spec_path=f"examples/{file}",
        **kwargs,
    )


def all_workloads() -> list[Workload]:
    return [
        synthetic("lstm"),
        synthetic("gru"),
        synthetic("simple_rnn"),
        synthetic("lstm", bidirectional=True),
        # serving latency: one request, and a small batch
        synthetic("lstm", batch=1),
        synthetic("lstm", batch=8),
        example("sentiment.rnn", handwritten.Sentiment, vocab=1000),
        example("attention.rnn", handwritten.Attention, vocab=5000),
        example("masking.rnn", handwritten.MaskedFeatures, features=8, mask_value=-1.0),
        example("gru_simple_rnn.rnn", handwritten.GruSimpleRnn, patterns=("none",), vocab=1000),
        example("bidirectional.rnn", handwritten.Bidirectional, patterns=("none",), steps=5, features=10),
        example(
            "paragraphs.rnn",
            handwritten.Paragraphs,
            patterns=("none",),
            batch=3,
            steps=10,
            features=50,
            stateful=True,
        ),
    ]


def valid_positions(
    pattern: str, batch: int, steps: int, rng: np.random.Generator, lengths: np.ndarray
) -> np.ndarray:
    """(batch, steps) bool: which timesteps hold a token. Every row keeps at least one."""
    if pattern == "none":
        return np.ones((batch, steps), dtype=bool)
    t = np.arange(steps)
    if pattern == "right":
        return t[None, :] < lengths[:, None]
    if pattern == "left":
        return t[None, :] >= (steps - lengths)[:, None]
    if pattern == "holes":  # the same number of tokens per row, at random positions
        valid = np.zeros((batch, steps), dtype=bool)
        for row, n in enumerate(lengths):
            valid[row, rng.choice(steps, size=n, replace=False)] = True
        return valid
    raise ValueError(pattern)


def make_inputs(workload: Workload, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """pattern -> (input array, valid mask). Lengths: uniform in [steps/4, steps], one row full."""
    rng = np.random.default_rng(seed)
    b, t = workload.batch, workload.steps
    lengths = rng.integers(max(1, t // 4), t + 1, size=b)
    if b > 1:
        lengths[0] = t
    else:  # one request: padded to the batch's length by whoever batched it, 70% tokens
        lengths[0] = int(0.7 * t)
    out = {}
    for pattern in workload.patterns:
        valid = valid_positions(pattern, b, t, rng, lengths)
        if workload.vocab is not None:
            x = rng.integers(1, workload.vocab, size=(b, t)).astype(np.int64)
            x[~valid] = 0
        else:
            x = rng.normal(size=(b, t, workload.features)).astype(np.float32)
            if workload.mask_value is not None:
                x[~valid] = workload.mask_value
        out[pattern] = (x, valid)
    return out
