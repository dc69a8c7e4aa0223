"""Passes over the IR: names, shapes, where masks flow, and the language's rules.

`load_models` is the front door: text -> AST -> IR -> checked IR, raising one SpecError that holds
every independent mistake in the file.
"""

from __future__ import annotations

import keyword

from rnnspec.build import build_externs, build_model
from rnnspec.errors import Pos, Reporter, SpecError
from rnnspec.graph import build_graph_model, check_graph, is_graph
from rnnspec.ir import ExternLayer, Layer, Model, TensorValue, bad_identifier
from rnnspec.kinds import Context, describe, kind_of, needs_sequence_message
from rnnspec.names import (
    IMPORTED_NAMES,
    MODULE_ATTRIBUTES,
    camel_case,
    reserved_class_names,
    reserved_input_names,
)
from rnnspec.parse import InputDecl, LayerStmt, parse


def load_models(source: str) -> list[Model]:
    """Parse and check every model in a spec file; raise SpecError listing all mistakes."""
    spec = parse(source)
    report = Reporter()
    models: list[Model] = []
    seen: dict[str, Pos] = {}
    if not spec.models:
        report.error(
            Pos(1, 1),
            "the file holds no model: write `model NAME {`, then an `input` and one layer per line, then `}`",
        )
    externs = build_externs(spec.externs, report)
    _check_extern_names(spec, externs, report)
    for ast in spec.models:
        if ast.name in seen:
            report.error(
                ast.name_pos, f"model `{ast.name}` is defined twice (first at line {seen[ast.name].line})"
            )
        seen.setdefault(ast.name, ast.name_pos)
        why = bad_identifier(ast.name)
        if why:
            report.error(ast.name_pos, f"model name `{ast.name}` {why}; choose another name")
        before = len(report.diagnostics)
        model = (build_graph_model if is_graph(ast) else build_model)(ast, report, externs)
        if model is None:
            continue
        if not any(isinstance(stmt, InputDecl) for stmt in ast.statements):
            report.error(
                ast.statements[0].pos if ast.statements else ast.end_pos,
                f"model `{ast.name}` has no `input` declaration: start it with e.g. `input x: float32[*, 8]`",
            )
        if not any(isinstance(stmt, LayerStmt) for stmt in ast.statements):
            report.error(ast.end_pos, f"model `{ast.name}` has no layers")
        if model.is_graph:
            if model.inputs and model.nodes and len(report.diagnostics) == before:
                _check_names(model, report)
                check_graph(model, report, _infer)
        elif model.inputs and model.layers and len(model.layers) == _count_layers(ast):
            check_model(model, report)
        models.append(model)
    report.raise_if_any()
    return models


def _count_layers(ast) -> int:
    return sum(isinstance(stmt, LayerStmt) for stmt in ast.statements)


def check_model(model: Model, report: Reporter) -> None:
    _check_names(model, report)
    current = model.inputs[0]
    model.values[current.name] = current
    previous: Layer | None = None
    last = len(model.layers) - 1
    for index, layer in enumerate(model.layers):
        produced = _infer(model, layer, current, previous, report)
        if produced is None:
            return  # later shapes would be nonsense
        layer.inputs = [current.name]
        layer.outputs = [value.name for value in produced]
        for value in produced:
            model.values[value.name] = value
        if index != last:
            _check_last_only(layer, model.layers[index + 1], report)
        current = produced[0]
        previous = layer
    model.outputs = list(model.layers[-1].outputs)


def _check_extern_names(spec, externs: dict[str, ExternLayer | None], report: Reporter) -> None:
    """An extern layer's classes are imported under their own names: nothing else may take them."""
    classes = {camel_case(ast.name): ast for ast in spec.models}
    inputs = {stmt.name for ast in spec.models for stmt in ast.statements if isinstance(stmt, InputDecl)}
    imported: dict[tuple[str, str], str] = {}  # (framework, class name) -> module
    for extern in externs.values():
        if extern is None:
            continue
        for framework, path in (("keras", extern.keras), ("pytorch", extern.pytorch)):
            where = extern.field_pos[framework]
            name = path.name
            if name in IMPORTED_NAMES:
                report.error(
                    where,
                    f"class `{name}` of `{extern.name}` would shadow a name the generated programs use; "
                    "import it from a module under another name",
                )
            elif framework == "pytorch" and name in classes:
                report.error(
                    where,
                    f"class `{name}` of `{extern.name}` is the class the generated PyTorch program defines for "
                    f"model `{classes[name].name}`; rename one of them",
                )
            elif name in inputs:
                report.error(
                    where,
                    f"class `{name}` of `{extern.name}` has the name of a model input; rename one of them",
                )
            module = imported.setdefault((framework, name), path.module)
            if module != path.module:
                report.error(
                    where,
                    f"two {framework} classes named `{name}` ({module} and {path.module}) cannot both be "
                    "imported into one program; rename one of them",
                )


def _check_names(model: Model, report: Reporter) -> None:
    seen: dict[str, Pos] = {}
    for value in model.inputs:
        seen[value.name] = value.pos or model.pos
    for entity, name, pos in [("input", v.name, v.pos or model.pos) for v in model.inputs] + [
        ("layer", layer.name, layer.where("name")) for layer in model.layers
    ]:
        why = bad_identifier(name)
        if why:
            fix = "choose another with `as NAME`" if entity == "layer" else "choose another name"
            report.error(pos, f"{entity} name `{name}` {why}; {fix}")
    reserved = reserved_input_names()
    for value in model.inputs:
        if value.name in reserved:
            report.error(
                value.pos or model.pos,
                f"input name `{value.name}` would shadow a name the generated {reserved[value.name]} program "
                "uses; choose another",
            )
    class_name = camel_case(model.name)
    if keyword.iskeyword(class_name):
        report.error(
            model.pos,
            f"model name `{model.name}` would become the class `{class_name}`, a Python keyword, in the "
            "generated PyTorch program; choose another",
        )
    elif class_name in reserved_class_names():
        report.error(
            model.pos,
            f"model name `{model.name}` would become the class `{class_name}`, which the generated "
            "PyTorch program already defines; choose another",
        )
    for layer in model.layers:
        pos = layer.where("name")
        if layer.name in MODULE_ATTRIBUTES or layer.name.startswith("_"):
            report.error(
                pos,
                f"layer name `{layer.name}` would clash with an attribute of torch.nn.Module in the generated "
                "PyTorch program; choose another with `as NAME`",
            )
        if layer.name in seen:
            first = seen[layer.name]
            report.error(
                pos,
                f"name `{layer.name}` is used twice in model `{model.name}` (first at line {first.line}); "
                "give one of them another name with `as NAME`",
            )
        seen.setdefault(layer.name, pos)


def _check_last_only(layer: Layer, following: Layer, report: Reporter) -> None:
    rec = layer.recurrent
    if rec is not None and rec.attrs["return_state"]:
        report.error(
            layer.where("return_state") if layer.inner is None else rec.where("return_state"),
            f"`return_state=true` is only allowed on the last layer of a model; "
            f"`{layer.name}` is followed by `{following.name}`",
        )
    if layer.kind == "bidirectional" and layer.attrs["merge_mode"] == "none":
        report.error(
            layer.where("merge_mode"),
            f"`merge_mode=none` returns two tensors, so `{layer.name}` must be the last layer; "
            f"it is followed by `{following.name}`",
        )


def _infer(
    model: Model, layer: Layer, current: TensorValue, previous: Layer | None, report: Reporter
) -> list[TensorValue] | None:
    """Check that `layer` accepts `current` and return what it produces (main output first)."""
    kind = kind_of(layer, "the checker")
    is_ids = current.dtype.startswith("int")
    if kind.takes_ids and not is_ids:
        report.error(
            layer.pos,
            f"`{layer.kind}` needs an int32 or int64 input of token ids; `{layer.name}` receives "
            f"{describe(current)} from `{previous.name if previous else current.name}`",
        )
        return None
    if is_ids and not kind.takes_ids:
        report.error(
            layer.pos,
            f"input `{current.name}` holds token ids ({describe(current)}) and must be followed by "
            f"`embedding(...)`, not `{layer.kind}`",
        )
        return None
    if kind.needs_sequence and not current.is_sequence:
        report.error(layer.pos, needs_sequence_message(layer, current, previous))
        return None
    return kind.infer(layer, current, Context(model, previous, report))


def load_model(source: str, name: str | None = None) -> Model:
    """The one model of a file, or the one called `name`; SpecError otherwise."""
    return select_model(load_models(source), name)


def select_model(models: list[Model], name: str | None) -> Model:
    if name is not None:
        for model in models:
            if model.name == name:
                return model
        raise SpecError.single(
            f"no model `{name}` in this file; it defines: {', '.join(m.name for m in models)}"
        )
    if len(models) > 1:
        raise SpecError.single(
            f"this file defines {len(models)} models ({', '.join(m.name for m in models)}); choose one with --model NAME"
        )
    return models[0]
