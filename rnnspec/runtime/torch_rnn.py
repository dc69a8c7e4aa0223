"""The PyTorch programs' runtime: Keras's masked recurrence over torch's kernels, and the rest.

Each top-level definition here is copied as written into every generated program that uses it,
with the definitions it refers to (rnnspec.runtime.source), so that a program imports only
torch. A definition may refer to `math`, `torch`, `F`, `nn` and the other definitions here,
nothing else; the text is formatted for 88 columns, the generated programs' width (this folder's
ruff.toml).

Every program runs eagerly, under `torch.jit.trace` (no branch depends on the values of a
batch, so a trace holds on any padding), under `torch.export` and the ONNX exporter with
free batch and time dimensions (there, each recurrence runs as a `scan`: torch's fused kernels
fix the number of timesteps when exported) and under `torch.jit.script`, which compiles what
`torch.jit.is_scripting()` selects (the recurrent modules' `masked` and `forward`: the branch
it skips is never compiled) and takes the annotations as types.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def exporting() -> bool:
    """Whether torch.export (or the ONNX exporter, which uses it) is tracing the program.

    (Never under torch.jit.script, nor where torch.compiler.is_exporting is missing, in
    older torch.)
    """
    if torch.jit.is_scripting():
        return False
    is_exporting = getattr(torch.compiler, "is_exporting", None)
    return is_exporting is not None and is_exporting()


class PackedRows:
    """A layer's outputs with each row's unmasked steps moved to the front, in order, for a
    next layer under the same mask (which takes them as its `x`, and skips the moving)."""

    def __init__(self, data):
        self.data = data


def keras_rnn(
    rnn,
    x,
    mask,
    state=None,
    sequences=True,
    zero_masked=False,
    packed=False,
    states=False,
):
    """Run `rnn` the way Keras runs a masked RNN: over each row's unmasked timesteps, in order.

    At a masked timestep the state is held and the output repeats the last unmasked output
    (zeros before the first); with `zero_masked`, as inside Keras's Bidirectional, it is zero.
    Returns the outputs (None unless `sequences`), each direction's last output, and the
    final state (None unless `states`: an LSTM's cell state costs a second pass to recover).
    With `packed`, the outputs stay packed for a next layer under the same mask, which takes
    them as its `x`.

    Each row's unmasked steps are moved to the front and the fused kernel runs over the whole
    batch unpacked: the outputs of a row's first `length` steps are exactly its outputs, the
    rest are dropped. Eagerly, a batch without padding is not moved either, nor is one padded
    on the right only (its steps are at the front already).
    """
    fused = isinstance(rnn, nn.RNNBase)
    if fused and exporting():
        if not isinstance(x, torch.Tensor):
            x = x.data
        outputs, last, final = scan_rnn(rnn, x, mask, state, zero_masked)
        return outputs if sequences else None, last, final if states else None
    eager = not (torch.jit.is_tracing() or exporting())
    lengths = mask.sum(dim=1)
    in_place = False  # the unmasked steps are at the front of the input already
    moved = False  # a copy of `x` with them moved there (`pack_rows`) is held
    if not isinstance(x, torch.Tensor):  # PackedRows, of whichever program
        x = x.data  # each row's unmasked steps already, from the layer before
    elif eager and bool(mask.all()):
        # Nothing to skip: the kernel as it is, in chunks (`run_chunks`) where it runs one
        # direction over more steps than a chunk holds and no final state is asked for (both
        # directions in one call are faster than chunks).
        chunks = fused and x.shape[1] > chunk_steps(rnn, x.shape[0], sequences)
        if chunks and not (states or rnn.bidirectional):
            outputs, last, _ = fused_rows(rnn, x, None, state, False, sequences)
            return outputs, last, None
        outputs, final = rnn(x, state) if fused else rnn(x, state, None)
        last = final[0] if isinstance(final, tuple) else final
        return outputs if sequences else None, last, final if states else None
    elif eager and bool((mask[:, 1:] <= mask[:, :-1]).all()):
        in_place = True  # right padding
    else:
        x = pack_rows(x, mask, lengths)
        moved = True
    steps = x.shape[1]
    if eager:
        # Steps after every row's last one need no run (a trace or an export keeps them).
        x = x[:, : max(int(lengths.max()), 1)]
    if fused:
        outputs, last, final = fused_rows(
            rnn, x, lengths, state, states, sequences, packable=not moved
        )
    else:
        outputs, final = rnn(x, state, lengths)
        last = final[0] if isinstance(final, tuple) else final
    del x
    # A row with no unmasked step keeps its initial state and outputs zeros (`fused_rows`
    # gives it a zero last output already).
    empty = (lengths == 0).view(1, -1, 1)
    if not fused:
        last = torch.where(empty, 0.0, last)
    if states:
        finals = final if isinstance(final, tuple) else (final,)
        initials = state if isinstance(state, tuple) else (state,) * len(finals)
        finals = tuple(
            torch.where(empty, 0.0 if initial is None else initial, f)
            for f, initial in zip(finals, initials, strict=True)
        )
        final = finals if isinstance(final, tuple) else finals[0]
    else:
        final = None
    if not sequences:
        return None, last, final
    if packed:
        return PackedRows(outputs), last, final
    return unpack_rows(outputs, mask, last, steps, in_place, zero_masked), last, final


def unpack_rows(outputs, mask, last, steps, in_place, zero_masked):
    """The outputs of packed rows (`in_place`: of rows padded on the right) put back at their
    `steps` timesteps: step t shows the output of its row's last unmasked step at or before t
    (zeros before the first, and at every masked step with `zero_masked`).

    Whole rows of features are moved (index_select, index_copy): an elementwise gather or
    where over every feature costs several times as much.
    """
    batch, size = mask.shape[0], outputs.shape[-1]
    # (In place on a kernel's output only where autograd keeps no reference to it.)
    reuse = not (torch.is_grad_enabled() and outputs.requires_grad)
    if in_place:
        if outputs.shape[1] < steps:
            outputs = F.pad(outputs, (0, 0, 0, steps - outputs.shape[1]))
        if (
            not outputs.is_contiguous()
        ):  # (a kernel's own output: not copied to flatten it)
            row, step = (~mask).nonzero().unbind(1)  # the masked steps
            if zero_masked:
                shown = outputs.new_zeros(())
            else:  # after a row's last unmasked step, its last output (zeros if empty)
                shown = torch.cat(last.unbind(0), dim=-1).index_select(0, row)
            if reuse:
                return outputs.index_put_((row, step), shown)
            return outputs.index_put((row, step), shown)
        flat = outputs.view(-1, size)
        hide = (
            (~mask).flatten().nonzero().squeeze(1)
        )  # row * steps + step, masked steps
        if zero_masked:
            flat = (
                flat.index_fill_(0, hide, 0.0)
                if reuse
                else flat.index_fill(0, hide, 0.0)
            )
        else:
            shown = torch.cat(last.unbind(0), dim=-1).index_select(0, hide // steps)
            if reuse:
                flat = flat.index_copy_(0, hide, shown)
            else:
                flat = flat.index_copy(0, hide, shown)
        return flat.view(batch, steps, size)
    index = mask.cumsum(dim=1) - 1
    # (Every step of the mask: packed rows from a layer before may have been cut shorter.)
    shown = take_steps(outputs, index.clamp(min=0))
    return zero_steps(shown, ~mask if zero_masked else index < 0)


def pack_rows(x, mask, lengths):
    """Each row's unmasked steps moved to the front, in order; zeros after them."""
    valid = mask.long()
    # Unmasked step t goes to the number of unmasked steps before it; masked steps after all.
    slot = torch.where(
        mask, valid.cumsum(1), lengths.unsqueeze(1) + (1 - valid).cumsum(1)
    )
    # Front slot s takes step `source[s]`: the inverse permutation, on the small index only.
    steps = torch.arange(x.shape[1], device=x.device).expand_as(mask)
    source = torch.empty(mask.shape, dtype=torch.long, device=x.device)
    source = source.scatter_(1, slot - 1, steps)
    front = take_steps(x, source)
    return zero_steps(front, steps >= lengths.unsqueeze(1))


def reverse_valid(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Reverse each row's first `lengths[b]` timesteps (all of them when `lengths` is None)."""
    if lengths is None:
        return x.flip(1)
    steps = torch.arange(x.shape[1], device=x.device)
    valid = steps < lengths.unsqueeze(-1)
    index = torch.where(valid, lengths.unsqueeze(-1) - 1 - steps, steps)
    return take_steps(x, index)


def take_steps(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """`out[b, t] = x[b, index[b, t]]`, each step's whole row of features moved at once (by
    its index in the flattened batch: an elementwise gather over every feature costs several
    times as much)."""
    start = torch.arange(x.shape[0], device=x.device).unsqueeze(1) * x.shape[1]
    flat = x.reshape(-1, x.shape[-1]).index_select(0, (index + start).flatten())
    return flat.view(index.shape[0], index.shape[1], x.shape[-1])


def zero_steps(x: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """`x` (contiguous, batch x steps x features) with the steps where `hidden` zeroed in
    place, whole rows of features at once."""
    flat = x.view(-1, x.shape[-1])
    if (
        exporting()
    ):  # (no size that depends on the values: torch.export cannot trace one)
        flat.masked_fill_(hidden.reshape(-1, 1), 0.0)
    else:
        flat.index_fill_(0, hidden.flatten().nonzero().squeeze(1), 0.0)
    return x


def fused_rows(rnn, x, lengths, state, states, sequences=True, packable=True):
    """A fused module over rows whose unmasked steps come first: (outputs, last, final).

    Each direction runs on its own (the reverse one over each row's steps reversed), so that
    every row's steps are a prefix of what the kernel reads. The final state is each
    direction's output at the row's last step; an LSTM's cell state is not among the outputs
    and is recomputed from them (`lstm_cell_state`), only when `states` asks for it. The
    outputs are None without `sequences`; `lengths` None is every step of every row.
    `packable`: whether a GRU or SimpleRNN may run torch's packed kernel (`run_chunks`).
    """
    lstm = rnn.mode == "LSTM"
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if rnn.bias else [])
    outputs, lasts, cells = [], [], []
    if lengths is None:  # every step of every row
        lengths = torch.full(x.shape[:1], x.shape[1], device=x.device)
        reverse = None
    else:
        reverse = lengths
    for direction in range(2 if rnn.bidirectional else 1):
        suffix = "_reverse" if direction else ""
        weights = [getattr(rnn, f"{name}_l0{suffix}") for name in names]
        steps = reverse_valid(x, reverse) if direction else x
        if state is None:
            h0 = x.new_zeros(1, x.shape[0], rnn.hidden_size)
            initial = (h0, h0) if lstm else h0
        elif lstm:
            initial = (
                state[0][direction : direction + 1],
                state[1][direction : direction + 1],
            )
        else:
            initial = state[direction : direction + 1]
        keep = sequences or (lstm and states)
        y, last = run_chunks(rnn, steps, initial, weights, lengths, keep, packable)
        lasts.append(last)
        if lstm and states:
            h0, c0 = (i[0] for i in initial)
            cells.append(lstm_cell_state(steps, y, lengths, h0, c0, weights))
        if sequences:
            outputs.append(reverse_valid(y, reverse) if direction else y)
        del steps, y
    last = torch.stack(lasts)
    final = (last, torch.stack(cells)) if lstm and states else last
    if not sequences:
        return None, last, final
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1), last, final


def run_chunks(rnn, x, initial, weights, lengths, sequences, packable=True):
    """One direction of a fused module over `x`, a chunk of steps at a time (the state carried
    from one to the next): the outputs (None unless `sequences`) and each row's output at its
    step `lengths[b] - 1` (zeros for an empty row).

    The kernel's workspace grows with the rows times the steps it is given, times the gates
    and units: chunks of about 8192 row-steps of 128-unit LSTM gates (16 MiB; at least 32
    steps) bound it on long sequences (each chunk costs a call and a copy of its outputs,
    4-8% of the time at 64 rows x 120 steps in 32-step chunks); 2048 row-steps where only
    each row's last output is kept (no copy, and the sequence is never held whole, so
    chunks cost about 2%). Where rows are shorter and
    the batch is wide (32 rows or more), chunks of 32 steps over the rows taken longest
    first, and a chunk runs only the rows with a step in it: a row past its last step drops
    out (its outputs there are zeros, never shown), which saves the padded rows' work and
    most of the workspace. (A narrower batch gains no time from fewer rows: the kernel's
    cost per call and per step dominates there.) One chunk of every row under
    torch.jit.trace, which would fix the number of chunks and of rows.

    A GRU or SimpleRNN over rows of different lengths runs torch's packed kernel instead
    (`run_packed`), where `packable`: not where the rows were moved into a copy of the
    input first (left padding, holes), whose packed form would be a second copy
    (1.29x the hand-written code's peak memory at 64 x 120 x 128, against 0.99 in chunks).
    """
    batch, steps = x.shape[:2]
    tracing = torch.jit.is_tracing()
    if tracing:
        # Sizes are tensors here: no Python comparison of them, which would warn.
        chunk, starts, shortest = steps, [0], steps
    else:
        shortest = max(int(lengths.min()), 1)
        if shortest < steps and rnn.mode != "LSTM" and packable:
            return run_packed(rnn, x, initial, weights, lengths, sequences)
        if shortest < steps and batch >= 32:
            chunk = 32
        else:
            chunk = chunk_steps(rnn, batch, sequences)
        starts = list(range(0, steps, chunk))
    counts = [batch] * len(starts)  # how many rows each chunk runs
    order = None  # the rows, longest first, where some drop out
    if len(starts) > 1 and shortest < steps:
        order = torch.argsort(lengths, descending=True, stable=True)
        lengths = lengths.index_select(0, order)
        first = torch.tensor(starts, device=x.device).unsqueeze(1)
        counts = (lengths > first).sum(1).clamp(min=1).tolist()
        initial = each_state(initial, lambda s: s.index_select(1, order))
    end = lengths - 1
    last = x.new_zeros(batch, rnn.hidden_size)
    outputs = []
    # Without autograd, each chunk's outputs go straight into their place.
    into = None
    if not (tracing or torch.is_grad_enabled() or not sequences or steps <= chunk):
        into = True
    if into:
        into = x.new_empty(batch, steps, rnn.hidden_size)
    for start, rows in zip(starts, counts, strict=True):
        short = order is not None and rows < batch  # some rows do not run
        part = x[:, start : start + chunk]
        if order is not None:
            part = part.index_select(0, order[:rows])
            if rows < end.shape[0]:  # the rows past their last step drop out
                initial = each_state(initial, lambda s, rows=rows: s[:, :rows])
                end = end[:rows]
        y, *state = run_direction(rnn, part, initial, weights)
        initial = tuple(state) if len(state) > 1 else state[0]
        at = (end - start).clamp(0, y.shape[1] - 1)
        here = y.gather(1, at.view(-1, 1, 1).expand(-1, 1, y.shape[-1])).squeeze(1)
        inside = ((end >= start) & (end < start + y.shape[1])).unsqueeze(-1)
        if short:
            last = torch.cat([torch.where(inside, here, last[:rows]), last[rows:]])
        else:
            last = torch.where(inside, here, last)
        # (In the rows' sorted order; zeros for the rows that do not run.)
        if into is not None:
            into[:rows, start : start + y.shape[1]] = y
            if short:
                into[rows:, start : start + y.shape[1]] = 0.0
        elif sequences:
            outputs.append(F.pad(y, (0, 0, 0, 0, 0, batch - rows)) if short else y)
        del y, part  # before the next chunk's kernel runs
    if into is not None:
        outputs = [into]
    y = None
    if sequences:
        y = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)
    if order is not None:  # back to the rows' own places
        inverse = torch.argsort(order)  # (of a permutation: its inverse)
        last = last.index_select(0, inverse)
        if y is not None:
            y = y.index_select(0, inverse)
    return y, last


def each_state(state, f):
    """`f` of a recurrent state: of each of an LSTM's (h, c), or of a GRU's or RNN's h."""
    return tuple(f(s) for s in state) if isinstance(state, tuple) else f(state)


def chunk_steps(rnn, batch, sequences):
    """How many steps of `batch` rows `run_chunks` gives the kernel at a time where every row
    runs to the end: about 8192 row-steps of 128-unit LSTM gates (16 MiB), 2048 where only
    each row's last output is kept, and at least 32 steps."""
    gates = {"LSTM": 4, "GRU": 3}.get(rnn.mode, 1) * rnn.hidden_size
    budget = (8192 if sequences else 2048) * 512
    return max(32, budget // max(batch * gates, 1))


def run_packed(rnn, x, initial, weights, lengths, sequences):
    """One direction of a GRU or SimpleRNN over rows whose steps come first, as torch's
    packed kernel runs it: at each step only the rows that have it, longest first. torch
    runs these two in its own loop of small ops a step, whose cost grows with the rows, so
    dropping each row at its last step beats 32-step chunks (at 64 x 120 with right padding,
    0.92-0.95x the hand-written packed code's time, where chunks took 1.07-1.10x;
    `run_chunks` keeps chunks for the LSTM, whose oneDNN kernel has no packed form and a
    cost per call). The same result as
    `run_chunks`: the outputs (zeros past a row's last step; None unless `sequences`) and
    each row's output at its last step (zeros for an empty row)."""
    batch, steps = x.shape[:2]
    order = torch.argsort(lengths, descending=True, stable=True)
    ordered = lengths.index_select(0, order)
    taken = torch.arange(steps, device=x.device) < ordered.unsqueeze(1)
    step, row = taken.t().nonzero(as_tuple=True)  # time-major, longest rows first
    where = order.index_select(0, row) * steps + step
    data = x.reshape(batch * steps, -1).index_select(0, where)
    sizes = taken.sum(0)
    sizes = sizes[sizes > 0].cpu()
    rows = int(sizes[0])  # the rows with a step: the empty ones are last, and skipped
    run = {"GRU": torch.gru, "RNN_TANH": torch.rnn_tanh, "RNN_RELU": torch.rnn_relu}
    bias = len(weights) == 4
    h0 = initial.index_select(1, order[:rows])
    y, h = run[rnn.mode](data, sizes, h0, weights, bias, 1, 0.0, False, False)
    del data
    last = F.pad(h[0], (0, 0, 0, batch - rows)).index_select(0, torch.argsort(order))
    if not sequences:
        return None, last
    outputs = y.new_zeros(batch * steps, y.shape[-1]).index_copy_(0, where, y)
    return outputs.view(batch, steps, -1), last


def run_direction(rnn, x, initial, weights):
    """One direction of a fused module (its `weights`, torch's order) over `x`: the outputs
    and the final state, (y, h) or (y, h, c)."""
    bias = len(weights) == 4
    if rnn.mode == "LSTM":
        return torch.lstm(x, initial, weights, bias, 1, 0.0, False, False, True)
    run = {"GRU": torch.gru, "RNN_TANH": torch.rnn_tanh, "RNN_RELU": torch.rnn_relu}
    return run[rnn.mode](x, initial, weights, bias, 1, 0.0, False, False, True)


def lstm_cell_state(
    x: torch.Tensor,
    outputs: torch.Tensor,
    lengths: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    weights: list[torch.Tensor],
) -> torch.Tensor:
    """An LSTM's cell state after each row's first `lengths[b]` steps, from its outputs.

    The gates of every step follow from the step's input and the output before it, all in
    one matmul; then c_n = c0 * prod(f) + sum_k i_k g_k * prod(f_j, k < j <= n), with the
    products summed as logarithms in float64 (exact where a forget gate is zero, as its
    logarithm is -inf and the suffix sums never subtract).
    """
    w_ih, w_hh = weights[0], weights[1]
    b_ih = weights[2] if len(weights) == 4 else None
    b_hh = weights[3] if len(weights) == 4 else None
    before = torch.cat([h0.unsqueeze(1), outputs[:, :-1]], dim=1)
    i, f, g, _ = (F.linear(x, w_ih, b_ih) + F.linear(before, w_hh, b_hh)).chunk(
        4, dim=-1
    )
    steps = torch.arange(x.shape[1], device=x.device)
    valid = (steps < lengths.unsqueeze(-1)).unsqueeze(-1)
    log_f = torch.where(valid, torch.log(torch.sigmoid(f).double()), 0.0)
    after = log_f.flip(1).cumsum(1).flip(1)  # sum of log f_j over j >= k
    later = torch.cat([after[:, 1:], torch.zeros_like(after[:, :1])], dim=1)  # j > k
    added = torch.where(valid, torch.sigmoid(i).double() * torch.tanh(g).double(), 0.0)
    c = (later.exp() * added).sum(dim=1) + after[:, 0].exp() * c0.double()
    return c.to(x.dtype)


def scan_rnn(rnn, x, mask, state=None, zero_masked=False):
    """A fused module's recurrence as Keras steps it, as a `scan` torch.export can trace with a
    free number of timesteps: (outputs, each direction's last output, final state).

    At a step the mask leaves out (`mask` None: none), the state is held and the output
    repeats the last one (zeros before the first; with `zero_masked`, zeros).
    """
    from torch._higher_order_ops.scan import scan

    mode = rnn.mode  # (the scanned step may not touch the module)
    lstm = mode == "LSTM"
    # Time first, as the scan takes its steps, and copied whole (`time_first`).
    x = time_first(x)
    if mask is None:
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    else:
        mask = time_first(mask)
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if rnn.bias else [])
    outputs, lasts, finals = [], [], []
    for direction in range(2 if rnn.bidirectional else 1):
        suffix = "_reverse" if direction else ""
        weights = [getattr(rnn, f"{name}_l0{suffix}") for name in names]
        w_hh = weights[1]
        b_hh = weights[3] if rnn.bias else None
        # (Distinct tensors: the scan's tracer takes aliased inputs for one.)
        zeros = [x.new_zeros(x.shape[1], rnn.hidden_size) for _ in range(3)]
        if state is None:
            initial = zeros[:2] if lstm else zeros[:1]
        elif lstm:
            initial = [state[0][direction].clone(), state[1][direction].clone()]
        else:
            initial = [state[direction].clone()]

        def step(carry, inputs, w_hh=w_hh, b_hh=b_hh):
            *old, out = carry
            projected, valid = inputs
            new = keras_cell(mode, projected, old, w_hh, b_hh)
            valid = valid.unsqueeze(-1)
            new = [torch.where(valid, n, o) for n, o in zip(new, old, strict=True)]
            out = torch.where(valid, new[0], out)
            shown = torch.where(valid, new[0], 0.0) if zero_masked else out
            return [*new, out], shown.clone()

        projected = F.linear(x, weights[0], weights[2] if rnn.bias else None)
        carry, y = scan(
            step, [*initial, zeros[2]], (projected, mask), reverse=direction == 1
        )
        *final, last = carry
        outputs.append(y)
        lasts.append(last)
        finals.append(final)
    final = [torch.stack(f) for f in zip(*finals, strict=True)]
    final = tuple(final) if lstm else final[0]
    return time_first(torch.cat(outputs, dim=-1)), torch.stack(lasts), final


def time_first(x):
    """`x` with its first two axes swapped (batch first <-> time first), as a contiguous copy.

    Under torch.export: a view of a length the program computes from the input's (a strided
    convolution's, a pooling's) has torch ask whether that length is 1 (whether the view is
    contiguous), and guard the artefact's input length with the answer; a copy made contiguous
    is contiguous at every length.
    """
    return x.transpose(0, 1).clone(memory_format=torch.contiguous_format)


def keras_cell(mode, projected, state, w_hh, b_hh):
    """One step of a fused module's cell, from the step's input projection: the new state."""
    recurrent = F.linear(state[0], w_hh, b_hh)
    if mode == "LSTM":
        i, f, g, o = (projected + recurrent).chunk(4, dim=-1)
        c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
        return [torch.sigmoid(o) * torch.tanh(c), c]
    if mode == "GRU":
        x_r, x_z, x_n = projected.chunk(3, dim=-1)
        h_r, h_z, h_n = recurrent.chunk(3, dim=-1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return [(1 - z) * n + z * state[0]]
    if mode == "RNN_RELU":
        return [torch.relu(projected + recurrent)]
    return [torch.tanh(projected + recurrent)]


class OneState:
    """The typed `forward` of a recurrent module with one state, h (GRU, SimpleRNN)."""

    def forward(
        self,
        x: torch.Tensor,
        state: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(outputs, final state) over `x`, batch first, from `state` (zeros if None); a row
        stops after `lengths[b]` steps (a stepped module only)."""
        outputs, final = self.recur(x, [] if state is None else [state], lengths)
        return outputs, final[0]


class TwoStates:
    """The typed `forward` of a recurrent module with two states, (h, c) (LSTM)."""

    def forward(
        self,
        x: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
        lengths: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """(outputs, (h, c)) over `x`, batch first, from `state` (zeros if None); a row stops
        after `lengths[b]` steps (a stepped module only)."""
        outputs, final = self.recur(x, [] if state is None else list(state), lengths)
        return outputs, (final[0], final[1])


class FusedRecurrence:
    """torch's fused nn.RNN / nn.GRU / nn.LSTM (same parameters, same state_dict) with a
    `forward` that torch.export traces with a free number of timesteps (as a `scan`) and
    torch.jit.script compiles."""

    def recur(
        self, x: torch.Tensor, state: list[torch.Tensor], lengths: torch.Tensor | None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if not torch.jit.is_scripting():
            initial = None
            if state:
                initial = tuple(state) if len(state) > 1 else state[0]
            if exporting():
                outputs, _, final = scan_rnn(self, x, None, initial)
            else:
                outputs, final = super().forward(x, initial)
            return outputs, list(final) if isinstance(final, tuple) else [final]
        if len(state) == 0:
            zeros = x.new_zeros(self.directions(), x.shape[0], self.hidden_size)
            state = [zeros, zeros] if self.mode == "LSTM" else [zeros]
        return self.kernel(x, state, self._flat_weights, self.bidirectional)

    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def kernel(
        self,
        x: torch.Tensor,
        state: list[torch.Tensor],
        weights: list[torch.Tensor],
        bidirectional: bool,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """This module's fused kernel (one layer, batch first): (outputs, final states)."""
        bias, train = self.bias, self.training
        if self.mode == "LSTM":
            y, h, c = torch.lstm(
                x, state, weights, bias, 1, 0.0, train, bidirectional, True
            )
            return y, [h, c]
        h0, args = state[0], (weights, bias, 1, 0.0, train, bidirectional, True)
        if self.mode == "GRU":
            y, h = torch.gru(x, h0, *args)
        elif self.mode == "RNN_RELU":
            y, h = torch.rnn_relu(x, h0, *args)
        else:
            y, h = torch.rnn_tanh(x, h0, *args)
        return y, [h]


class FusedRNN(OneState, FusedRecurrence, nn.RNN):
    """nn.RNN, exportable and scriptable (FusedRecurrence)."""


class FusedGRU(OneState, FusedRecurrence, nn.GRU):
    """nn.GRU, exportable and scriptable (FusedRecurrence)."""


class FusedLSTM(TwoStates, FusedRecurrence, nn.LSTM):
    """nn.LSTM, exportable and scriptable (FusedRecurrence)."""


class MaskedRecurrence:
    """What the masked recurrent modules share: Keras's masked recurrence as TorchScript
    compiles it, for `masked` (MaskedOneState, MaskedTwoStates).

    Eagerly, traced and exported, `masked` is `keras_rnn`; scripted, every row's unmasked
    steps are moved to the front and the recurrence runs over all of them (`run_rows`, each
    module's own), as under torch.jit.trace: the same function, without the eager shortcuts.
    """

    def scripted_masked(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        state: list[torch.Tensor],
        zero_masked: bool,
        states: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        lengths = mask.sum(dim=1)
        front = pack_rows(x, mask, lengths)
        outputs, last, final = self.run_rows(front, state, lengths, states)
        # A row with no unmasked step keeps its initial state and outputs zeros.
        empty = (lengths == 0).view(1, -1, 1)
        last = torch.where(empty, 0.0, last)
        if len(state) == 0:
            final = [torch.where(empty, 0.0, f) for f in final]
        else:
            final = [torch.where(empty, s, f) for s, f in zip(state, final)]
        # Step t shows its row's last unmasked output at or before t (as `unpack_rows`).
        index = mask.cumsum(dim=1) - 1
        rows = index.clamp(min=0).unsqueeze(-1).expand(-1, -1, outputs.shape[-1])
        hidden = ~mask.unsqueeze(-1) if zero_masked else (index < 0).unsqueeze(-1)
        return outputs.gather(1, rows).masked_fill_(hidden, 0.0), last, final


class MaskedOneState(OneState, MaskedRecurrence):
    """The typed `masked` of a recurrent module with one state, h (GRU, SimpleRNN)."""

    def masked(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        state: torch.Tensor | None = None,
        sequences: bool = True,
        zero_masked: bool = False,
        packed: bool = False,
        states: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`keras_rnn(self, x, mask, ...)`. Scripted, the outputs are unpacked whatever
        `packed` says, and the outputs and final state are there even when not asked for."""
        if not torch.jit.is_scripting():
            return keras_rnn(
                self, x, mask, state, sequences, zero_masked, packed, states
            )
        initial = [] if state is None else [state]
        outputs, last, final = self.scripted_masked(
            x, mask, initial, zero_masked, states
        )
        return outputs, last, final[0]


class MaskedTwoStates(TwoStates, MaskedRecurrence):
    """The typed `masked` of a recurrent module with two states, (h, c) (LSTM)."""

    def masked(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
        sequences: bool = True,
        zero_masked: bool = False,
        packed: bool = False,
        states: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """`keras_rnn(self, x, mask, ...)`. Scripted, the outputs are unpacked whatever
        `packed` says, and the outputs and final state are there even when not asked for
        (the cell state only with `states`: zeros without)."""
        if not torch.jit.is_scripting():
            return keras_rnn(
                self, x, mask, state, sequences, zero_masked, packed, states
            )
        initial = [] if state is None else list(state)
        outputs, last, final = self.scripted_masked(
            x, mask, initial, zero_masked, states
        )
        return outputs, last, (final[0], final[1])


class MaskedFused:
    """The scripted `run_rows` of the masked fused modules (MaskedRNN, MaskedGRU,
    MaskedLSTM)."""

    def run_rows(
        self,
        x: torch.Tensor,
        state: list[torch.Tensor],
        lengths: torch.Tensor,
        states: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """(outputs, last, final) over rows whose unmasked steps come first: each direction
        on its own (the reverse one over each row's steps reversed), the final h read at
        each row's last step, an LSTM's cell state recomputed (`lstm_cell_state`) with
        `states` only (zeros without)."""
        count = self.directions()
        size = len(self._flat_weights) // count
        zeros = x.new_zeros(1, x.shape[0], self.hidden_size)
        at = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, self.hidden_size)
        outputs, lasts, cells = [], [], []
        for direction in range(count):
            weights = self._flat_weights[direction * size : (direction + 1) * size]
            steps = reverse_valid(x, lengths) if direction == 1 else x
            initial = [s[direction : direction + 1] for s in state]
            if len(initial) == 0:
                initial = [zeros, zeros] if self.mode == "LSTM" else [zeros]
            y, _ = self.kernel(steps, initial, weights, False)
            lasts.append(y.gather(1, at).squeeze(1))
            if self.mode == "LSTM":
                if states:
                    h0, c0 = initial[0][0], initial[1][0]
                    c = lstm_cell_state(steps, y, lengths, h0, c0, weights)
                else:
                    c = zeros[0]
                cells.append(c)
            outputs.append(reverse_valid(y, lengths) if direction == 1 else y)
        last = torch.stack(lasts)
        final = [last, torch.stack(cells)] if self.mode == "LSTM" else [last]
        return torch.cat(outputs, dim=-1), last, final


class MaskedRNN(MaskedOneState, MaskedFused, FusedRNN):
    """FusedRNN with Keras's masked recurrence, `masked`."""


class MaskedGRU(MaskedOneState, MaskedFused, FusedGRU):
    """FusedGRU with Keras's masked recurrence, `masked`."""


class MaskedLSTM(MaskedTwoStates, MaskedFused, FusedLSTM):
    """FusedLSTM with Keras's masked recurrence, `masked`."""


class KerasRecurrent(nn.Module):
    """A recurrent layer in Keras's formulation, stepped one timestep at a time.

    Used only where torch's fused kernels cannot compute the Keras layer. Parameters are
    named and laid out as in nn.LSTM / nn.GRU / nn.RNN (gate blocks in torch's order), and
    `forward(x, state, lengths)` follows their batch-first conventions; a row stops
    updating its state after `lengths[b]` steps. In train mode, `dropout` and
    `recurrent_dropout` apply Keras's masks.
    """

    __constants__ = ("gates", "num_states")
    gates = 1
    num_states = 1

    def __init__(
        self,
        input_size,
        hidden_size,
        activation,
        recurrent_activation=None,
        bias=True,
        bidirectional=False,
        recurrent_bias=True,
        dropout=0.0,
        recurrent_dropout=0.0,
        shared=None,
    ):
        super().__init__()
        self.hidden_size = hidden_size
        self.activation = activation
        self.recurrent_activation = recurrent_activation
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.suffixes = ["", "_reverse"] if bidirectional else [""]
        if shared is not None:
            for name, param in shared.named_parameters():
                self.register_parameter(name, param)
        else:
            size = self.gates * hidden_size
            for suffix in self.suffixes:
                params = {
                    "weight_ih_l0": (size, input_size),
                    "weight_hh_l0": (size, hidden_size),
                }
                if bias:
                    params["bias_ih_l0"] = (size,)
                    if recurrent_bias:
                        params["bias_hh_l0"] = (size,)
                for name, shape in params.items():
                    empty = nn.Parameter(torch.empty(shape))
                    self.register_parameter(name + suffix, empty)
            bound = 1 / math.sqrt(hidden_size)
            for param in self.parameters():
                nn.init.uniform_(param, -bound, bound)
        # Each direction's parameters, those of the four names that exist, in this order:
        # by name (torch.export and torch.func swap parameters by name) and, for TorchScript,
        # which reads a parameter by a name written out only, as a list.
        self.input_bias = hasattr(self, "bias_ih_l0")
        self.recurrent_bias = hasattr(self, "bias_hh_l0")
        names = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
        self.weight_names = [
            [name + suffix for name in names if hasattr(self, name + suffix)]
            for suffix in self.suffixes
        ]
        self.direction_weights = [
            [getattr(self, name) for name in names] for names in self.weight_names
        ]

    @classmethod
    def stepping(cls, rnn, **options):
        """This layer stepped over the parameters of `rnn`, torch's fused module of its kind.

        For train-mode dropout, which torch's kernels cannot draw as Keras does; gradients
        reach `rnn`'s own parameters.
        """
        return cls(
            rnn.input_size,
            rnn.hidden_size,
            bidirectional=rnn.bidirectional,
            shared=rnn,
            **options,
        )

    def recur(
        self, x: torch.Tensor, state: list[torch.Tensor], lengths: torch.Tensor | None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(outputs, final states), each state [directions, batch, hidden_size]."""
        if len(state) == 0:
            zeros = x.new_zeros(len(self.suffixes), x.shape[0], self.hidden_size)
            state = [zeros for _ in range(self.num_states)]
        outputs = []
        finals: list[list[torch.Tensor]] = []
        for direction in range(len(self.suffixes)):
            steps = x if direction == 0 else reverse_valid(x, lengths)
            initial = [s[direction] for s in state]
            y, final = self.run(steps, initial, lengths, direction)
            outputs.append(y if direction == 0 else reverse_valid(y, lengths))
            finals.append(final)
        final = [torch.stack([f[k] for f in finals]) for k in range(self.num_states)]
        return torch.cat(outputs, dim=-1), final

    def run_rows(
        self,
        x: torch.Tensor,
        state: list[torch.Tensor],
        lengths: torch.Tensor,
        states: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """(outputs, last, final) over rows whose unmasked steps come first."""
        outputs, final = self.recur(x, state, lengths)
        return outputs, final[0], final

    def run(
        self,
        x: torch.Tensor,
        state: list[torch.Tensor],
        lengths: torch.Tensor | None,
        direction: int,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if torch.jit.is_scripting():
            weights = self.direction_weights[direction]
        else:
            weights = [getattr(self, name) for name in self.weight_names[direction]]
        w_ih, w_hh = weights[0], weights[1]
        b_ih = weights[2] if self.input_bias else None
        b_hh = weights[-1] if self.recurrent_bias else None
        input_masks, recurrent_masks = self.dropout_masks(x)
        # The input projection of every timestep in one matmul; only the recurrence loops.
        projected = gate_linear(x, w_ih, b_ih, input_masks)
        steps = torch.arange(x.shape[1], device=x.device)
        if lengths is None:
            valid = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        else:
            valid = steps < lengths.unsqueeze(-1)
        if not torch.jit.is_scripting():
            if exporting():
                return self.scan(projected, valid, state, w_hh, b_hh, recurrent_masks)
        outputs = []
        for t in range(x.shape[1]):
            new = self.step(projected[:, t], state, w_hh, b_hh, recurrent_masks)
            keep = valid[:, t].unsqueeze(-1)
            state = [torch.where(keep, n, s) for n, s in zip(new, state)]
            outputs.append(state[0])
        return torch.stack(outputs, dim=1), state

    def scan(self, projected, valid, state, w_hh, b_hh, masks):
        """`run`'s loop as a `scan`, which torch.export traces with a free number of steps."""
        from torch._higher_order_ops.scan import scan

        def step(old, inputs):
            projected, keep = inputs
            new = self.step(projected, old, w_hh, b_hh, masks)
            keep = keep.unsqueeze(-1)
            new = [torch.where(keep, n, s) for n, s in zip(new, old, strict=True)]
            return new, new[0].clone()

        steps = (time_first(projected), time_first(valid))
        # (Distinct tensors: the scan's tracer takes aliased inputs for one.)
        final, outputs = scan(step, [s.clone() for s in state], steps)
        return time_first(outputs), final

    def dropout_masks(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Keras's dropout masks for one direction in train mode: (input, recurrent), or None.

        As Keras 3 draws them: one mask per row, kept for every timestep; a separate input mask
        per gate only when `recurrent_dropout` is set (Keras's implementation 1), one shared
        by all gates otherwise; a recurrent mask per gate. Each element is kept with
        probability 1 - rate and scaled by 1 / (1 - rate).
        """
        if not self.training:
            return None, None
        batch = x.shape[0]
        input_masks: torch.Tensor | None = None
        recurrent_masks: torch.Tensor | None = None
        if self.dropout > 0:
            count = self.gates if self.recurrent_dropout > 0 else 1
            ones = x.new_ones(count, batch, 1, x.shape[-1])
            input_masks = F.dropout(ones, self.dropout)
        if self.recurrent_dropout > 0:
            ones = x.new_ones(self.gates, batch, self.hidden_size)
            recurrent_masks = F.dropout(ones, self.recurrent_dropout)
        return input_masks, recurrent_masks


def gate_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    masks: torch.Tensor | None = None,
) -> torch.Tensor:
    """F.linear(x, weight, bias), with `masks[g]` applied to `x` for gate block g of `weight`.

    One mask applies to every gate; None is no dropout.
    """
    if masks is None:
        return F.linear(x, weight, bias)
    blocks = weight.chunk(len(masks))
    y = torch.cat([F.linear(x * m, w) for m, w in zip(masks, blocks, strict=True)], -1)
    return y if bias is None else y + bias


class KerasSimpleRNN(MaskedOneState, KerasRecurrent):
    """keras.layers.SimpleRNN: h = activation(x W + b + h U)."""

    def step(
        self,
        projected: torch.Tensor,
        state: list[torch.Tensor],
        w_hh: torch.Tensor,
        b_hh: torch.Tensor | None,
        masks: torch.Tensor | None,
    ) -> list[torch.Tensor]:
        h = state[0]
        return [self.activation(projected + gate_linear(h, w_hh, b_hh, masks))]


class KerasLSTM(MaskedTwoStates, KerasRecurrent):
    """keras.layers.LSTM with any activation; gate blocks i, f, g, o as in nn.LSTM."""

    gates = 4
    num_states = 2

    def step(
        self,
        projected: torch.Tensor,
        state: list[torch.Tensor],
        w_hh: torch.Tensor,
        b_hh: torch.Tensor | None,
        masks: torch.Tensor | None,
    ) -> list[torch.Tensor]:
        h, c = state
        i, f, g, o = (projected + gate_linear(h, w_hh, b_hh, masks)).chunk(4, dim=-1)
        i = self.recurrent_activation(i)
        f = self.recurrent_activation(f)
        o = self.recurrent_activation(o)
        c = f * c + i * self.activation(g)
        return [o * self.activation(c), c]


class KerasGRU(MaskedOneState, KerasRecurrent):
    """keras.layers.GRU with any activation and either reset_after; gate blocks r, z, n."""

    gates = 3

    def __init__(self, *args, reset_after=True, **kwargs):
        # Keras's reset_after=False GRU has one bias, on the input side.
        super().__init__(*args, recurrent_bias=reset_after, **kwargs)
        self.reset_after = reset_after

    def step(
        self,
        projected: torch.Tensor,
        state: list[torch.Tensor],
        w_hh: torch.Tensor,
        b_hh: torch.Tensor | None,
        masks: torch.Tensor | None,
    ) -> list[torch.Tensor]:
        h = state[0]
        x_r, x_z, x_n = projected.chunk(3, dim=-1)
        if self.reset_after:
            h_r, h_z, h_n = gate_linear(h, w_hh, b_hh, masks).chunk(3, dim=-1)
            r = self.recurrent_activation(x_r + h_r)
            z = self.recurrent_activation(x_z + h_z)
            n = self.activation(x_n + r * h_n)
        else:
            w_r, w_z, w_n = w_hh.chunk(3, dim=0)
            h_r = h_z = h_n = h
            if masks is not None:
                h_r, h_z, h_n = h * masks[0], h * masks[1], h * masks[2]
            r = self.recurrent_activation(x_r + F.linear(h_r, w_r))
            z = self.recurrent_activation(x_z + F.linear(h_z, w_z))
            n = self.activation(x_n + F.linear(r * h_n, w_n))
        return [z * h + (1 - z) * n]


class AttentionPooling(nn.Module):
    """A learned score per timestep, softmax over the unmasked timesteps, weighted sum."""

    def __init__(self, features):
        super().__init__()
        self.kernel = nn.Linear(features, 1, bias=False)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        scores = self.kernel(x).squeeze(-1)
        if mask is not None:
            # -1e9 underflows to an exact zero weight; a fully masked row pools to zeros.
            scores = scores.masked_fill(~mask, -1e9)
        weights = torch.softmax(scores, dim=-1)
        if mask is not None:
            weights = weights * mask
        return (x * weights.unsqueeze(-1)).sum(dim=1)


def init_keras_recurrent(rnn, *, unit_forget_bias=False, recurrent_bias=False):
    """Give a recurrent layer (torch's names and layout) Keras's initial weights and biases.

    Keras draws the kernel glorot-uniform over (inputs, gates * units) and the recurrent
    kernel orthogonal over (units, gates * units); xavier_uniform_ and orthogonal_ on torch's
    transposed, gate-reordered arrays draw from the same distributions. Biases start at zero,
    an LSTM's forget gate at one with `unit_forget_bias`. Where Keras has one bias and torch
    two (LSTM, SimpleRNN), `bias_hh` stays zero and frozen, so that training moves one bias
    per gate, as Keras does; a GRU with reset_after has two in Keras too (`recurrent_bias`).
    """
    for name, param in rnn.named_parameters():
        if name.startswith("weight_ih"):
            nn.init.xavier_uniform_(param)
        elif name.startswith("weight_hh"):
            nn.init.orthogonal_(param)
        else:
            nn.init.zeros_(param)
            if name.startswith("bias_hh") and not recurrent_bias:
                param.requires_grad_(False)
            elif unit_forget_bias:
                nn.init.ones_(param[rnn.hidden_size : 2 * rnn.hidden_size])


# --- v1's one-input layers (rnnspec/targets/torch_layers.py writes the calls to these) ---------


def pad_same(
    x: torch.Tensor, kernel: int, stride: int, dilation: int = 1, value: float = 0.0
) -> torch.Tensor:
    """Pad the last axis as TensorFlow's `same` padding does (`same_padding`)."""
    before, after = same_padding(x.shape[-1], kernel, stride, dilation)
    return F.pad(x, (before, after), value=value)


def same_padding(
    length: int, kernel: int, stride: int, dilation: int
) -> tuple[int, int]:
    """TensorFlow's `same` padding of one axis, (before, after): ceil(length / stride)
    outputs, the odd padded cell after. (The ceiling as a floor of positive numbers: the
    ONNX exporter rounds a division of a negative length toward zero.)"""
    span = (kernel - 1) * dilation + 1
    count = (length + stride - 1) // stride
    total = max((count - 1) * stride + span - length, 0)
    return total // 2, total - total // 2


def pad_same_2d(
    x: torch.Tensor,
    kernel: int | tuple[int, int],
    stride: int | tuple[int, int],
    dilation: int = 1,
    value: float = 0.0,
) -> torch.Tensor:
    """Pad the last two axes as TensorFlow's `same` padding does, each on its own; `kernel` and
    `stride` are one int for both axes or (height, width)."""
    kernels = [kernel, kernel] if isinstance(kernel, int) else [kernel[0], kernel[1]]
    strides = [stride, stride] if isinstance(stride, int) else [stride[0], stride[1]]
    pads: list[int] = []
    for axis in (1, 0):  # F.pad takes the last axis (the width) first
        before, after = same_padding(
            x.shape[axis - 2], kernels[axis], strides[axis], dilation
        )
        pads += [before, after]
    return F.pad(x, pads, value=value)


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """A channels-first convolution's or pooling's result, (batch, channels, time) or (batch,
    channels, height, width), channels last as Keras lays it out: a view.

    Under torch.export, a contiguous copy (as `time_first`): a layer after it that asks whether
    it is contiguous (a dense layer's matmul does) would otherwise have torch guard the
    computed length against 1.
    """
    last = x.transpose(1, 2) if x.dim() == 3 else x.permute(0, 2, 3, 1)
    if not torch.jit.is_scripting():
        if exporting():
            return last.clone(memory_format=torch.contiguous_format)
    return last


def max_pool_valid(x: torch.Tensor, pool: int, stride: int) -> torch.Tensor:
    """MaxPooling1D with `valid` padding, channels last as Keras.

    Under torch.export, the pooling that also returns its indices: torch's max_pool1d without
    them reads the length as a number, which fixes the artefact's input length.
    """
    x = x.transpose(1, 2)
    if not torch.jit.is_scripting():
        if exporting():
            return channels_last(F.max_pool1d(x, pool, stride, return_indices=True)[0])
    return channels_last(F.max_pool1d(x, pool, stride))


def max_pool_same(x: torch.Tensor, pool: int, stride: int) -> torch.Tensor:
    """MaxPooling1D with `same` padding, channels last as Keras: padded cells never win."""
    padded = pad_same(x.transpose(1, 2), pool, stride, value=float("-inf"))
    return max_pool_valid(padded.transpose(1, 2), pool, stride)


def avg_pool_same(x: torch.Tensor, pool: int, stride: int) -> torch.Tensor:
    """AveragePooling1D with `same` padding, channels last: each window's mean over its cells
    inside the sequence, as TensorFlow's."""
    x = x.transpose(1, 2)
    total = F.avg_pool1d(pad_same(x, pool, stride), pool, stride)
    ones = pad_same(torch.ones_like(x[:, :1]), pool, stride)
    return channels_last(total / F.avg_pool1d(ones, pool, stride))


def keras_relu(
    x: torch.Tensor,
    negative_slope: float = 0.0,
    max_value: float | None = None,
    threshold: float = 0.0,
) -> torch.Tensor:
    """Keras's relu with its options: x above `threshold` (clipped to [0, max_value]), and
    `negative_slope * (x - threshold)` added below it."""
    if negative_slope != 0.0 and max_value is None and threshold == 0.0:
        return F.leaky_relu(x, negative_slope)
    y = torch.where(x > threshold, x, 0.0) if threshold != 0.0 else torch.relu(x)
    if max_value is not None:
        y = y.clamp(0.0, max_value)
    if negative_slope != 0.0:
        y = y - negative_slope * torch.relu(threshold - x)
    return y


class GaussianNoise(nn.Module):
    """Keras's GaussianNoise: x + stddev * N(0, 1) in training, x in inference."""

    def __init__(self, stddev):
        super().__init__()
        self.stddev = stddev

    def forward(self, x):
        return x + self.stddev * torch.randn_like(x) if self.training else x


class KerasBatchNormalization(nn.Module):
    """Keras's BatchNormalization over the last axis; the moving statistics are buffers."""

    def __init__(self, features, epsilon=0.001, momentum=0.99, center=True, scale=True):
        super().__init__()
        self.epsilon = epsilon
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(features)) if scale else None
        self.bias = nn.Parameter(torch.zeros(features)) if center else None
        self.register_buffer("running_mean", torch.zeros(features))
        self.register_buffer("running_var", torch.ones(features))

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.training:
            axes = list(range(x.dim() - 1))
            if mask is None:
                mean = x.mean(dim=axes)
                variance = (x - mean).square().mean(dim=axes)
            else:
                keep = mask.unsqueeze(-1).expand_as(x)
                count = keep.sum(dim=axes).to(x.dtype) + 1e-7
                mean = torch.where(keep, x, 0.0).sum(dim=axes) / count
                spread = torch.where(keep, x - mean, 0.0).square()
                variance = spread.sum(dim=axes) / count
            with torch.no_grad():
                new = 1.0 - self.momentum
                self.running_mean.mul_(self.momentum).add_(new * mean.detach())
                self.running_var.mul_(self.momentum).add_(new * variance.detach())
        else:
            mean, variance = self.running_mean, self.running_var
        inv = torch.rsqrt(variance + self.epsilon)
        if self.weight is not None:
            inv = inv * self.weight
        shift = -mean * inv if self.bias is None else self.bias - mean * inv
        return x * inv + shift
