"""IR -> context for templates/keras.py.j2. Values are prepared here; the template only places them."""

from __future__ import annotations

from typing import Any

from rnnspec.ir import LAYER_SCHEMAS, Layer, Model
from rnnspec.targets.common import LINE_LENGTH, PyCall, import_lines, py_literal, render, statement
from rnnspec.targets.keras_graph import graph_body
from rnnspec.text import docstring_text

KERAS_CLASSES = {
    "embedding": "keras.layers.Embedding",
    "masking": "keras.layers.Masking",
    "simple_rnn": "keras.layers.SimpleRNN",
    "lstm": "keras.layers.LSTM",
    "gru": "keras.layers.GRU",
    "bidirectional": "keras.layers.Bidirectional",
    "dense": "keras.layers.Dense",
    "dropout": "keras.layers.Dropout",
    "global_average_pooling": "keras.layers.GlobalAveragePooling1D",
    "attention_pooling": "AttentionPooling",
    "concatenate": "keras.layers.Concatenate",
    "add": "keras.layers.Add",
    "subtract": "keras.layers.Subtract",
    "multiply": "keras.layers.Multiply",
    "average": "keras.layers.Average",
    "maximum": "keras.layers.Maximum",
    "minimum": "keras.layers.Minimum",
}


def keras_class(layer: Layer) -> str:
    return layer.extern.keras.name if layer.extern is not None else KERAS_CLASSES[layer.kind]


def layer_args(layer: Layer, *, name: str | None) -> list[str | PyCall]:
    """Positional arguments, then keyword arguments that differ from Keras's defaults, then the name.

    A user's layer gets every declared argument by keyword: the spec's defaults are the ones used,
    whatever the class's own are.
    """
    if layer.extern is not None:
        args: list[str | PyCall] = [f"{key}={py_literal(value)}" for key, value in layer.attrs.items()]
        return args + ([f"name={py_literal(name)}"] if name is not None else [])
    schema = LAYER_SCHEMAS[layer.kind]
    args: list[str | PyCall] = []
    for key in schema.positional:
        if key == "layer":
            assert layer.inner is not None
            args.append(constructor(layer.inner, name=layer.inner.kind))
        else:
            args.append(py_literal(layer.attrs[key]))
    for key, attr in schema.attrs.items():
        if key in schema.positional or layer.attrs[key] == attr.default:
            continue
        value = layer.attrs[key]
        if key == "merge_mode" and value == "none":
            value = None
        args.append(f"{key}={py_literal(value)}")
    if name is not None:
        args.append(f"name={py_literal(name)}")
    return args


def constructor(layer: Layer, *, name: str) -> PyCall:
    return PyCall(KERAS_CLASSES[layer.kind], tuple(layer_args(layer, name=name)))


# Every name the program binds at module level; an input (a local of build_model) must not shadow
# them. Kept in step with the template by tests/test_hardening.py.
MODULE_NAMES = frozenset({"keras", "ops", "AttentionPooling", "build_model", "reset_states"})


def _var(value_name: str) -> str:
    return value_name.replace(".", "_")


class _Locals:
    """Local names of build_model(): each fresh, none the input's and none a module-level name."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = set(taken)

    def fresh(self, base: str) -> str:
        name, n = base, 1
        while name in self.taken:
            n += 1
            name = f"{base}_{n}"
        self.taken.add(name)
        return name


def context(model: Model, source_name: str) -> dict[str, Any]:
    if model.is_graph:
        return _context(model, source_name, graph_body(model, MODULE_NAMES, layer_args, keras_class))
    return _context(model, source_name, _stack_body(model))


def _stack_body(model: Model) -> list[str]:
    (inp,) = model.inputs
    dims = ["None" if d is None else str(d) for d in inp.shape]
    shape = f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"
    input_args = [f"shape={shape}", f"dtype={py_literal(inp.dtype)}"]
    if model.batch_size is not None:
        input_args.append(f"batch_size={model.batch_size}")
    input_args.append(f"name={py_literal(inp.name)}")
    body = statement(4, f"{inp.name} = keras.Input", input_args)
    names = _Locals(MODULE_NAMES | {inp.name})
    hidden = names.fresh("h" if inp.name == "x" else "x")
    current = inp.name
    last = model.layers[-1]
    for layer in model.layers:
        if layer is last and len(layer.outputs) > 1:
            bases = [_var(name) for name in layer.outputs]
            if layer.kind == "bidirectional" and layer.attrs["merge_mode"] == "none":
                bases[:2] = ["forward", "backward"]
            targets = [names.fresh(base) for base in bases]
            lhs = ", ".join(targets)
            if len(f"    {lhs} = {KERAS_CLASSES[layer.kind]}(") > LINE_LENGTH:
                # Too many names for one line: keep the list whole, as a formatter would not split it.
                targets = [names.fresh("outputs")]
                lhs = targets[0]
        else:
            targets = [hidden]
            lhs = hidden
        head = f"{lhs} = {keras_class(layer)}"
        body += statement(4, head, layer_args(layer, name=layer.name), f"({current})")
        current = hidden
    # One name holds the one output, or (`outputs`) the list of them all.
    outputs = targets[0] if len(targets) == 1 else "[" + ", ".join(targets) + "]"
    body += statement(
        4,
        "return keras.Model",
        [f"inputs={inp.name}", f"outputs={outputs}", f"name={py_literal(model.name)}"],
    )
    return body


def _context(model: Model, source_name: str, body: list[str]) -> dict[str, Any]:
    uses_attention = any(layer.kind == "attention_pooling" for layer in model.layers)
    return {
        "model_name": model.name,
        "source_name": docstring_text(source_name),
        "attention_pooling": uses_attention,
        "stateful": model.stateful,
        # `from keras import ops` sorts among the user's modules, as ruff's isort wants it.
        "from_imports": import_lines(
            [(layer.extern.keras.module, layer.extern.keras.name) for layer in model.layers if layer.extern]
            + ([("keras", "ops")] if uses_attention else [])
        ),
        "body": body,
    }


def generate(model: Model, source_name: str) -> str:
    return render("keras.py.j2", context(model, source_name))
