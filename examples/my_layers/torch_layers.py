"""The PyTorch halves of the example user layers: the same functions as keras_layers.py.

The contract is Keras's: `forward(x, mask=None)` gets the incoming mask (a bool tensor
[batch, time], or None), and a layer that produces a mask has `compute_mask(x, mask)`.
Annotated (`mask: torch.Tensor | None`), they compile under torch.jit.script with the
program; unannotated, TorchScript would take `mask` for a tensor that is never None.
"""

import torch
from torch import nn


class TemporalSoftmax(nn.Module):
    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        exp = torch.exp(x)
        if mask is not None:
            exp = exp * mask.unsqueeze(-1)
        return exp / exp.sum(dim=1, keepdim=True).clamp(min=1e-30)


class SilenceMask(nn.Module):
    def __init__(self, threshold=0.5):
        super().__init__()
        self.threshold = threshold

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return x

    def compute_mask(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        loud = (x.abs() > self.threshold).any(dim=-1)
        return loud if mask is None else loud & mask


class ScaleShift(nn.Module):
    def __init__(self, input_size):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(input_size))
        self.shift = nn.Parameter(torch.zeros(input_size))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return x * self.scale + self.shift

    @staticmethod
    def keras_to_torch(arrays):
        """Keras's get_weights() ([scale, shift]) as this module's state_dict entries."""
        scale, shift = arrays
        return {"scale": scale, "shift": shift}

    @staticmethod
    def torch_to_keras(state):
        """The inverse, for `rnnspec port` from PyTorch to Keras."""
        return [state["scale"], state["shift"]]


class AttentionPool(nn.Module):
    def __init__(self, input_size, units):
        super().__init__()
        self.proj = nn.Linear(input_size, units)
        self.score = nn.Linear(units, 1, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        scores = self.score(torch.tanh(self.proj(x))).squeeze(-1)
        if mask is not None:
            scores = scores.masked_fill(~mask, -1e9)
        weights = torch.softmax(scores, dim=-1)
        if mask is not None:
            weights = weights * mask
        return (x * weights.unsqueeze(-1)).sum(dim=1)
