"""`rnnspec import` of a functional model that is not a chain: the v1 spec of its graph.

Several inputs and outputs (a list, or a dict whose keys become comments), merges, layers called
more than once (shared weights), `initial_state=[...]`, explicit `mask=` inputs, and outputs
other than a layer's first (states). The layers themselves are converted as the chain importer
converts them (rnnspec/importer.py: one problem per option without an equivalent).

Masks: a layer call's `mask` in config.json is either a bool `Input` (an explicit mask, `mask=m`
in the spec) or a tensor Keras computed itself when it passed the input's mask on (ops such as
NotEqual, LogicalOr, Any); the spec derives the latter as Keras does. Next to `initial_state`,
Keras passes no mask by itself (tests/test_keras_facts.py, fact 30), so a computed mask there was
the user's own: refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rnnspec.graph import output_names
from rnnspec.ir import MERGE_KINDS

if TYPE_CHECKING:
    from rnnspec.importer import Item, _Converter

Ref = tuple[str, int, int]


def is_graph_config(inner: dict[str, Any], layers: list[Any]) -> bool:
    """Whether a functional config needs the graph form: not one input feeding a chain to one output."""
    from rnnspec.importer import _all_refs, _refs

    inputs, outputs = _refs(inner.get("input_layers")), _refs(inner.get("output_layers"))
    if isinstance(inner.get("output_layers"), dict) or inputs is None or outputs is None:
        return isinstance(inner.get("output_layers"), dict)
    if len(inputs) != 1 or len(outputs) != 1 or outputs[0][2] != 0:
        return True
    takers: dict[Ref, int] = {}
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        nodes = layer.get("inbound_nodes")
        if not isinstance(nodes, list):
            continue
        if len(nodes) > 1:
            return True
        if str(layer.get("module", "")).startswith("keras.src.ops"):
            continue  # a mask computation
        for node in nodes:
            if not isinstance(node, dict):
                continue
            args, kwargs = node.get("args") or [], node.get("kwargs") or {}
            if isinstance(kwargs, dict) and kwargs.get("initial_state") is not None:
                return True
            refs = _all_refs(args)
            if len(refs) != 1 or any(ref[2] != 0 for ref in refs):
                return True
            for ref in refs:
                takers[ref] = takers.get(ref, 0) + 1
    return any(count > 1 for count in takers.values())


def convert_graph(conv: _Converter, inner: dict[str, Any], layers: list[Any]) -> str | None:
    """The spec text of a functional graph; problems go to `conv.problem` (None when any)."""
    from rnnspec.importer import _all_refs, _call, _identifier, _refs

    entries = [conv._entry(layer, index) for index, layer in enumerate(layers)]
    by_name = {entry["name"]: entry for entry in entries}
    raw_outputs = inner.get("output_layers")
    keys: list[str] = []
    if isinstance(raw_outputs, dict):
        keys = [str(key) for key in raw_outputs]
        raw_outputs = list(raw_outputs.values())
    inputs, outputs = _refs(inner.get("input_layers")), _refs(raw_outputs)
    if inputs is None or outputs is None:
        conv.problem("the model's inputs or outputs are not tensors")
        return None
    ops = {e["name"] for e in entries if str(e["raw"].get("module", "")).startswith("keras.src.ops")}
    # Every call of every layer: (layer name, node index) -> (args, kwargs).
    calls: dict[tuple[str, int], tuple[list[Any], dict[str, Any]]] = {}
    order: list[tuple[str, int]] = []
    for entry in entries:
        if entry["class_name"] == "InputLayer":
            continue
        raw_nodes = entry["raw"].get("inbound_nodes")
        if not isinstance(raw_nodes, list) or not raw_nodes:
            conv.problem(f"layer `{entry['name']}` is never called")
            continue
        for index, node in enumerate(raw_nodes):
            if not isinstance(node, dict) or "args" not in node:
                conv.problem(
                    "the config uses the Keras 2 graph format; load the model in Keras 3 and save it again"
                )
                return None
            args, kwargs = node.get("args") or [], node.get("kwargs") or {}
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                conv.problem(f"layer `{entry['name']}`: its call in config.json is malformed (args, kwargs)")
                return None
            calls[(entry["name"], index)] = (args, kwargs)
            if entry["name"] not in ops:
                order.append((entry["name"], index))
    conv._ops = {name: by_name[name] for name in ops}  # for conv._op_closure
    conv._nodes = {name: calls[(name, 0)] for name in ops if (name, 0) in calls}
    # Inputs, in the model's order.
    names: dict[Ref, str] = {}
    taken: set[str] = set()
    header: list[str] = []
    for ref in inputs:
        entry = by_name.get(ref[0])
        if entry is None or entry["class_name"] != "InputLayer":
            conv.problem(f"input `{ref[0]}` is not an InputLayer")
            continue
        line = _input_line(conv, entry["config"], taken)
        if line is not None:
            header.append(line)
            names[ref] = line.split()[1].rstrip(":")
            taken.add(names[ref])
    # Topological order of the calls (the config lists layers as they were created).
    done: set[tuple[str, int]] = set()
    ordered: list[tuple[str, int]] = []
    pending = list(order)
    while pending:
        progressed = False
        for call in list(pending):
            args, kwargs = calls[call]
            needs = {
                (ref[0], ref[1])
                for ref in _all_refs([args, kwargs.get("initial_state")])
                if ref[0] not in ops and (ref[0], ref[1]) in calls
            }
            if needs <= done:
                done.add(call)
                ordered.append(call)
                pending.remove(call)
                progressed = True
        if not progressed:
            conv.problem("the model's graph has a cycle")
            return None
    items: dict[str, Item | None] = {}
    layer_names: dict[str, str] = {}
    lines: list[str] = []
    masks_used: set[str] = set()
    read: set[str] = set()  # the values some call takes
    for layer_name, index in ordered:
        entry = by_name[layer_name]
        if layer_name not in items:
            items[layer_name] = conv._item(entry)
            base = _identifier(layer_name, "layer", "layer")
            name = base
            n = 1
            while name in taken or name in layer_names.values():
                n += 1
                name = f"{base}_{n}"
            if name != layer_name:
                conv.notes.append(f"The Keras layer `{layer_name}` is `{name}` here.")
            layer_names[layer_name] = name
        item = items[layer_name]
        args, kwargs = calls[(layer_name, index)]
        where = f"layer `{layer_name}`" + (f" (call {index + 1})" if index else "")
        if item is None:
            continue
        values = _all_refs(args)
        if any(ref[0] in ops for ref in values):
            conv.problem(
                f"{where} takes a tensor computed by an operation (`{values[0][0]}`), which has no equivalent"
            )
            continue
        parts = [names.get(ref) for ref in values]
        if None in parts:
            continue  # its input was refused
        read.update(parts)  # type: ignore[arg-type]
        state = kwargs.get("initial_state")
        state_refs = _all_refs(state) if state is not None else []
        extra: list[str] = []
        if state_refs:
            state_names = [names.get(ref) for ref in state_refs]
            if None in state_names:
                continue
            extra.append(f"initial_state=[{', '.join(state_names)}]")  # type: ignore[arg-type]
            read.update(state_names)  # type: ignore[arg-type]
        mask = kwargs.get("mask")
        mask_refs = _all_refs(mask) if mask is not None else []
        if mask_refs:
            source = mask_refs[0]
            source_entry = by_name.get(source[0])
            if source_entry is not None and source_entry["class_name"] == "InputLayer" and source in names:
                extra.append(f"mask={names[source]}")
                read.add(names[source])
            elif source[0] in ops and not state_refs:
                masks_used |= conv._op_closure(source)  # the mask Keras passed on itself
            else:
                conv.problem(
                    f"{where} is given a mask computed in the model next to its initial_state (Keras passes "
                    "none there by itself); declare it as a bool input to import it"
                )
                continue
        for key, value in kwargs.items():
            if key == "training" and value is True:
                conv.problem(f"{where} is called with training=True, which changes its output")
            elif key not in ("mask", "training", "initial_state"):
                conv.problem(f"{where} is called with `{key}`, which has no equivalent")
        layer = _as_layer_named(item, layer_names[layer_name])
        count = len(output_names(layer)) if layer.kind not in MERGE_KINDS else 1
        targets = []
        for position in range(count):
            ref = (layer_name, index, position)
            if position == 0:
                base = layer_names[layer_name] if index == 0 else f"{layer_names[layer_name]}_{index}"
            else:
                base = f"{layer_names[layer_name]}{'_' + str(index) if index else ''}_{output_names(layer)[position]}"
            target = base
            n = 1
            while target in taken:
                n += 1
                target = f"{base}_{n}"
            taken.add(target)
            names[ref] = target
            targets.append(target)
        call_text = f"{targets[0] if count == 1 else ', '.join(targets)} = "
        inputs_text = ", ".join([*parts, *extra])  # type: ignore[list-item]
        if index == 0:
            # A merge has no weights: it is left for Keras to name, as the spec's unnamed merges
            # are (an explicit `concatenate` could clash with the ops of a masked Concatenate).
            unnamed = item.kind in MERGE_KINDS and len([c for c in ordered if c[0] == layer_name]) == 1
            alias = "" if unnamed else f" as {layer_names[layer_name]}"
            item.name = layer_names[layer_name]
            call_text += f"{_call(item)}({inputs_text}){alias}"
        else:
            call_text += f"{layer_names[layer_name]}({inputs_text})"
        lines.append(call_text)
    for op in ops - masks_used:
        conv.problem(f"operation `{op}` ({by_name[op]['class_name']}) has no equivalent")
    shown = [names.get(ref) for ref in outputs]
    if None in shown or conv.problems:
        return None
    read.update(shown)  # type: ignore[arg-type]
    lines = [_drop_unread(line, read) for line in lines]  # a spec warns about names nothing reads
    stateful = any(item is not None and (item.inner or item).attrs.get("stateful") for item in items.values())
    if conv._batch is not None and not stateful:
        conv.notes.append(
            f"The Keras model fixes the batch size at {conv._batch}; this stateless spec leaves it free."
        )
        conv._batch = None
    if keys:
        conv.notes.append(
            "The model's outputs are named: " + ", ".join(f"{k} -> `{v}`" for k, v in zip(keys, shown))
        )
    body = [*header, *lines, f"output {', '.join(shown)}"]  # type: ignore[arg-type]
    return "\n".join(f"    {line}" for line in body)


def _drop_unread(line: str, read: set[str]) -> str:
    targets, rest = line.split(" = ", 1)
    parts = targets.split(", ")
    if len(parts) == 1:
        return line
    return ", ".join(p if p in read else "_" for p in parts) + " = " + rest


def _as_layer_named(item: Item, name: str):
    from rnnspec.importer import _as_layer

    layer = _as_layer(item)
    layer.name = name
    return layer


def _input_line(conv: _Converter, config: dict[str, Any], taken: set[str]) -> str | None:
    from rnnspec.importer import _identifier, _show

    shape = config.get("batch_shape", config.get("batch_input_shape"))
    dtype = config.get("dtype", "float32")
    if isinstance(dtype, dict):
        dtype = (dtype.get("config") or {}).get("name")
    raw = str(config.get("name") or "x")
    for key in ("sparse", "ragged", "optional"):
        if config.get(key):
            conv.problem(f"input `{raw}`: `{key}=true` has no equivalent")
    if (
        not isinstance(shape, list)
        or len(shape) < 2
        or not all(d is None or isinstance(d, int) for d in shape)
    ):
        conv.problem(f"input `{raw}`: the shape {_show(shape)} has no equivalent")
        return None
    dims = shape[1:]
    if dtype not in ("int32", "int64", "float32", "bool"):
        conv.problem(f"input `{raw}`: dtype `{dtype}` has no equivalent (int32, int64, float32 or bool)")
        return None
    if dtype != "float32" and len(dims) != 1:
        conv.problem(
            f"input `{raw}`: a {dtype} input of shape {_show(shape)} has no equivalent ([batch, time])"
        )
        return None
    if dtype == "float32" and dims[-1] is None:
        conv.problem(
            f"input `{raw}`: the shape {_show(shape)} has no equivalent (the last dimension must be fixed)"
        )
        return None
    if shape[0] is not None:
        conv._batch = shape[0]
    name = _identifier(raw, "x", "input")
    base, n = name, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    if name != raw:
        conv.notes.append(f"The Keras input `{raw}` is `{name}` here.")
    return f"input {name}: {dtype}[{', '.join('*' if d is None else str(d) for d in dims)}]"
