"""A v1 graph -> the body of build_model(): the functional model a person would write.

Each statement is one call, `y = keras.layers.LSTM(...)(x, initial_state=[h, c])`; a layer
applied more than once is bound to a variable first (`embed = keras.layers.Embedding(...)`)
and called by it; the inputs are a list in declaration order, the outputs a list in `output`
order (one of each is the tensor itself).
"""

from __future__ import annotations

from rnnspec.ir import MERGE_KINDS, Model
from rnnspec.targets.common import Assign, PyCall, Return, Statement, Variables, py_literal


def graph_body(model: Model, module_names: frozenset[str], call_args, keras_class) -> list[Statement]:
    """build_model()'s statements for a graph: the inputs, one call per spec statement, the Model."""
    calls: dict[str, int] = {}
    for node in model.nodes:  # live applications only: a call that feeds no output is left out
        calls[node.layer.name] = calls.get(node.layer.name, 0) + 1
    shared = {name for name, count in calls.items() if count > 1}
    variables = Variables(model, set(module_names) | {value.name for value in model.inputs})
    body: list[Statement] = []
    for value in model.inputs:
        variables.names[value.name] = value.name
        variables.holder[value.name] = value.name
        dims = ["None" if d is None else str(d) for d in value.shape]
        shape = f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"
        args = [f"shape={shape}", f"dtype={py_literal(value.dtype)}"]
        if model.batch_size is not None:
            args.append(f"batch_size={model.batch_size}")
        args.append(f"name={py_literal(value.name)}")
        body.append(Assign((value.name,), PyCall("keras.Input", tuple(args))))
    layer_vars: dict[str, str] = {}
    for node in model.nodes:
        layer = node.layer
        # A merge the spec leaves unnamed is left to Keras to name: Keras names the operations a
        # masked Concatenate computes its mask with `concatenate_N` too, from the same counter, and
        # an explicit `concatenate_2` could clash with one ("used 2 times in the model"). A merge
        # has no weights: no tool looks it up by name.
        named = layer.kind not in MERGE_KINDS or "name" in layer.attr_pos
        constructor = PyCall(keras_class(layer), tuple(call_args(layer, name=layer.name if named else None)))
        if layer.name in shared and layer.name not in layer_vars:
            layer_vars[layer.name] = variables.fresh(layer.name)
            body.append(Assign((layer_vars[layer.name],), constructor))
        inputs = [variables[key] for key in node.inputs]
        if layer.kind in MERGE_KINDS:
            args = ["[" + ", ".join(inputs) + "]"]
        else:
            args = list(inputs)
        if node.initial_state:
            args.append("initial_state=[" + ", ".join(variables[key] for key in node.initial_state) + "]")
        if node.mask is not None:
            args.append(f"mask={variables[node.mask]}")
        targets = tuple(variables.bind(key) for key in node.outputs)
        if layer.name in shared:
            body.append(Assign(targets, PyCall(layer_vars[layer.name], tuple(args))))
        else:
            body.append(Assign(targets, PyCall(constructor.head, constructor.args, f"({', '.join(args)})")))
    ins = [value.name for value in model.inputs]
    outs = [variables[key] for key in model.outputs]
    inputs = ins[0] if len(ins) == 1 else "[" + ", ".join(ins) + "]"
    outputs = outs[0] if len(outs) == 1 else "[" + ", ".join(outs) + "]"
    args = (f"inputs={inputs}", f"outputs={outputs}", f"name={py_literal(model.name)}")
    body.append(Return(PyCall("keras.Model", args)))
    return body
