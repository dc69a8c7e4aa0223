"""The review tools: `check` (how each layer will run), `summary` (shapes and parameters), `fmt`.

All three work from the IR alone; none imports a framework.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from rnnspec.equivalence.weights import keras_weight_shapes
from rnnspec.graph import runs_masked
from rnnspec.ir import Layer, Model
from rnnspec.kinds import kind_of
from rnnspec.parse import (
    ExternArg,
    ExternAST,
    ExternField,
    InputDecl,
    OutputStmt,
    Star,
    Statement,
    arg_text,
    field_text,
    parse,
    value_text,
)
from rnnspec.targets.pytorch import STEPPED, TORCH_FUSED, fused_kernel_reason
from rnnspec.text import normalize, split_lines

# --- check -------------------------------------------------------------------------------


@dataclass
class LayerReport:
    layer: Layer
    keras: str
    pytorch: str
    warnings: list[str]


def keras_gpu_kernel(rec: Layer, masked: bool) -> tuple[bool, str]:
    """Whether Keras 3 takes the cuDNN kernel for this layer on a GPU, and why (not)."""
    if rec.kind == "simple_rnn":
        return False, "Keras has no cuDNN SimpleRNN"
    reasons = []
    if rec.attrs["activation"] != "tanh":
        reasons.append(f"activation={rec.attrs['activation']} (cuDNN needs tanh)")
    if rec.attrs["recurrent_activation"] != "sigmoid":
        reasons.append(f"recurrent_activation={rec.attrs['recurrent_activation']} (cuDNN needs sigmoid)")
    if rec.attrs["recurrent_dropout"] != 0:
        reasons.append("recurrent_dropout is not 0")
    if rec.attrs["unroll"]:
        reasons.append("unroll=true")
    if not rec.attrs["use_bias"]:
        reasons.append("use_bias=false")
    if rec.kind == "gru" and not rec.attrs["reset_after"]:
        reasons.append("reset_after=false")
    if reasons:
        return False, "generic kernel: " + ", ".join(reasons)
    if masked:
        return True, "cuDNN kernel, if every mask is right-padded with no fully padded row at run time"
    return True, "cuDNN kernel"


def review_layer(model: Model, layer: Layer) -> LayerReport | None:
    rec = layer.recurrent
    if rec is None:
        kind = kind_of(layer, "rnnspec check") if layer.extern is None else None
        if kind is not None and kind.drops_mask and model.values[layer.inputs[0]].masked:
            return LayerReport(
                layer,
                f"Keras: {kind.keras_class_name} does not support masking: the mask ends here",
                "PyTorch: the same; later layers see no mask",
                [
                    f"`{layer.name}` drops the mask it receives (Keras warns that {kind.keras_class_name} "
                    '"will therefore destroy the mask information"): the layers after it see every '
                    "timestep, padding included"
                ],
            )
        return None
    if model.is_graph:  # masked if any application of it runs masked
        masked = any(runs_masked(model, node) for node in model.nodes if node.layer is layer)
    else:
        masked = model.values[layer.inputs[0]].masked
    cudnn, keras_text = keras_gpu_kernel(rec, masked)
    reason = fused_kernel_reason(rec)
    if reason is None:
        pytorch = f"fused {TORCH_FUSED[rec.kind]}" + (
            " over each row's unmasked steps (packed)" if masked else ""
        )
    else:
        pytorch = f"per-timestep loop {STEPPED[rec.kind]}: {reason}"
    if reason is None and (rec.attrs["dropout"] or rec.attrs["recurrent_dropout"]):
        pytorch += f"; in train mode, per-timestep loop {STEPPED[rec.kind]} with Keras's dropout masks"
    warnings = []
    if cudnn and masked:
        warnings.append(
            f"`{layer.name}` is masked and cuDNN-eligible: on a GPU, Keras's cuDNN path outputs zeros at padded "
            "timesteps where its CPU path (and the generated PyTorch) repeats the last output, and it rejects "
            "left padding, holes and fully padded rows; pass `use_cudnn=False` in Keras for the CPU semantics"
        )
    if rec.attrs["go_backwards"] and masked and rec.attrs["return_sequences"]:
        warnings.append(
            f"`{layer.name}` has go_backwards=true: its outputs come out in reversed time order, but Keras passes "
            "the mask on in the original order, so the next layer's mask does not line up with them"
        )
    return LayerReport(layer, "Keras on a GPU: " + keras_text, "PyTorch: " + pytorch, warnings)


# --- summary -----------------------------------------------------------------------------


def torch_parameter_count(model: Model, layer: Layer, shapes: dict | None = None) -> int:
    """torch's count differs from Keras's where torch keeps a second bias per direction, and where
    Keras counts non-trainable weights that torch keeps as buffers (moving statistics)."""
    shapes = keras_weight_shapes(model) if shapes is None else shapes
    kind = kind_of(layer, "rnnspec summary")
    buffers = kind.torch_buffers(layer) if layer.extern is None else []
    count = sum(
        prod(shape)
        for shape, buffer in zip(
            shapes.get(layer.name, []), buffers + [False] * len(shapes.get(layer.name, []))
        )
        if not buffer
    )
    return count + kind.torch_extra_parameters(layer)


def summary_rows(model: Model) -> list[tuple[str, str, str, int | None, int | None]]:
    shapes = keras_weight_shapes(model)
    batch = str(model.batch_size) if model.batch_size else "None"
    rows = []
    for inp in model.inputs:
        rows.append((inp.name, "input", _shape(batch, inp.shape), 0, 0))
    for layer in model.layers:
        kind = f"{layer.kind}({layer.inner.kind})" if layer.inner else layer.kind
        out = ", ".join(_shape(batch, model.values[name].shape) for name in layer.outputs)
        if layer.extern is not None:  # only the user's built classes know their weights
            rows.append((layer.name, kind, out, None, None))
            continue
        keras_count = sum(prod(shape) for shape in shapes.get(layer.name, []))
        rows.append((layer.name, kind, out, keras_count, torch_parameter_count(model, layer, shapes)))
    return rows


def _shape(batch: str, shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join([batch, *("None" if d is None else str(d) for d in shape)]) + ")"


def connected_to(model: Model) -> dict[str, str]:
    """Per layer of a graph, what it is applied to, as Keras's summary writes it:
    `layer[call][value]` per input value (an input is `name[0][0]`), every call of a shared layer."""
    where: dict[str, str] = {value.name: f"{value.name}[0][0]" for value in model.inputs}
    found: dict[str, list[str]] = {}
    for node in model.nodes:
        sources = node.inputs + node.initial_state + ([node.mask] if node.mask else [])
        found.setdefault(node.layer.name, []).extend(where[key] for key in sources)
        for index, key in enumerate(node.outputs):
            where[key] = f"{node.layer.name}[{node.call_index}][{index}]"
    return {name: ", ".join(sources) for name, sources in found.items()}


def render_summary(model: Model) -> str:
    """Keras's summary table: a row per layer, its output shape and weights counted both ways; a
    graph adds Keras's "connected to" column and its outputs."""
    rows = summary_rows(model)
    unknown = any(r[3] is None for r in rows)
    links = connected_to(model) if model.is_graph else None
    texts = ("layer", "kind", "output shape", *(("connected to",) if links is not None else ()))

    def count(n: int | None) -> str:
        return "?" if n is None else f"{n:,}"

    def total(i: int) -> str:
        return count(sum(r[i] or 0 for r in rows)) + (" + ?" if unknown else "")

    def row(name, kind, shape, keras, torch) -> tuple[str, ...]:
        link = (links.get(name, ""),) if links is not None else ()
        return (name, kind, shape, *link, keras, torch)

    header = (*texts, "params (Keras)", "params (PyTorch)")
    table = [header, *[row(a, b, c, count(d), count(e)) for a, b, c, d, e in rows]]
    table.append(row("total", "", "", total(3), total(4)))
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        aligned = [
            c.ljust(w) if i < len(texts) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(aligned).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [f"model `{model.name}`", line(header), rule, *[line(r) for r in table[1:-1]], rule]
    lines.append(line(table[-1]))
    if links is not None:
        lines.append("outputs: " + ", ".join(_value_ref(model, key) for key in model.outputs))
    if unknown:
        lines.append("? = a user layer's weights, known only once its classes are built")
    return "\n".join(lines) + "\n"


def _value_ref(model: Model, key: str) -> str:
    for node in model.nodes:
        if key in node.outputs:
            return f"{node.layer.name}[{node.call_index}][{node.outputs.index(key)}]"
    return f"{key}[0][0]"


# --- fmt ---------------------------------------------------------------------------------


def _statement(stmt: Statement) -> str:
    if isinstance(stmt, InputDecl):
        dims = ", ".join("*" if isinstance(d, Star) else d.text for d in stmt.dims)
        return f"input {stmt.name}: {stmt.dtype.name}[{dims}]"
    if isinstance(stmt, OutputStmt):
        return "output " + ", ".join(name.name for name in stmt.names)
    text = value_text(stmt.call)
    if stmt.targets:
        text = ", ".join(target.name for target in stmt.targets) + " = " + text
    if stmt.inputs is not None:
        text += "(" + ", ".join(arg_text(arg) for arg in stmt.inputs) + ")"
    return f"{text} as {stmt.alias.name}" if stmt.alias else text


def _extern_item(item: ExternField | ExternArg) -> str:
    if isinstance(item, ExternField):
        return f"{item.name} = {field_text(item.value)}"
    text = f"{item.name}: {value_text(item.type)}"
    return text + (f" = {value_text(item.default)}" if item.default is not None else "")


def _comments(source: str) -> dict[int, str]:
    """Comments by line. The language has no strings, so `#` always starts one."""
    found = {}
    for number, line in enumerate(split_lines(source), start=1):
        if "#" in line:
            found[number] = line[line.index("#") :].rstrip()
    return found


def format_source(source: str) -> str:
    """The canonical layout of a spec: comments kept, one statement per line, 4-space indent."""
    source = normalize(source)
    spec = parse(source)
    lines = split_lines(source)
    comments = _comments(source)
    used: set[int] = set()
    out: list[str] = []

    def own_line_comments(before: int, after: int, indent: str) -> None:
        """Comments alone on their lines between two source lines; one blank line kept where there were any."""
        blank = False
        for number in range(after + 1, before):
            text = lines[number - 1].strip()
            if not text:
                blank = True
                continue
            if number in comments and text.startswith("#") and number not in used:
                if blank and out and out[-1] != "" and not out[-1].endswith("{"):
                    out.append("")
                blank = False
                out.append(indent + comments[number])
                used.add(number)
        if blank and out and out[-1] != "" and not out[-1].endswith("{"):
            out.append("")

    def trailing(first: int, last: int) -> str:
        found = [comments[n] for n in range(first, last + 1) if n in comments and n not in used]
        used.update(n for n in range(first, last + 1) if n in comments)
        return ("  " + " ".join(found)) if found else ""

    previous = 0
    blocks = sorted([*spec.models, *spec.externs], key=lambda block: (block.pos.line, block.pos.col))
    for index, model in enumerate(blocks):
        if index and out and out[-1] != "":
            out.append("")
        own_line_comments(model.pos.line, previous, "")
        if isinstance(model, ExternAST):
            first = model.items[0].pos.line if model.items else model.end_pos.line
            out.append(
                f"extern layer {model.name} {{" + trailing(model.pos.line, max(model.pos.line, first - 1))
            )
            previous = max(model.pos.line, first - 1)
            for item in model.items:
                own_line_comments(item.pos.line, previous, "    ")
                out.append("    " + _extern_item(item) + trailing(item.pos.line, item.end_line))
                previous = item.end_line
            own_line_comments(model.end_pos.line, previous, "    ")
            while out and out[-1] == "":
                out.pop()
            out.append("}" + trailing(model.end_pos.line, model.end_pos.line))
            previous = model.end_pos.line
            continue
        header = f"model {model.name}"
        if model.options:
            header += "(" + ", ".join(f"{a.name}={value_text(a.value)}" for a in model.options) + ")"
        first_stmt = model.statements[0].pos.line if model.statements else model.end_pos.line
        out.append(header + " {" + trailing(model.pos.line, max(model.pos.line, first_stmt - 1)))
        previous = max(model.pos.line, first_stmt - 1)
        for stmt in model.statements:
            own_line_comments(stmt.pos.line, previous, "    ")
            out.append("    " + _statement(stmt) + trailing(stmt.pos.line, stmt.end_line))
            previous = stmt.end_line
        own_line_comments(model.end_pos.line, previous, "    ")
        while out and out[-1] == "":
            out.pop()
        out.append("}" + trailing(model.end_pos.line, model.end_pos.line))
        previous = model.end_pos.line
    own_line_comments(len(lines) + 1, previous, "")
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"
