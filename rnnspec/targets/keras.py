"""IR -> context for templates/keras.py.j2. Values are prepared here; the template only places them."""

from __future__ import annotations

from typing import Any

from rnnspec.ir import LAYER_SCHEMAS, Layer, Model
from rnnspec.targets.common import PyCall, import_lines, py_literal, render, statement

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


def _var(value_name: str) -> str:
    return value_name.replace(".", "_")


def context(model: Model, source_name: str) -> dict[str, Any]:
    (inp,) = model.inputs
    uses_attention = any(layer.kind == "attention_pooling" for layer in model.layers)
    dims = ["None" if d is None else str(d) for d in inp.shape]
    shape = f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"
    input_args = [f"shape={shape}", f"dtype={py_literal(inp.dtype)}"]
    if model.batch_size is not None:
        input_args.append(f"batch_size={model.batch_size}")
    input_args.append(f"name={py_literal(inp.name)}")
    body = statement(4, f"{inp.name} = keras.Input", input_args)
    hidden = "h" if inp.name == "x" else "x"
    current = inp.name
    last = model.layers[-1]
    for layer in model.layers:
        if layer is last and len(layer.outputs) > 1:
            targets = [_var(name) for name in layer.outputs]
            if layer.kind == "bidirectional" and layer.attrs["merge_mode"] == "none":
                targets[:2] = ["forward", "backward"]
            lhs = ", ".join(targets)
        else:
            targets = [hidden]
            lhs = hidden
        head = f"{lhs} = {keras_class(layer)}"
        body += statement(4, head, layer_args(layer, name=layer.name), f"({current})")
        current = hidden
    outputs = targets[0] if len(targets) == 1 else "[" + ", ".join(targets) + "]"
    body += statement(
        4,
        "return keras.Model",
        [f"inputs={inp.name}", f"outputs={outputs}", f"name={py_literal(model.name)}"],
    )
    return {
        "model_name": model.name,
        "source_name": source_name,
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
