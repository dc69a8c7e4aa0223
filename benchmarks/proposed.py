"""A proposed replacement for the generated `keras_rnn` helper, measured here, not shipped.

The benchmark's ``proposed`` variant is the generated program with this function in place of its
own `keras_rnn` (nothing else changes). It computes exactly the same outputs; the differences:

1. No masked step at all (``mask.all()``): call the fused kernel directly, no pack/unpack.
2. Moving each row's unmasked steps to the front and putting outputs back use one
   ``index_select`` over rows of the flattened ``(batch * time, features)`` tensor instead of
   ``Tensor.gather`` with an index expanded over the feature axis (CPU gather with an expanded
   index walks element by element; index_select copies contiguous rows).
3. The outputs are read straight out of the ``PackedSequence`` (``packed.data``, with the public
   ``batch_sizes`` and ``unsorted_indices``): no ``pad_packed_sequence`` copy, no extra
   ``(batch, time, units)`` gather result, and the masked positions are zeroed in place
   (``masked_fill_``) instead of by ``torch.where`` into a third output-sized tensor.
"""

from __future__ import annotations

import sys

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


def keras_rnn(rnn, x, mask, state=None, *, sequences=True, zero_masked=False):
    """Run `rnn` the way Keras runs a masked RNN: over each row's unmasked timesteps, in order.

    At a masked timestep the state is held and the output repeats the last unmasked output
    (zeros before the first); with `zero_masked`, as inside Keras's Bidirectional, it is zero.
    Returns the outputs (None unless `sequences`), each direction's last output, and the
    final state.
    """
    fused = isinstance(rnn, nn.RNNBase)
    if bool(mask.all()):
        # Nothing is masked: the plain call is exact.
        outputs, final = rnn(x, state) if fused else rnn(x, state, None)
        last = final[0] if isinstance(final, tuple) else final
        return (outputs if sequences else None), last, final
    batch, steps = mask.shape
    lengths = mask.sum(dim=1)
    # Row b's unmasked steps, in order, then its masked ones: rows of x.flatten(0, 1).
    row_start = torch.arange(batch, device=x.device).unsqueeze(1) * steps
    order = torch.argsort((~mask).to(torch.uint8), dim=1, stable=True) + row_start
    front = x.flatten(0, 1).index_select(0, order.flatten()).view_as(x)
    if fused:
        packed = pack_padded_sequence(front, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        packed, final = rnn(packed, state)
    else:
        outputs, final = rnn(front, state, lengths)
    # A row with no unmasked step keeps its initial state and outputs zeros.
    empty = (lengths == 0).view(1, -1, 1)
    finals = final if isinstance(final, tuple) else (final,)
    initials = state if isinstance(state, tuple) else (state,) * len(finals)
    finals = tuple(
        torch.where(empty, 0.0 if initial is None else initial, f)
        for f, initial in zip(finals, initials, strict=True)
    )
    last = torch.where(empty, 0.0, finals[0])
    final = finals if isinstance(final, tuple) else finals[0]
    if not sequences:
        return None, last, final
    # Step t shows the output of the last unmasked step at or before t (index j of its row).
    index = mask.cumsum(dim=1) - 1
    if fused:
        # Output j of row b is packed.data[offset[j] + unsorted_indices[b]].
        sizes = packed.batch_sizes
        offsets = (sizes.cumsum(0) - sizes).to(x.device)
        rows = offsets[index.clamp(min=0)] + packed.unsorted_indices.unsqueeze(1)
        flat = packed.data
    else:
        rows = index.clamp(min=0) + row_start
        flat = outputs.flatten(0, 1)
    outputs = flat.index_select(0, rows.flatten()).view(batch, steps, -1)
    keep = mask if zero_masked else index >= 0
    return outputs.masked_fill_(~keep.unsqueeze(-1), 0.0), last, final


def apply(module) -> bool:
    """Point the generated program that defines `module`'s class at this keras_rnn; True if it used one."""
    program = sys.modules[type(module).__module__]
    if not hasattr(program, "keras_rnn"):
        return False
    program.keras_rnn = keras_rnn
    return True
