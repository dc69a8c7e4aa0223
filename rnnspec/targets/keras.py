"""IR -> context for templates/keras.py.j2. Values are prepared here; the template only places them."""

from __future__ import annotations

from typing import Any

from rnnspec.ir import Layer, Model
from rnnspec.kinds import kind_of
from rnnspec.names import KERAS_MODULE_NAMES
from rnnspec.targets.common import (
    LINE_LENGTH,
    Assign,
    Locals,
    PyCall,
    Return,
    Statement,
    import_lines,
    py_literal,
    render,
    render_statements,
)
from rnnspec.targets.keras_graph import graph_body
from rnnspec.text import docstring_text

TOOL = "the Keras target"


def keras_class(layer: Layer) -> str:
    """The class the Keras program instantiates: the kind's, or the user's (imported by name)."""
    return layer.extern.keras.name if layer.extern is not None else kind_of(layer, TOOL).keras_class


def layer_args(layer: Layer, *, name: str | None) -> list[str | PyCall]:
    """Positional arguments, then keyword arguments that differ from Keras's defaults, then the name.

    A user's layer gets every declared argument by keyword: the spec's defaults are the ones used,
    whatever the class's own are.
    """
    if layer.extern is not None:
        args: list[str | PyCall] = [f"{key}={py_literal(value)}" for key, value in layer.attrs.items()]
        return args + ([f"name={py_literal(name)}"] if name is not None else [])
    kind = kind_of(layer, TOOL)
    schema = kind.schema
    args: list[str | PyCall] = []
    wrapped = kind.keras_wrapped(layer)
    for key in schema.positional:
        if key == "layer" and wrapped is not None:
            cls, attrs = wrapped
            inner = Layer("", "dense", dict(attrs), layer.pos)
            args.append(PyCall(cls, tuple(layer_args(inner, name=inner.kind))))
        elif key == "layer":
            assert layer.inner is not None
            args.append(constructor(layer.inner, name=layer.inner.kind))
        else:
            args.append(py_literal(kind.keras_value(key, layer.attrs[key])))
    for key, attr in schema.attrs.items():
        if key in schema.positional or layer.attrs[key] == attr.default:
            continue
        value = kind.keras_value(key, layer.attrs[key])
        args.append(f"{key}={py_literal(value)}")
    if name is not None:
        args.append(f"name={py_literal(name)}")
    return args


def constructor(layer: Layer, *, name: str) -> PyCall:
    return PyCall(keras_class(layer), tuple(layer_args(layer, name=name)))


# Every name the program binds at module level (declared in rnnspec/names.py, which the checker asks).
MODULE_NAMES = KERAS_MODULE_NAMES


def _var(value_name: str) -> str:
    return value_name.replace(".", "_")


def context(model: Model, source_name: str) -> dict[str, Any]:
    if model.is_graph:
        body = graph_body(model, MODULE_NAMES, layer_args, keras_class)
    else:
        body = _stack_body(model)
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
        "body": render_statements(body, 4),
    }


def _stack_body(model: Model) -> list[Statement]:
    (inp,) = model.inputs
    dims = ["None" if d is None else str(d) for d in inp.shape]
    shape = f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"
    input_args = [f"shape={shape}", f"dtype={py_literal(inp.dtype)}"]
    if model.batch_size is not None:
        input_args.append(f"batch_size={model.batch_size}")
    input_args.append(f"name={py_literal(inp.name)}")
    body: list[Statement] = [Assign((inp.name,), PyCall("keras.Input", tuple(input_args)))]
    names = Locals(MODULE_NAMES | {inp.name})
    hidden = names.fresh("h" if inp.name == "x" else "x")
    # Walk the values by name: each IR value -> the expression that holds it.
    values: dict[str, str] = {inp.name: inp.name}
    lists: dict[tuple[str, ...], str] = {}  # values held together in one list, by their names
    last = model.layers[-1]
    for layer in model.layers:
        targets = [hidden]
        if layer is last and len(layer.outputs) > 1:
            bases = [_var(name) for name in layer.outputs]
            if layer.kind == "bidirectional" and layer.attrs["merge_mode"] == "none":
                bases[:2] = ["forward", "backward"]
            targets = [names.fresh(base) for base in bases]
            if len(f"    {', '.join(targets)} = {keras_class(layer)}(") > LINE_LENGTH:
                # Too many names for one line: keep the list whole, as a formatter would not split it.
                targets = [names.fresh("outputs")]
        call = PyCall(
            keras_class(layer), tuple(layer_args(layer, name=layer.name)), f"({values[layer.inputs[0]]})"
        )
        body.append(Assign(tuple(targets), call))
        if len(targets) == len(layer.outputs):
            values.update(zip(layer.outputs, targets))
        else:  # one list holds them all
            values.update((name, f"{targets[0]}[{i}]") for i, name in enumerate(layer.outputs))
            lists[tuple(layer.outputs)] = targets[0]
    # One name holds the one output, or (`outputs`) the list of them all.
    if len(model.outputs) == 1:
        outputs = values[model.outputs[0]]
    else:
        outputs = lists.get(tuple(model.outputs)) or "[" + ", ".join(values[o] for o in model.outputs) + "]"
    args = (f"inputs={inp.name}", f"outputs={outputs}", f"name={py_literal(model.name)}")
    body.append(Return(PyCall("keras.Model", args)))
    return body


def generate(model: Model, source_name: str) -> str:
    return render("keras.py.j2", context(model, source_name))
