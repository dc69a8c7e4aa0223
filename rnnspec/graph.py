"""v1 models: statements -> a graph of layer applications over named values, and its rules.

A v0 model is a stack (each layer takes the value before it). A v1 model names its values:
`out, h, c = lstm(64, return_state=true)(x) as enc`, `dec = lstm(64)(y, initial_state=[h, c])`,
`output a, b`. Each statement becomes a `Node` (one application of a layer: its input values,
its explicit mask, its initial states, its output values); calling a layer again by its layer
name (`embed(y)`) applies the same `Layer` object, so it shares its weights, as in Keras.

Value keys are unique in a model: a name bound again (`dec = ...(dec)`) gets a new key
(`dec#2`); `shown()` gives the name as written. The checks here are the graph's (defined before
use, arity, masks, initial states, merges, unused values); each layer's own shape rules are
check.py's, reached through the `infer` callback.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass, field

from rnnspec.build import _bind_args, _layer, input_dims, name_layer
from rnnspec.errors import Diagnostic, Pos, Reporter, did_you_mean
from rnnspec.ir import (
    DTYPES,
    MAX_SIZE,
    MERGE_KINDS,
    MODEL_OPTIONS,
    ExternLayer,
    Layer,
    LayerSchema,
    Model,
    Node,
    TensorValue,
    bad_identifier,
    snake_case,
)
from rnnspec.kinds import LAYER_SCHEMAS
from rnnspec.parse import (
    Arg,
    Ident,
    InputDecl,
    LayerStmt,
    ListValue,
    ModelAST,
    OutputStmt,
    arg_text,
    value_text,
)

# The keyword arguments of a layer's call (its second parentheses), as Keras's `layer(x, mask=m)`.
CALL_ARGS = ("mask", "initial_state")
# Graph-only input types: `bool[T]` is an explicit mask, passed to a layer as `mask=m`.
GRAPH_DTYPES = (*DTYPES, "bool")
# Layers whose call takes Keras's `mask=` argument, and so an explicit mask input.
MASK_TAKERS = ("simple_rnn", "lstm", "gru", "bidirectional", "global_average_pooling", "attention_pooling")

Infer = Callable[[Model, Layer, TensorValue, "Layer | None", Reporter], "list[TensorValue] | None"]


def shown(key: str) -> str:
    """A value's name as the spec writes it (`dec#2` is the second `dec`)."""
    return key.split("#", 1)[0]


def is_graph(ast: ModelAST) -> bool:
    """Whether a model uses any v1 form; a model that does not keeps v0's meaning exactly."""
    inputs = [s for s in ast.statements if isinstance(s, InputDecl)]
    if len(inputs) > 1 or (inputs and ast.statements[0] is not inputs[0]):
        return True
    if any(stmt.dtype.name == "bool" or len(stmt.dims) > 2 for stmt in inputs):
        return True
    names: list[str] = []  # the layer names so far: calling one applies that layer again
    counts: dict[str, int] = {}
    values = {stmt.name for stmt in inputs}  # a stack's values: its input and its layers' names
    for stmt in ast.statements:
        if isinstance(stmt, OutputStmt):
            return True
        if isinstance(stmt, LayerStmt):
            if stmt.targets or stmt.inputs is not None or stmt.call.kind in MERGE_KINDS:
                return True
            if stmt.call.kind in names and _applies(
                stmt, values | set(names), LAYER_SCHEMAS.get(stmt.call.kind)
            ):
                return True
            counts[stmt.call.kind] = counts.get(stmt.call.kind, 0) + 1
            auto = snake_case(stmt.call.kind) if stmt.call.kind[:1].isupper() else stmt.call.kind
            names.append(stmt.alias.name if stmt.alias is not None else f"{auto}_{counts[stmt.call.kind]}")
    return False


@dataclass
class _Scope:
    """The names bound so far while reading a model's statements."""

    bound: dict[str, str] = field(default_factory=dict)  # name as written -> current key
    counts: dict[str, int] = field(default_factory=dict)
    # Where each name is bound, in order (input or not): a use above them all is told so.
    bindings: dict[str, list[tuple[Pos, bool]]] = field(default_factory=dict)
    # A layer named apart from its values (`y = lstm(8)(x) as enc`): `enc` -> ("`y`", its line).
    layer_values: dict[str, tuple[str, int]] = field(default_factory=dict)

    def bind(self, name: str) -> str:
        self.counts[name] = self.counts.get(name, 0) + 1
        key = name if self.counts[name] == 1 else f"{name}#{self.counts[name]}"
        self.bound[name] = key
        return key


@dataclass
class _Call:
    """A statement's inputs, resolved to keys (None where a name was not found)."""

    values: list[tuple[str | None, Pos]]
    mask: tuple[str | None, Pos] | None = None
    initial_state: list[tuple[str | None, Pos]] | None = None
    initial_state_pos: Pos | None = None


def build_graph_model(
    ast: ModelAST, report: Reporter, externs: dict[str, ExternLayer | None]
) -> Model | None:
    """A v1 model's IR (rnnspec/build.py builds a stack's): its graph, unchecked."""
    options = _bind_args(ast.options, (), MODEL_OPTIONS, "model", ast.name_pos, report)
    model = Model(ast.name, ast.name_pos, options["batch_size"] if options else None, [], [])
    build_graph(ast, report, externs, model)
    return model if options is not None else None


def build_graph(
    ast: ModelAST, report: Reporter, externs: dict[str, ExternLayer | None], model: Model
) -> None:
    """Fill `model` (inputs, layers, nodes, values, outputs) from a v1 model's statements.

    Shapes are not known yet (check_graph infers them); this resolves names and reports the
    mistakes that need no shapes: undefined values, misplaced arguments, shared-layer calls.
    """
    scope = _Scope()
    for stmt in ast.statements:
        if isinstance(stmt, InputDecl):
            scope.bindings.setdefault(stmt.name, []).append((stmt.name_pos, True))
        elif isinstance(stmt, LayerStmt):
            named = [t for t in stmt.targets if t.name != "_"] or ([stmt.alias] if stmt.alias else [])
            for target in named:
                scope.bindings.setdefault(target.name, []).append((target.pos, False))
    layers: dict[str, Layer] = {}
    counts: dict[str, int] = {}
    previous: list[str] = []  # the keys the previous statement produced
    model.is_graph = True
    declared: dict[str, Pos] = {}
    for stmt in ast.statements:
        if isinstance(stmt, InputDecl):
            value = input_value(stmt, report)
            if stmt.name in declared:
                report.error(
                    stmt.name_pos,
                    f"input `{stmt.name}` is declared twice (first at line {declared[stmt.name].line})",
                )
                continue
            declared[stmt.name] = stmt.name_pos
            if value is None:
                scope.bind(stmt.name)  # reported; later uses need no second message
                previous = []
                continue
            value.name = scope.bind(stmt.name)
            model.inputs.append(value)
            model.values[value.name] = value
            previous = [value.name]
            continue
        if isinstance(stmt, OutputStmt):
            if model.output_pos is not None:
                report.error(
                    stmt.pos,
                    f"a model has one `output` statement (the first is at line {model.output_pos.line})",
                )
                continue
            model.output_pos = stmt.pos
            names = []
            for ident in stmt.names:
                key = _resolve(ident.name, ident.pos, scope, report)
                if key is not None and key in names:
                    report.error(ident.pos, f"`{ident.name}` is listed twice in `output`")
                elif key is not None:
                    names.append(key)
            model.outputs = names
            previous = []
            continue
        node = _node(stmt, report, externs, scope, layers, counts, previous)
        if node is None:
            for target in stmt.targets:  # reported; their later uses need no second message
                scope.bind(target.name)
            previous = []
            continue
        if node.written and node.call_index == 0 and node.layer.name not in node.written:
            values = [name for name in node.written if name != "_"]
            if values:
                scope.layer_values[node.layer.name] = (", ".join(f"`{v}`" for v in values), stmt.pos.line)
        if node.written:
            node.outputs = [
                scope.bind(name) if name != "_" else f"_#{len(model.nodes)}.{i}"
                for i, name in enumerate(node.written)
            ]
        else:
            node.outputs = [scope.bind(node.layer.name)]
        model.nodes.append(node)
        if node.call_index == 0:
            model.layers.append(node.layer)
        previous = [key for key in node.outputs if not key.startswith("_#")][:1]


def input_value(stmt: InputDecl, report: Reporter) -> TensorValue | None:
    """An input of a graph model: ids `int32[T]`, a mask `bool[T]`, features `float32[..., F]`."""
    dtype = stmt.dtype.name
    if dtype not in GRAPH_DTYPES:
        report.error(
            stmt.dtype.pos,
            f"unknown input type `{dtype}`: use int32, int64, float32 or bool (a mask)"
            f"{did_you_mean(dtype, GRAPH_DTYPES)}",
        )
        return None
    shape = input_dims(stmt, report)
    if shape is None:
        return None
    dims = "[" + ", ".join("*" if d is None else str(d) for d in shape) + "]"
    if dtype != "float32" and len(shape) != 1:
        what = "holds token ids" if dtype != "bool" else "is a mask over time"
        report.error(
            stmt.dtype.pos,
            f"{'a' if dtype == 'bool' else 'an'} {dtype} input {what} and takes one dimension, the time axis "
            f"(`{dtype}[*]` or `{dtype}[20]`), got {dims}",
        )
        return None
    if dtype == "float32" and shape[-1] is None:
        report.error(stmt.dims[-1].pos, "the feature dimension must be a fixed size, not `*`")
        return None
    return TensorValue(stmt.name, dtype, tuple(shape), pos=stmt.name_pos)


def _resolve(name: str, pos: Pos, scope: _Scope, report: Reporter) -> str | None:
    key = scope.bound.get(name)
    later = [(at, is_input) for at, is_input in scope.bindings.get(name, []) if at.line >= pos.line]
    if key is None and later:
        at, is_input = later[0]
        if is_input:
            why = f"input `{name}` is declared at line {at.line}, below its first use: declare it above"
        elif at.line == pos.line:
            why = f"`{name}` is used by the statement that defines it: a graph has no cycles"
        else:
            why = (
                f"`{name}` is used before it is defined (line {at.line}): statements run top to bottom, so a "
                "graph has no cycles; define it above its first use"
            )
        report.error(pos, why)
    elif key is None and name in scope.layer_values:
        value, line = scope.layer_values[name]
        report.error(
            pos,
            f"`{name}` names a layer (line {line}), not a value: what it returned there is {value}; "
            f"`{name}(x)` applies the layer again",
        )
    elif key is None:
        known = sorted(scope.bound)
        report.error(
            pos,
            f"`{name}` is not defined here{did_you_mean(name, known)}: a value is an `input` or a name bound "
            "by an earlier statement (`x = ...`, or the layer name of a statement without `x =`)",
        )
    return key


def _node(
    stmt: LayerStmt,
    report: Reporter,
    externs: dict[str, ExternLayer | None],
    scope: _Scope,
    layers: dict[str, Layer],
    counts: dict[str, int],
    previous: list[str],
) -> Node | None:
    call = stmt.call
    shared = layers.get(call.kind)
    if (
        shared is not None
        and (call.kind in LAYER_SCHEMAS or call.kind in externs)
        and not _applies(stmt, scope.bound, _schema(call.kind, externs))
    ):
        # `dense(4)` is a new dense layer, `dense(x)` the layer named `dense` again; and
        # `activation(relu6)` a new activation layer, since `relu6` names no value.
        shared = None
    if shared is not None:
        if stmt.alias is not None:
            report.error(
                stmt.alias.pos,
                f"`{call.kind}(...)` applies the layer `{call.kind}` again, which keeps its name; drop `as "
                f"{stmt.alias.name}`",
            )
            return None
        if stmt.inputs is not None and call.args:
            report.error(
                call.pos,
                f"`{call.kind}` is a layer of this model: call it with its inputs only, as `{call.kind}(x)`",
            )
            return None
        layer = shared
        args = stmt.inputs if stmt.inputs is not None else call.args
        inputs: tuple[Arg, ...] | None = args if args else None
    else:
        if _values_in_place_of_arguments(stmt, report, externs, scope):
            return None
        built = _layer(call, report, externs)
        if built is None:
            return None
        layer = built
        name_layer(layer, stmt.alias, counts)
        if layer.name in layers:
            report.error(
                layer.where("name"),
                f"name `{layer.name}` is used twice (first at line {layers[layer.name].where('name').line}); "
                f"to apply that layer again write `{layer.name}(x)`, or give this one another name with "
                "`as NAME`",
            )
            return None
        layers[layer.name] = layer
        inputs = stmt.inputs
    resolved = _inputs(stmt, inputs, report, scope, previous, layer)
    if resolved is None:
        return None
    node = Node(
        layer=layer,
        inputs=[key for key, _ in resolved.values],  # type: ignore[misc]
        pos=stmt.pos,
        input_pos=[pos for _, pos in resolved.values],
        mask=resolved.mask[0] if resolved.mask else None,
        mask_pos=resolved.mask[1] if resolved.mask else None,
        initial_state=[key for key, _ in resolved.initial_state or []],  # type: ignore[misc]
        initial_state_pos=[pos for _, pos in resolved.initial_state or []],
        call_index=layer.calls,
        written=[t.name for t in stmt.targets],
        target_pos=[t.pos for t in stmt.targets],
    )
    layer.calls += 1
    for target in stmt.targets:
        why = bad_identifier(target.name) if target.name != "_" else None
        if why:
            report.error(target.pos, f"value name `{target.name}` {why}; choose another name")
            return None
    seen = [t.name for t in stmt.targets if t.name != "_"]
    for target in stmt.targets:
        if target.name != "_" and seen.count(target.name) > 1:
            report.error(target.pos, f"`{target.name}` is named twice in one statement")
            return None
    return node


def _values_in_place_of_arguments(
    stmt: LayerStmt, report: Reporter, externs: dict[str, ExternLayer | None], scope: _Scope
) -> bool:
    """Report the Keras habits that put values where a new layer's arguments go: `add(a, b)` (Keras's
    `layers.add([a, b])`), `lstm(x)` with no layer named `lstm`, and `y(x)` calling a value."""
    call = stmt.call
    schema = _schema(call.kind, externs)
    if schema is None and call.kind not in externs and call.kind in scope.bound:
        report.error(
            call.pos,
            f"`{call.kind}` is a value, not a layer: apply a layer to it, as in `dense(4)({call.kind})`; "
            "a layer is applied again by its layer name (`... as NAME`, then `NAME(x)`)",
        )
        return True
    if schema is None or stmt.inputs is not None:
        return False
    values = [arg for arg in call.args if arg.name is None]
    if not values or not all(
        isinstance(arg.value, Ident) and arg.value.name in scope.bound and not _takes_a_name(schema, i)
        for i, arg in enumerate(values)
    ):
        return False
    applied = ", ".join(arg_text(arg) for arg in call.args if arg.name is None or arg.name in CALL_ARGS)
    own = ", ".join(arg_text(arg) for arg in call.args if arg.name is not None and arg.name not in CALL_ARGS)
    if call.kind in MERGE_KINDS:
        report.error(
            call.pos,
            f"`{call.kind}` takes the values it merges in a second pair of parentheses: write "
            f"`{call.kind}({own})({applied})`",
        )
    else:
        shown = own or ", ".join(schema.positional)
        report.error(
            call.pos,
            f"this model has no layer named `{call.kind}` to apply again; a new `{call.kind}` takes its own "
            f"arguments first and its input second: `{call.kind}({shown})({applied})`",
        )
    return True


def _schema(kind: str, externs: dict[str, ExternLayer | None]) -> LayerSchema | None:
    extern = externs.get(kind)
    return extern.schema if extern is not None else LAYER_SCHEMAS.get(kind)


def _applies(stmt: LayerStmt, values: Container[str], schema: LayerSchema | None) -> bool:
    """Whether `NAME(args)` reads as applying a layer again: only values (and `mask=`,
    `initial_state=`) in its one pair of parentheses. Keras names its layers after their kind
    (`dense`, `embedding`, `activation`), so an imported graph calls a layer `dense` again as
    `dense(x)`, and its stack writes a second activation layer as `activation(relu6)`: a name
    that is no value of `values`, where the kind takes a name (an activation, a choice), is
    that argument."""
    if stmt.inputs is not None or not stmt.call.args:
        return False
    for index, arg in enumerate(stmt.call.args):
        if arg.name in CALL_ARGS:
            continue
        if arg.name is not None or not isinstance(arg.value, Ident):
            return False
        if arg.value.name not in values and _takes_a_name(schema, index):
            return False
    return True


def _takes_a_name(schema: LayerSchema | None, index: int) -> bool:
    if schema is None or index >= len(schema.positional):
        return False
    return schema.attrs[schema.positional[index]].type in ("activation", "merge_mode", "choice")


def _inputs(
    stmt: LayerStmt,
    args: tuple[Arg, ...] | None,
    report: Reporter,
    scope: _Scope,
    previous: list[str],
    layer: Layer,
) -> _Call | None:
    if args is None:
        if not previous:
            report.error(
                stmt.call.pos,
                f"`{layer.name}` takes the previous statement's value, but there is none here: "
                "name its input, as in `lstm(64)(x)`",
            )
            return None
        return _Call([(previous[0], stmt.call.pos)])
    ok = True
    result = _Call([])
    for arg in args:
        if arg.name is None:
            if result.mask is not None or result.initial_state is not None:
                report.error(arg.pos, "a value after `mask=` or `initial_state=`: list the inputs first")
                ok = False
            elif isinstance(arg.value, Ident):
                result.values.append((_resolve(arg.value.name, arg.value.pos, scope, report), arg.value.pos))
            else:
                report.error(
                    arg.value.pos,
                    f"a layer's inputs are value names, got `{value_text(arg.value)}`",
                )
                ok = False
        elif arg.name == "mask":
            if result.mask is not None:
                report.error(arg.pos, "`mask` is given twice")
                ok = False
            elif isinstance(arg.value, Ident):
                result.mask = (_resolve(arg.value.name, arg.value.pos, scope, report), arg.value.pos)
            else:
                report.error(
                    arg.value.pos, f"`mask=` takes a `bool` input's name, got `{value_text(arg.value)}`"
                )
                ok = False
        elif arg.name == "initial_state":
            items = arg.value.items if isinstance(arg.value, ListValue) else (arg.value,)
            if result.initial_state is not None:
                report.error(arg.pos, "`initial_state` is given twice")
                ok = False
                continue
            result.initial_state = []
            result.initial_state_pos = arg.pos
            for item in items:
                if isinstance(item, Ident):
                    result.initial_state.append((_resolve(item.name, item.pos, scope, report), item.pos))
                else:
                    report.error(
                        item.pos,
                        f"`initial_state` lists value names, as in `initial_state=[h, c]`; got `{value_text(item)}`",
                    )
                    ok = False
        else:
            report.error(
                arg.pos,
                f"a layer call takes values and `mask=` or `initial_state=`, not `{arg.name}=`"
                f"{did_you_mean(arg.name, ['mask', 'initial_state'])}; a layer's own arguments go in its "
                f"first parentheses",
            )
            ok = False
    if not result.values:
        report.error(stmt.call.pos, f"`{layer.name}` is called without an input value")
        ok = False
    keys = [key for key, _ in result.values]
    keys += [key for key, _ in result.initial_state or []]
    keys += [result.mask[0]] if result.mask else []
    if not ok or None in keys:
        return None
    return result


# --- checks --------------------------------------------------------------------------------


def output_names(layer: Layer) -> list[str]:
    """What each value a layer returns is, in Keras's order: `output, h, c`; `output,
    forward_h, ..., backward_h, ...`; with merge_mode=none `forward, backward, ...`."""
    rec = layer.recurrent
    if rec is None:
        return ["output"]
    split = layer.kind == "bidirectional" and layer.attrs["merge_mode"] == "none"
    names = ["forward", "backward"] if split else ["output"]
    return names + (state_names(layer) if rec.attrs["return_state"] else [])


def runs_masked(model: Model, node: Node) -> bool:
    """Whether the layer's computation at this node uses a mask: an explicit `mask=`, or its input's
    mask unless the call has `initial_state` (Keras then ignores the input's mask)."""
    if node.mask is not None:
        return True
    return not node.initial_state and any(model.values[key].masked for key in node.inputs)


def state_names(layer: Layer) -> list[str]:
    """The states a recurrent layer carries, in Keras's order (`initial_state`, `return_state`)."""
    rec = layer.recurrent
    assert rec is not None
    states = ["h", "c"] if rec.kind == "lstm" else ["h"]
    if layer.inner is None:
        return states
    return [f"forward_{s}" for s in states] + [f"backward_{s}" for s in states]


def state_count(layer: Layer) -> int:
    return len(state_names(layer))


def check_graph(model: Model, report: Reporter, infer: Infer) -> None:
    """Shapes and masks of every value, and the graph's rules; warnings for what is unused."""
    producer: dict[str, Layer] = {}
    for node in model.nodes:
        before = len(report.diagnostics)
        produced = _check_node(model, node, report, infer, producer)
        if produced is None or len(report.diagnostics) > before:
            return  # later shapes would be nonsense
        for key, value in zip(node.outputs, produced):
            value.name = key
            model.values[key] = value
            producer[key] = node.layer
        if node.call_index == 0:
            node.layer.inputs = list(node.inputs)
            node.layer.outputs = list(node.outputs)
    if model.output_pos is None and model.nodes:
        last = model.nodes[-1]
        model.outputs = [key for key in last.outputs if not key.startswith("_#")]
    last = model.nodes[-1] if model.nodes else None
    _check_usage(model)
    if not model.outputs and last is not None:
        report.error(
            last.pos,
            f"model `{model.name}` has no output: the last statement drops every value it returns (`_`); "
            "name one, or list the outputs with `output`",
        )
    elif not model.nodes:
        report.error(
            model.output_pos or model.pos,
            f"model `{model.name}` computes nothing: its outputs are inputs; list a layer's value in `output`",
        )


def _warn(model: Model, pos: Pos | None, message: str) -> None:
    model.warnings.append(Diagnostic(pos, message, "warning"))


def _check_node(
    model: Model, node: Node, report: Reporter, infer: Infer, producer: dict[str, Layer]
) -> list[TensorValue] | None:
    layer = node.layer
    values = [model.values[key] for key in node.inputs]
    for key, value, pos in zip(node.inputs, values, node.input_pos):
        if value.dtype == "bool":
            report.error(
                pos,
                f"`{shown(key)}` is a mask (bool): pass it as `mask={shown(key)}` to a recurrent or pooling layer",
            )
            return None
    if layer.kind in MERGE_KINDS:
        produced = _merge(layer, node, values, report)
    else:
        if len(values) != 1:
            report.error(
                node.input_pos[1],
                f"`{layer.name}` ({layer.kind}) takes one input value, got {len(values)}; merge values first, "
                "e.g. with `concatenate()(a, b)`",
            )
            return None
        current = values[0]
        if node.mask is not None:
            if not _check_mask(model, node, current, report):
                return None
            current = TensorValue(current.name, current.dtype, current.shape, True)
        if node.initial_state:
            if not _check_initial_state(model, node, current, report):
                return None
        if node.call_index > 0 and not _same_input(model, node, current, report):
            return None
        if node.call_index > 0 and layer.recurrent is not None and layer.recurrent.attrs["stateful"]:
            report.error(
                node.pos,
                f"`{layer.name}` is stateful and applied twice: which call's final states would the next "
                "batch start from? Use two layers",
            )
            return None
        produced = infer(model, layer, current, producer.get(current.name), report)
    if produced is None:
        return None
    if node.written and len(node.written) != len(produced):
        names = output_names(layer)
        unpack = ", ".join(names)
        report.error(
            node.target_pos[0],
            f"`{layer.name}` returns {len(produced)} value{'s' if len(produced) != 1 else ''} ({unpack}), "
            f"but {len(node.written)} name{'s are' if len(node.written) != 1 else ' is'} given: write "
            f"`{unpack} = ...` (`_` drops one)",
        )
        return None
    if not node.written and len(produced) > 1:
        # A statement without names: its first value takes the layer's name; the others cannot be
        # named later, and are outputs only of a model's last statement (as in v0).
        node.outputs = node.outputs + [f"{node.outputs[0]}.{name}" for name in output_names(layer)[1:]]
    return produced


def _check_mask(model: Model, node: Node, current: TensorValue, report: Reporter) -> bool:
    layer = node.layer
    mask = model.values[node.mask]  # type: ignore[index]
    if layer.kind not in MASK_TAKERS:
        report.error(
            node.mask_pos,
            f"`{layer.name}` ({layer.kind}) does not take a mask; `mask=` goes to a recurrent layer, "
            "`bidirectional` or a pooling layer",
        )
        return False
    if mask.dtype != "bool":
        report.error(
            node.mask_pos,
            f"`mask=` takes a `bool` input, such as `input m: bool[*]`; `{shown(mask.name)}` is "
            f"{_describe(mask)}",
        )
        return False
    if not current.is_sequence:
        return True  # the layer's own rule names the problem
    if mask.shape[0] != current.shape[0]:
        # `*` against a fixed length too: the spec would say the length varies where it cannot
        report.error(
            node.mask_pos,
            f"mask `{shown(mask.name)}` has {_describe(mask)} but `{shown(current.name)}` has "
            f"{_describe(current)}: their time axes differ{_alike(mask.shape[0], current.shape[0])}",
        )
        return False
    return True


def _check_initial_state(model: Model, node: Node, current: TensorValue, report: Reporter) -> bool:
    layer = node.layer
    rec = layer.recurrent
    if rec is None:
        report.error(
            node.initial_state_pos[0],
            f"`{layer.name}` ({layer.kind}) has no state; `initial_state=` goes to a recurrent layer",
        )
        return False
    wanted = state_count(layer)
    names = state_names(layer)
    if len(node.initial_state) != wanted:
        report.error(
            node.initial_state_pos[0],
            f"`{layer.name}` has {wanted} state{'s' if wanted != 1 else ''} ({', '.join(names)}), so "
            f"`initial_state` lists {wanted} value{'s' if wanted != 1 else ''}, got {len(node.initial_state)}",
        )
        return False
    units = rec.attrs["units"]
    for key, pos, name in zip(node.initial_state, node.initial_state_pos, names):
        value = model.values[key]
        if value.dtype != "float32" or value.shape != (units,):
            report.error(
                pos,
                f"initial state {name} of `{layer.name}` is float32[{units}]; `{shown(key)}` is {_describe(value)}",
            )
            return False
    if rec.attrs["stateful"]:
        report.error(
            node.initial_state_pos[0],
            f"`{layer.name}` is stateful, so it starts from the states it carries; `initial_state=` is refused",
        )
        return False
    if current.masked and node.mask is None:
        _warn(
            model,
            node.input_pos[0],
            f"`{layer.name}` runs unmasked: Keras ignores the mask of `{shown(current.name)}` when a layer is "
            f"called with `initial_state` (the mask still flows on to later layers); to mask this layer, "
            f"pass the mask explicitly: declare `input m: bool[*]` and call it with `mask=m`",
        )
    return True


def _same_input(model: Model, node: Node, current: TensorValue, report: Reporter) -> bool:
    """A shared layer's weights are built for its first input: later inputs must fit them."""
    first = next(n for n in model.nodes if n.layer is node.layer and n.call_index == 0)
    before = model.values[first.inputs[0]]
    same_rank = len(before.shape) == len(current.shape)
    if (
        not same_rank
        or before.dtype.startswith("int") != current.dtype.startswith("int")
        or not all(_dims_match(a, b) for a, b in zip(before.shape[1:], current.shape[1:]))
        or (len(before.shape) == 1 and not _dims_match(before.shape[0], current.shape[0]))
    ):
        report.error(
            node.input_pos[0],
            f"`{node.layer.name}` was first applied to {_describe(before)} (`{shown(before.name)}`, line "
            f"{first.pos.line}); applied again it shares those weights, so it needs the same shape, but "
            f"`{shown(current.name)}` is {_describe(current)}",
        )
        return False
    return True


def _dims_match(a: int | None, b: int | None) -> bool:
    return a is None or b is None or a == b


def _alike(a: int | None, b: int | None) -> str:
    """The fix when a varying axis (`*`) meets a fixed one: they can only agree at that size."""
    if (a is None) == (b is None):
        return ""
    return f"; a varying length (`*`) meets a fixed one ({a or b}): declare both `*` or both {a or b}"


def _describe(value: TensorValue) -> str:
    dims = ", ".join("*" if d is None else str(d) for d in value.shape)
    return f"{value.dtype}[{dims}]"


def _merge(layer: Layer, node: Node, values: list[TensorValue], report: Reporter) -> list[TensorValue] | None:
    names = ", ".join(f"`{shown(v.name)}` {_describe(v)}" for v in values)
    if len(values) < 2:
        report.error(
            node.pos,
            f"`{layer.kind}` merges two or more values, got {len(values)}: write `{layer.kind}()(a, b)`",
        )
        return None
    if layer.kind == "subtract" and len(values) != 2:
        report.error(node.pos, f"`subtract` takes exactly 2 values (a - b), got {len(values)}")
        return None
    for value, pos in zip(values, node.input_pos):
        if value.dtype != "float32":
            report.error(
                pos, f"`{layer.kind}` merges float32 values; `{shown(value.name)}` is {_describe(value)}"
            )
            return None
    ranks = {len(v.shape) for v in values}
    if len(ranks) != 1:
        report.error(
            node.pos,
            f"`{layer.kind}` needs values with the same number of dimensions; got {names}",
        )
        return None
    (rank,) = ranks
    masked = any(v.masked for v in values)
    if layer.kind == "concatenate":
        axis = layer.attrs["axis"]
        index = axis - 1 if axis > 0 else rank + axis
        if axis == 0 or not 0 <= index < rank:
            report.error(
                layer.where("axis"),
                f"`axis` of `{layer.name}` must be between 1 and {rank} or -{rank} and -1 for these values "
                f"(axis 0 is the batch); got {axis}",
            )
            return None
        shape: list[int | None] = list(values[0].shape)
        for value in values[1:]:
            for i, (a, b) in enumerate(zip(shape, value.shape)):
                if i != index and not _dims_match(a, b):
                    report.error(
                        node.pos,
                        f"`concatenate` (axis={axis}) needs the same shape except along the axis, as Keras's "
                        f"Concatenate does; got {names}",
                    )
                    return None
        sizes = [v.shape[index] for v in values]
        shape[index] = None if None in sizes else sum(sizes)  # type: ignore[arg-type]
        if shape[index] is not None and shape[index] > MAX_SIZE:
            report.error(node.pos, f"`{layer.name}` would be larger than {MAX_SIZE:,} along axis {axis}")
            return None
        return [TensorValue(layer.name, "float32", tuple(shape), masked and rank == 2)]
    shape = list(values[0].shape)
    for value in values[1:]:
        for i, (a, b) in enumerate(zip(shape, value.shape)):
            if a is None or b is None:
                shape[i] = None
            elif a == 1:
                shape[i] = b
            elif b != 1 and a != b:
                report.error(
                    node.pos,
                    f"`{layer.kind}` needs shapes that are equal per axis (or 1, which broadcasts), as Keras's "
                    f"{layer.kind.capitalize()} does; got {names}",
                )
                return None
    return [TensorValue(layer.name, "float32", tuple(shape), all(v.masked for v in values))]


def _check_usage(model: Model) -> None:
    """Values nothing uses are warnings; nodes that feed no output are left out of the model."""
    used: set[str] = set(model.outputs)
    live: list[Node] = []
    for node in reversed(model.nodes):
        if not any(key in used for key in node.outputs):
            _warn(
                model,
                node.pos,
                f"`{node.layer.name}` feeds no output of model `{model.name}`; it is left out of the model",
            )
            continue
        live.append(node)
        used.update(node.inputs)
        used.update(node.initial_state)
        if node.mask is not None:
            used.add(node.mask)
        for key, written, pos in zip(node.outputs, node.written, node.target_pos):
            if key not in used and written != "_":
                _warn(
                    model,
                    pos,
                    f"`{written}` is never used (not an output, not an input of a later layer); write `_` to "
                    "drop it",
                )
    live.reverse()
    model.nodes = live
    kept = {id(node.layer) for node in live}
    model.layers = [layer for layer in model.layers if id(layer) in kept]
    for value in model.inputs:
        if value.name not in used:
            _warn(model, value.pos, f"input `{value.name}` is not used by any output of model `{model.name}`")
