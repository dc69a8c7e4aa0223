"""Hand-written, idiomatic PyTorch for each benchmarked model: the baseline the target is measured against.

Each module is what a PyTorch user would write for one padding layout they know in advance:

- ``none``: no padding, so no mask at all: the fused kernel over the whole batch.
- ``right``: ``pack_padded_sequence`` over the lengths (``enforce_sorted=False``), the fused
  kernel, ``pad_packed_sequence``.
- ``front`` (used for left padding and holes): the valid tokens moved to the front of each row
  (on the token ids, before the embedding, when the input is ids), then packed as for ``right``;
  sequence outputs are put back at the valid positions, padded positions are zero.

Attribute names match the generated module's, so ``load_state_dict(generated.state_dict())``
gives both the same weights. Outputs agree with the generated module's at valid positions only
(Keras repeats the last output at a masked step; idiomatic PyTorch leaves zeros there).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

FUSED = {"lstm": nn.LSTM, "gru": nn.GRU, "simple_rnn": nn.RNN}


def layout(pattern: str) -> str:
    """The hand-written code path for a padding pattern."""
    return {"none": "none", "right": "right", "left": "front", "holes": "front"}[pattern]


def pack(x: torch.Tensor, lengths: torch.Tensor):
    return pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)


def unpack(packed, total_length: int) -> torch.Tensor:
    return pad_packed_sequence(packed, batch_first=True, total_length=total_length)[0]


def to_front(values: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor):
    """Each row's valid entries moved to the front, in order; the rest zero. Returns the front mask too."""
    front_mask = torch.arange(mask.shape[1]) < lengths.unsqueeze(1)
    front = values.new_zeros(values.shape)
    front[front_mask] = values[mask]
    return front, front_mask


class Encoder(nn.Module):
    """Synthetic workload: embedding -> one recurrent layer returning every timestep's output."""

    def __init__(
        self, kind: str, name: str, vocab: int, dim: int, units: int, bidirectional: bool, pattern: str
    ):
        super().__init__()
        self.name = name
        self.path = layout(pattern)
        self.embedding_1 = nn.Embedding(vocab, dim)
        setattr(self, name, FUSED[kind](dim, units, batch_first=True, bidirectional=bidirectional))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rnn = getattr(self, self.name)
        if self.path == "none":
            return rnn(self.embedding_1(ids))[0]
        steps = ids.shape[1]
        mask = ids != 0
        lengths = mask.sum(dim=1)
        if self.path == "right":
            y, _ = rnn(pack(self.embedding_1(ids), lengths))
            return unpack(y, steps)
        front, front_mask = to_front(ids, mask, lengths)
        y, _ = rnn(pack(self.embedding_1(front), lengths))
        y = unpack(y, steps)
        out = y.new_zeros(y.shape)
        out[mask] = y[front_mask]
        return out


class Sentiment(nn.Module):
    """examples/sentiment.rnn: embedding -> LSTM (last output) -> dense softmax."""

    def __init__(self, pattern: str):
        super().__init__()
        self.path = layout(pattern)
        self.embedding_1 = nn.Embedding(1000, 64)
        self.lstm_1 = nn.LSTM(64, 128, batch_first=True)
        self.dense_1 = nn.Linear(128, 10)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.path == "none":
            _, (h, _) = self.lstm_1(self.embedding_1(ids))
        else:
            mask = ids != 0
            lengths = mask.sum(dim=1)
            if self.path == "front":
                ids, _ = to_front(ids, mask, lengths)
            _, (h, _) = self.lstm_1(pack(self.embedding_1(ids), lengths))
        return torch.softmax(self.dense_1(h[-1]), dim=-1)


class AttentionPool(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.kernel = nn.Linear(features, 1, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        scores = self.kernel(x).squeeze(-1)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return (x * torch.softmax(scores, dim=-1).unsqueeze(-1)).sum(dim=1)


class Attention(nn.Module):
    """examples/attention.rnn: embedding -> bidirectional LSTM -> attention pooling -> dense softmax.

    Pooling does not care where the valid steps are, so the packed layouts pool in place
    (front layout included) without putting the outputs back.
    """

    def __init__(self, pattern: str):
        super().__init__()
        self.path = layout(pattern)
        self.embedding_1 = nn.Embedding(5000, 32)
        self.encoder = nn.LSTM(32, 32, batch_first=True, bidirectional=True)
        self.pool = AttentionPool(64)
        self.dense_1 = nn.Linear(64, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.path == "none":
            y = self.pool(self.encoder(self.embedding_1(ids))[0], None)
        else:
            mask = ids != 0
            lengths = mask.sum(dim=1)
            if self.path == "front":
                ids, mask = to_front(ids, mask, lengths)
            y, _ = self.encoder(pack(self.embedding_1(ids), lengths))
            y = self.pool(unpack(y, ids.shape[1]), mask)
        return torch.softmax(self.dense_1(y), dim=-1)


class MaskedFeatures(nn.Module):
    """examples/masking.rnn: Masking(-1) -> GRU (sequences) -> LSTM (last) -> dense sigmoid.

    The GRU's packed output feeds the LSTM directly, still packed.
    """

    def __init__(self, pattern: str):
        super().__init__()
        self.path = layout(pattern)
        self.gru_1 = nn.GRU(8, 16, batch_first=True)
        self.lstm_1 = nn.LSTM(16, 16, batch_first=True)
        self.dense_1 = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.path == "none":
            y, _ = self.gru_1(x)
            _, (h, _) = self.lstm_1(y)
        else:
            mask = (x != -1.0).any(dim=-1)
            lengths = mask.sum(dim=1)
            if self.path == "front":
                x, _ = to_front(x, mask, lengths)
            y, _ = self.gru_1(pack(x, lengths))
            _, (h, _) = self.lstm_1(y)
        return torch.sigmoid(self.dense_1(h[-1]))


class Bidirectional(nn.Module):
    """examples/bidirectional.rnn (no mask): two bidirectional LSTMs -> dense."""

    def __init__(self, pattern: str):
        super().__init__()
        self.bidirectional_1 = nn.LSTM(10, 64, batch_first=True, bidirectional=True)
        self.bidirectional_2 = nn.LSTM(128, 32, batch_first=True, bidirectional=True)
        self.dense_1 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.bidirectional_1(x)
        _, (h, _) = self.bidirectional_2(y)
        return self.dense_1(torch.cat([h[0], h[1]], dim=-1))


class GruSimpleRnn(nn.Module):
    """examples/gru_simple_rnn.rnn (no mask): embedding -> GRU (sequences) -> SimpleRNN (last) -> dense."""

    def __init__(self, pattern: str):
        super().__init__()
        self.embedding_1 = nn.Embedding(1000, 64)
        self.gru_1 = nn.GRU(64, 256, batch_first=True)
        self.simple_rnn_1 = nn.RNN(256, 128, batch_first=True)
        self.dense_1 = nn.Linear(128, 10)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        y, _ = self.gru_1(self.embedding_1(ids))
        _, h = self.simple_rnn_1(y)
        return self.dense_1(h[-1])


class Paragraphs(nn.Module):
    """examples/paragraphs.rnn (stateful, batch 3): LSTM carrying (h, c) across calls -> dense."""

    def __init__(self, pattern: str):
        super().__init__()
        self.lstm_1 = nn.LSTM(50, 64, batch_first=True)
        self.dense_1 = nn.Linear(64, 10)
        self.register_buffer("h", torch.zeros(1, 3, 64), persistent=False)
        self.register_buffer("c", torch.zeros(1, 3, 64), persistent=False)

    def reset_states(self) -> None:
        self.h = torch.zeros_like(self.h)
        self.c = torch.zeros_like(self.c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (self.h, self.c) = self.lstm_1(x, (self.h, self.c))
        return self.dense_1(self.h[-1])
