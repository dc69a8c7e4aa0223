"""The masked kernel's eager shortcuts, each against Keras's recurrence stepped in float64.

`keras_rnn` takes different paths by the batch it is given, eagerly: the plain kernel without
padding, no moving and no gather-back for right padding (outputs written in place when autograd
does not need them), the kernel over chunks of steps on long sequences, and only each row's last
output where the sequence is not returned. Every path must give Keras's values at every position,
its gradients too, and the whole sequence of outputs must not be held where it is not used.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import torch
from torch import nn

from rnnspec.runtime import torch_rnn as R
from tests.test_export import reference

BATCH, STEPS = 70, 75  # padded: three chunks of 32 steps


def mask_for(padding: str) -> torch.Tensor:
    gen = torch.Generator().manual_seed(3)
    lengths = torch.randint(1, STEPS + 1, (BATCH,), generator=gen)
    lengths[0] = STEPS
    right = torch.arange(STEPS) < lengths.unsqueeze(1)
    if padding == "none":
        return torch.ones(BATCH, STEPS, dtype=torch.bool)
    if padding == "right":
        return right
    if padding == "right, short and empty rows":  # the kernel stops before the last step
        right[:, 60:] = False
        right[1] = False
        return right
    if padding == "holes":
        holes = torch.rand(BATCH, STEPS, generator=gen) > 0.3
        holes[2] = False
        return holes
    raise AssertionError(padding)


def repeated(outputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Keras's outputs outside a Bidirectional: a masked step repeats the last unmasked one."""
    shown, out = torch.zeros_like(outputs[:, 0]), []
    for t in range(outputs.shape[1]):
        shown = torch.where(mask[:, t : t + 1], outputs[:, t], shown)
        out.append(shown)
    return torch.stack(out, 1)


def peak_bytes(call) -> int:
    """The most bytes torch's CPU allocator held during one call, above the level at its start."""
    call()
    with torch.profiler.profile(profile_memory=True) as prof:
        call()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trace.json"
        prof.export_chrome_trace(str(path))
        events = json.loads(path.read_text())["traceEvents"]
    return max(e["args"]["Total Allocated"] for e in events if e.get("name") == "[memory]")


PADDINGS = ["none", "right", "right, short and empty rows", "holes"]


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("sequences", [True, False])
@pytest.mark.parametrize("grad", [False, True])
def test_every_eager_path_gives_keras_values_and_gradients(padding, kind, bidirectional, sequences, grad):
    torch.manual_seed(0)
    rnn = getattr(nn, kind)(3, 5, batch_first=True, bidirectional=bidirectional)
    mask = mask_for(padding)
    x = torch.randn(BATCH, STEPS, 3)
    zero_masked = bidirectional
    x_double = x.double().requires_grad_(grad)
    want_out, want_last, want_final = reference(rnn, x_double, mask)
    if not zero_masked:
        want_out = repeated(want_out, mask)
    x.requires_grad_(grad)
    states = not bidirectional  # (both ways for each kind and `sequences`)
    with torch.set_grad_enabled(grad):
        out, last, final = R.keras_rnn(
            rnn, x, mask, sequences=sequences, zero_masked=zero_masked, states=states
        )
    if sequences:
        torch.testing.assert_close(out.double(), want_out, atol=1e-5, rtol=0)
    else:
        assert out is None
    torch.testing.assert_close(last.double(), want_last, atol=1e-5, rtol=0)
    finals = final if isinstance(final, tuple) else (final,)
    wanted = want_final if isinstance(want_final, tuple) else (want_final,)
    if states:
        for found, want in zip(finals, wanted, strict=True):
            torch.testing.assert_close(found.double(), want, atol=1e-5, rtol=0)
    else:
        assert final is None
    if grad:
        # Through the gather-back, the chunks and the out-of-place shortcuts alike.
        weights = torch.linspace(-1, 1, last.shape[-1])
        used = (out.sum(-1).pow(2).sum() if sequences else 0) + (last * weights).sum()
        (x_grad,) = torch.autograd.grad(used, x)
        want_used = (want_out.sum(-1).pow(2).sum() if sequences else 0) + (want_last * weights).sum()
        (want_grad,) = torch.autograd.grad(want_used, x_double)
        torch.testing.assert_close(x_grad.double(), want_grad, atol=1e-4, rtol=0)


@pytest.mark.parametrize("grad", [False, True])
def test_a_batch_without_padding_runs_in_chunks_where_the_workspace_is_large(grad):
    """Every row to the end, on a layer whose workspace over the whole sequence passes the
    chunk budget: the kernel runs in chunks, the state carried, and gives Keras's values."""
    torch.manual_seed(0)
    rnn = nn.LSTM(3, 256, batch_first=True)
    mask = mask_for("none")
    x = torch.randn(BATCH, STEPS, 3)
    want_out, want_last, _ = reference(rnn, x.double(), mask)
    with torch.set_grad_enabled(grad), torch.profiler.profile() as prof:
        out, last, _ = R.keras_rnn(rnn, x, mask)
    assert sum(e.name == "aten::lstm" for e in prof.events()) == 2
    torch.testing.assert_close(out.double(), want_out, atol=1e-5, rtol=0)
    torch.testing.assert_close(last.double(), want_last, atol=1e-5, rtol=0)


def test_packed_rows_cut_short_by_the_layer_before_come_back_at_every_step():
    """A layer given the packed rows of the layer before (cut after the longest row) puts its
    outputs back at every step of the mask, as Keras's stack computes them."""
    torch.manual_seed(0)
    first, second = nn.GRU(3, 4, batch_first=True), nn.LSTM(4, 5, batch_first=True)
    mask = mask_for("holes")
    mask[:, -3:] = False  # no row reaches the last steps
    x = torch.randn(BATCH, STEPS, 3)
    with torch.no_grad():
        packed, _, _ = R.keras_rnn(first, x, mask, packed=True)
        assert packed.data.shape[1] < STEPS
        out, _, _ = R.keras_rnn(second, packed, mask)
        between, _, _ = reference(first, x.double(), mask)
        want, _, _ = reference(second, between, mask)
    torch.testing.assert_close(out.double(), repeated(want, mask), atol=1e-5, rtol=0)


def test_right_padding_is_neither_moved_nor_gathered():
    """No gather over the outputs (nor the inputs) when the rows are padded on the right."""
    torch.manual_seed(0)
    rnn = nn.LSTM(3, 5, batch_first=True)
    x, mask = torch.randn(BATCH, STEPS, 3), mask_for("right")
    with torch.no_grad(), torch.profiler.profile(record_shapes=True) as prof:
        R.keras_rnn(rnn, x, mask)
    # gather(input, dim, index): only the pick of each row's last output, one step per chunk.
    picked = [e.input_shapes[2] for e in prof.events() if e.name == "aten::gather"]
    assert picked and all(index[1] == 1 for index in picked), picked
    assert not any(e.name == "aten::scatter_" for e in prof.events())


@pytest.mark.parametrize("padding", ["right", "holes"])
def test_rows_past_their_last_step_drop_out_of_the_kernel(padding):
    """A chunk of steps runs only the rows with a step in it: the kernel is given the rows
    that are still running, fewer from chunk to chunk, and no row-step after a row's end
    beyond its last chunk (the values are checked on every path above)."""
    torch.manual_seed(0)
    rnn = nn.LSTM(3, 5, batch_first=True)
    x, mask = torch.randn(BATCH, STEPS, 3), mask_for(padding)
    with torch.no_grad(), torch.profiler.profile(record_shapes=True) as prof:
        R.keras_rnn(rnn, x, mask)
    # aten::lstm(input, hx, params, ...): the input of each chunk, (rows, steps, features).
    given = [e.input_shapes[0] for e in prof.events() if e.name == "aten::lstm"]
    rows = [shape[0] for shape in given]
    assert rows == sorted(rows, reverse=True) and rows[-1] < BATCH, given
    lengths = mask.sum(1)
    for (count, _, _), start in zip(given, range(0, STEPS, 32), strict=False):
        # (An empty row does not run at all.)
        assert count == int((lengths > start).sum()), (start, given)
    assert sum(count * steps for count, steps, _ in given) < 0.8 * BATCH * STEPS, given


@pytest.mark.parametrize("padded", [True, False])
def test_no_sequence_of_outputs_is_held_where_only_the_last_is_used(padded):
    torch.manual_seed(0)
    rnn = nn.LSTM(16, 128, batch_first=True)
    x = torch.randn(64, 256, 16)
    lengths = torch.randint(64, 257, (64,)) if padded else torch.full((64,), 256)
    lengths[0] = 256
    mask = torch.arange(256) < lengths.unsqueeze(1)
    sequence_bytes = 64 * 256 * 128 * 4
    with torch.no_grad():
        last_only = peak_bytes(lambda: R.keras_rnn(rnn, x, mask, sequences=False))
        whole = peak_bytes(lambda: R.keras_rnn(rnn, x, mask))
    # The kernel's workspace (four gates per step) over a chunk, never the whole sequence.
    assert last_only < sequence_bytes, last_only
    # The outputs once, and one chunk's workspace: 32 steps where rows drop out; where every
    # row runs to the end, chunks of up to 16 MiB of workspace (fewer calls, fewer copies).
    assert whole < (2.5 if padded else 4.5) * sequence_bytes, whole
