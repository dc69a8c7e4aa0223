"""A v1 graph -> forward(): the stack's emitters, run once per statement over named values.

forward() takes the inputs in declaration order and returns the outputs in `output` order. Each
value gets a local (its spec name where free) and, where Keras gives it one, a mask local,
derived as Keras derives it: born at `embedding(mask_zero=true)` and `masking`, kept by the
layers that keep it, replaced by an explicit `mask=`, combined by merges (fact 33: OR, and none
as soon as one input has none; fact 34 for `concatenate`). Next to `initial_state` the layer
runs unmasked while its input's mask flows on (fact 30). A mask is computed only where a later
layer reads it. A layer applied again is the same module, constructed once.
"""

from __future__ import annotations

from dataclasses import replace

from rnnspec.graph import shown
from rnnspec.ir import MERGE_KINDS, Layer, Model, Node
from rnnspec.kinds import kind_of
from rnnspec.targets.common import LINE_LENGTH, Assign, PyTuple, Statement, Variables

TOOL = "the PyTorch target"
MASK_READING_MERGES = ("multiply", "maximum", "minimum")


def _creates_mask(layer: Layer) -> bool:
    """Whether a new mask is born at `layer` (embedding with mask_zero, masking, a user's producer)."""
    return kind_of(layer, TOOL).mask_out(layer, False)


def _keeps_mask(layer: Layer) -> bool:
    """Whether the value out of `layer` carries the mask of the value into it."""
    kind = kind_of(layer, TOOL)
    return kind.mask_out(layer, True) and not kind.mask_out(layer, False)


def _reads_mask(layer: Layer) -> bool:
    return kind_of(layer, TOOL).reads_mask


def _sequences(layer: Layer) -> int:
    """How many of a layer's values are sequences carrying its mask: `merge_mode=none` returns two,
    forward and backward, and Keras's Bidirectional.compute_mask gives each the mask; states none."""
    return 2 if layer.kind == "bidirectional" and layer.attrs["merge_mode"] == "none" else 1


def masks_read(model: Model) -> set[str]:
    """The values whose mask some layer reads, directly or through the layers that pass it on."""
    read: set[str] = set()
    for node in reversed(model.nodes):
        layer = node.layer
        out_read = any(key in read for key in node.outputs[: _sequences(layer)])
        if layer.kind in MERGE_KINDS:
            if out_read or layer.kind in MASK_READING_MERGES:
                read.update(key for key in node.inputs if model.values[key].masked)
            continue
        if node.mask is not None:
            read.add(node.mask)
            continue
        reads = _reads_mask(layer) and not node.initial_state
        if reads or (out_read and _keeps_mask(layer) and not _creates_mask(layer)):
            read.update(node.inputs)
    return read


def _split_top(text: str) -> list[str]:
    """`x[..., :4], h_n[0]` -> its comma-separated parts, brackets respected."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def relayout(line: str) -> list[str]:
    """A one-line statement longer than the limit (long spec names), split as ruff format splits it:
    at the brackets that close the line, else the right-hand side in parentheses."""
    if len(line) <= LINE_LENGTH or not line.endswith(")"):
        return [line]
    pad = line[: len(line) - len(line.lstrip())]
    depth = 0
    for i in range(len(line) - 1, -1, -1):
        if line[i] == ")":
            depth += 1
        elif line[i] == "(":
            depth -= 1
            if depth == 0:
                head, body = line[: i + 1], line[i + 1 : -1]
                break
    else:  # pragma: no cover - unbalanced: not a line an emitter writes
        return [line]
    if len(head) <= LINE_LENGTH and len(f"{pad}    {body}") <= LINE_LENGTH and head.strip() not in ("(",):
        return [head, f"{pad}    {body}", f"{pad})"]
    if len(head) <= LINE_LENGTH:
        return [head] + [f"{pad}    {part}," for part in _split_top(body)] + [f"{pad})"]
    return [line]


def signature(parameters: list[str], returns: int) -> list[str]:
    """`def forward(self, a: torch.Tensor, ...) -> ...:` as ruff format lays it out, returning
    one tensor or a tuple of `returns` (of a fixed length: TorchScript takes no `...`)."""
    params = ", ".join(["self", *(f"{p}: torch.Tensor" for p in parameters)])
    result = "torch.Tensor" if returns == 1 else f"tuple[{', '.join(['torch.Tensor'] * returns)}]"
    one = f"    def forward({params}) -> {result}:"
    if len(one) <= LINE_LENGTH:
        return [one]
    if len(f"        {params}") <= LINE_LENGTH:
        head = ["    def forward(", f"        {params}"]
    else:
        head = ["    def forward("] + [f"        {p}," for p in params.split(", ")]
    if len(f"    ) -> {result}:") <= LINE_LENGTH:
        return head + [f"    ) -> {result}:"]
    return head + ["    ) -> tuple["] + ["        torch.Tensor,"] * returns + ["    ]:"]


def return_lines(values: list[str]) -> list[str]:
    text = ", ".join(values)
    if len(f"        return {text}") <= LINE_LENGTH:
        return [f"        return {text}"]
    if len(f"            {text}") <= LINE_LENGTH:
        return ["        return (", f"            {text}", "        )"]
    return ["        return ("] + [f"            {v}," for v in values] + ["        )"]


def _stateful(layer: Layer) -> bool:
    return layer.recurrent is not None and bool(layer.recurrent.attrs["stateful"])


def _text(statement: Statement) -> str:
    return "\n".join(statement.lines(0))


def _tidy(statements: list[Statement], scratch: dict[str, str], *, stateful: bool) -> list[Statement]:
    """One statement's forward code, without what a graph leaves unused: `_ = last[0]` for a
    dropped output, then `last` itself, and the final states no one takes (lint-clean code)."""
    kept = [s for s in statements if not (isinstance(s, Assign) and s.targets == ("_",))]
    text = "\n".join(_text(s) for s in kept)
    drop = set()
    if f"{scratch['last']}[" not in text:
        drop.add(scratch["last"])
    h_n, c_n = scratch["h_n"], scratch["c_n"]
    if not stateful and f"{h_n}[" not in text and f"{c_n}[" not in text:
        drop.update({h_n, f"({h_n}, {c_n})"})
    return [
        replace(s, targets=tuple("_" if t in drop else t for t in s.targets)) if isinstance(s, Assign) else s
        for s in kept
    ]


class GraphForward:
    """Drives a stack builder (`rnnspec.targets.pytorch._Builder`) over a graph's nodes."""

    def __init__(self, builder, model: Model, module_names: frozenset[str], names_cls) -> None:
        self.b = builder
        self.model = model
        inputs = {value.name for value in model.inputs}
        self.vars = Variables(model, set(module_names) | inputs | {"self"})
        for value in model.inputs:
            self.vars.names[value.name] = value.name
            self.vars.holder[value.name] = value.name
        self.masks: dict[str, str | None] = {
            v.name: (v.name if v.dtype == "bool" else None) for v in model.inputs
        }
        self.read = masks_read(model)
        fresh = self.vars.fresh
        self.names_cls = names_cls
        self.scratch = {name: fresh(name) for name in ("last", "h_n", "c_n", "rnn")}
        self.built: set[str] = set()

    def build(self) -> None:
        for node in self.model.nodes:
            if node.layer.kind in MERGE_KINDS:
                self.merge(node)
            else:
                self.node(node)

    def node(self, node: Node) -> None:
        b, layer = self.b, node.layer
        src_key = node.inputs[0]
        src = self.vars[src_key]
        value_mask = self.masks.get(src_key)
        mask_in = (
            self.masks[node.mask] if node.mask is not None else (None if node.initial_state else value_mask)
        )
        first = node.outputs[0]
        sequences = node.outputs[: _sequences(layer)]
        out_var = first_var = self.vars.bind(first)
        if out_var == "_" and any(key in self.vars.used for key in sequences[1:]):
            # `_, b = bidirectional(..., merge_mode=none)`: the halves are cut from one output
            out_var = self.vars.fresh(f"{layer.name}_out")
        creates = _creates_mask(layer)
        new_mask = self.vars.fresh(f"{shown(first)}_mask".replace(".", "_")) if creates else None
        b.names = self.names_cls(
            hidden=out_var,
            mask=new_mask if creates else (mask_in or "mask"),
            last=self.scratch["last"],
            h_n=self.scratch["h_n"],
            c_n=self.scratch["c_n"],
            rnn=self.scratch["rnn"],
        )
        b.features = (
            self.model.values[src_key].shape[-1] if self.model.values[src_key].dtype == "float32" else 0
        )
        b.following = None  # no packed chaining, no skipped zeroing: a value may feed several layers
        b.rest = []
        b.current_reads = any(key in self.read for key in sequences)
        b.initial_state = self._initial_state(node) if node.initial_state else None
        init, reset, start = len(b.init), len(b.reset), len(b.forward)
        b.outs = [out_var]
        b.layer(layer, src, mask_in is not None)
        if layer.name in self.built:  # the module and its initialisation are the first call's
            del b.init[init:]
            del b.reset[reset:]
        self.built.add(layer.name)
        b.initial_state = None
        # The values out: the first is `out_var`; the others are expressions on the scratch locals.
        exprs = list(b.outs)
        used = self._used()
        later = [
            (self.vars.bind(key), expr)
            for key, expr in list(zip(node.outputs, exprs))[1:]
            if not key.startswith("_#") and key in used
        ]
        if exprs[0] != out_var and first_var != "_":
            later.append((out_var, exprs[0]))  # merge_mode=none: the forward half, assigned last
        if len(later) == 1:
            b.forward.append(Assign((later[0][0],), later[0][1]))
        elif later:
            b.forward.append(Assign(tuple(v for v, _ in later), PyTuple(tuple(e for _, e in later))))
        b.forward[start:] = _tidy(b.forward[start:], self.scratch, stateful=_stateful(layer))
        # Its mask: born here, passed on from its input (or the explicit mask), or none.
        for key in node.outputs:
            self.masks[key] = None
        if self.model.values[first].masked and creates:
            self.masks[first] = new_mask if first in self.read else None
        elif not creates:
            for key in sequences:  # merge_mode=none: the backward half carries the mask too
                if self.model.values[key].masked:
                    self.masks[key] = self.masks[node.mask] if node.mask is not None else value_mask

    def _used(self) -> set[str]:
        used = set(self.model.outputs)
        for node in self.model.nodes:
            used.update(node.inputs)
            used.update(node.initial_state)
        return used

    def _initial_state(self, node: Node) -> str:
        layer = node.layer
        names = [self.vars[key] for key in node.initial_state]
        if layer.inner is None:
            states = [f"{name}.unsqueeze(0)" for name in names]
        else:
            half = len(names) // 2
            states = [f"torch.stack([{f}, {bw}])" for f, bw in zip(names[:half], names[half:], strict=True)]
        return f"({', '.join(states)})" if len(states) > 1 else states[0]

    def merge(self, node: Node) -> None:
        layer = node.layer
        xs = [self.vars[key] for key in node.inputs]
        masks = [self.masks.get(key) for key in node.inputs]
        out = self.model.values[node.outputs[0]]
        out_var = self.vars.bind(node.outputs[0])
        kind = layer.kind
        lines: list[tuple[str, str]] = []
        if kind == "concatenate":
            rhs = f"torch.cat([{', '.join(xs)}], dim={layer.attrs['axis']})"
        elif kind in ("add", "subtract", "average"):
            joined = (" + " if kind != "subtract" else " - ").join(xs)
            rhs = f"({joined}) / {len(xs)}" if kind == "average" else joined
        elif kind == "multiply":
            # Keras counts a masked position as 1 in the product; when every input has a mask, the
            # product is zeroed where all are masked (keras/src/layers/merging/multiply.py).
            factors = [
                x if m is None else f"torch.where({m}.unsqueeze(-1), {x}, 1.0)" for x, m in zip(xs, masks)
            ]
            running = factors[0]
            for factor in factors[1:-1]:
                lines.append((out_var, f"{running} * {factor}"))
                running = out_var
            rhs = f"{running} * {factors[-1]}"
            if all(m is not None for m in masks):
                lines.append((out_var, rhs))
                rhs = f"torch.where(({' | '.join(masks)}).unsqueeze(-1), {out_var}, 0.0)"  # type: ignore[arg-type]
        else:
            # Maximum / Minimum: a masked input gives way to the running result, and the result so
            # far (where masked) to the input (base_merge.py _apply_merge_op_and_or_mask).
            op = "torch.maximum" if kind == "maximum" else "torch.minimum"
            running, running_mask = xs[0], masks[0]
            for i, (x, m) in enumerate(zip(xs[1:], masks[1:])):
                if m is not None:
                    x_var = self.vars.fresh(f"{out_var}_in")
                    lines.append((x_var, f"torch.where({m}.unsqueeze(-1), {x}, {running})"))
                    x = x_var
                if running_mask is not None:
                    lines.append((out_var, f"torch.where({running_mask}.unsqueeze(-1), {running}, {x})"))
                    running = out_var
                step = f"{op}({running}, {x})"
                if i < len(xs) - 2:
                    lines.append((out_var, step))
                    running = out_var
                else:
                    rhs = step
                if i == len(xs) - 2:
                    break
                if m is not None and running_mask is not None:
                    merged = self.vars.fresh(f"{out_var}_or")
                    lines.append((merged, f"{running_mask} | {m}"))
                    running_mask = merged
                else:
                    running_mask = None
        lines.append((out_var, rhs))
        for lhs, expr in lines:
            self.b.forward.append(Assign((lhs,), expr))
        self.masks[node.outputs[0]] = self._merged_mask(node, masks, out_var) if out.masked else None

    def _merged_mask(self, node: Node, masks: list[str | None], out_var: str) -> str | None:
        key = node.outputs[0]
        if key not in self.read:
            return None
        name = self.vars.fresh(f"{out_var}_mask")
        if node.layer.kind != "concatenate":
            if any(m is None for m in masks):
                return None
            self.b.forward.append(Assign((name,), " | ".join(masks)))  # type: ignore[arg-type]
            return name
        axis = node.layer.attrs["axis"]
        rank = len(self.model.values[node.inputs[0]].shape)
        if axis in (-1, rank):  # along the features: a step is valid where any input's is
            if any(m is None for m in masks):
                return None  # an unmasked input makes every step valid: the same as no mask
            self.b.forward.append(Assign((name,), " | ".join(masks)))  # type: ignore[arg-type]
            return name
        parts = [
            m if m is not None else f"torch.ones_like({x}[..., 0], dtype=torch.bool)"
            for m, x in zip(masks, [self.vars[k] for k in node.inputs])
        ]
        self.b.forward.append(Assign((name,), f"torch.cat([{', '.join(parts)}], dim=1)"))
        return name

    def returns(self) -> list[str]:
        return [self.vars[key] for key in self.model.outputs]
