"""Passes over the IR: names, shapes, where masks flow, and the language's rules.

`load_models` is the front door: text -> AST -> IR -> checked IR, raising one SpecError that holds
every independent mistake in the file.
"""

from __future__ import annotations

import keyword

from rnnspec.errors import Pos, Reporter, SpecError
from rnnspec.graph import check_graph
from rnnspec.ir import (
    RECURRENT_KINDS,
    ExternLayer,
    Layer,
    Model,
    TensorValue,
    bad_identifier,
    build_externs,
    build_model,
)
from rnnspec.parse import InputDecl, LayerStmt, parse
from rnnspec.targets import reserved_class_names, reserved_input_names


def load_models(source: str) -> list[Model]:
    """Parse and check every model in a spec file; raise SpecError listing all mistakes."""
    spec = parse(source)
    report = Reporter()
    models: list[Model] = []
    seen: dict[str, Pos] = {}
    if not spec.models:
        report.error(Pos(1, 1), "the file holds no model: write `model NAME { input ...; layers }`")
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
        model = build_model(ast, report, externs)
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


# Attributes of torch.nn.Module (torch 2.x) and of the generated module: a layer is `self.<name>`.
MODULE_ATTRIBUTES = frozenset(
    """T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda double
    dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half
    ipu load_state_dict modules mtia named_buffers named_children named_modules named_parameters parameters
    register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
    register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter register_state_dict_post_hook
    register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule share_memory state_dict to
    to_empty train training type xpu zero_grad reset_states""".split()
)
# Names an input may not take: each target's module-level names (asked of the targets).
PROGRAM_NAMES = frozenset(reserved_input_names())
# Module-level names an extern layer's class, imported under its spec name, must not take.
IMPORTED_NAMES = PROGRAM_NAMES | reserved_class_names() | frozenset({"np"})


def _check_extern_names(spec, externs: dict[str, ExternLayer | None], report: Reporter) -> None:
    """An extern layer's classes are imported under their own names: nothing else may take them."""
    from rnnspec.targets.pytorch import camel_case

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
    from rnnspec.targets.pytorch import class_name

    if keyword.iskeyword(class_name(model)):
        report.error(
            model.pos,
            f"model name `{model.name}` would become the class `{class_name(model)}`, a Python keyword, in the "
            "generated PyTorch program; choose another",
        )
    elif class_name(model) in reserved_class_names():
        report.error(
            model.pos,
            f"model name `{model.name}` would become the class `{class_name(model)}`, which the generated "
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


def _describe(value: TensorValue) -> str:
    dims = ", ".join("*" if d is None else str(d) for d in value.shape)
    return f"{value.dtype}[{dims}]"


def _infer(
    model: Model, layer: Layer, current: TensorValue, previous: Layer | None, report: Reporter
) -> list[TensorValue] | None:
    """Check that `layer` accepts `current` and return what it produces (main output first)."""
    kind = layer.kind
    is_ids = current.dtype.startswith("int")
    if kind == "embedding":
        if not is_ids:
            report.error(
                layer.pos,
                f"`embedding` needs an int32 or int64 input of token ids; `{layer.name}` receives "
                f"{_describe(current)} from `{previous.name if previous else current.name}`",
            )
            return None
        return [
            TensorValue(
                layer.name, "float32", current.shape + (layer.attrs["output_dim"],), layer.attrs["mask_zero"]
            )
        ]
    if is_ids:
        report.error(
            layer.pos,
            f"input `{current.name}` holds token ids ({_describe(current)}) and must be followed by "
            f"`embedding(...)`, not `{kind}`",
        )
        return None
    needs_sequence = kind in RECURRENT_KINDS or kind in (
        "bidirectional",
        "masking",
        "global_average_pooling",
        "attention_pooling",
    )
    if needs_sequence and not current.is_sequence:
        report.error(layer.pos, _needs_sequence(layer, current, previous))
        return None
    if kind in ("masking",):
        return [TensorValue(layer.name, "float32", current.shape, True)]
    if kind in ("dense",):
        return [
            TensorValue(layer.name, "float32", current.shape[:-1] + (layer.attrs["units"],), current.masked)
        ]
    if kind == "dropout":
        return [TensorValue(layer.name, "float32", current.shape, current.masked)]
    if kind in ("global_average_pooling", "attention_pooling"):
        return [TensorValue(layer.name, "float32", current.shape[1:])]
    if layer.extern is not None:
        return _infer_extern(layer, layer.extern, current, previous, report)
    return _infer_recurrent(model, layer, current, report)


def _infer_extern(
    layer: Layer, extern: ExternLayer, current: TensorValue, previous: Layer | None, report: Reporter
) -> list[TensorValue] | None:
    """The output of a user's layer, from its declared `output` shape and mask mode."""
    needs_time = extern.mask in ("keep", "produce") or "time" in extern.output
    if needs_time and not current.is_sequence:
        why = f"`mask = {extern.mask}`" if extern.mask != "consume" else "its `output` uses `time`"
        message = _needs_sequence(layer, current, previous).replace(
            f"`{layer.kind}` needs a sequence", f"`{layer.kind}` ({why}) needs a sequence", 1
        )
        report.error(layer.pos, message)
        return None
    shape: list[int | None] = []
    for dim in extern.output:
        if dim == "time":
            shape.append(current.shape[0])
        elif dim == "*":
            shape.append(None)
        elif dim == "features":
            shape.append(current.shape[-1])
        elif isinstance(dim, str):
            shape.append(layer.attrs[dim])
            if layer.attrs[dim] <= 0:
                report.error(
                    layer.where(dim),
                    f"`{dim}` of `{layer.name}` sets its output width, so it must be a positive integer, "
                    f"got `{layer.attrs[dim]}`",
                )
                return None
        else:
            shape.append(dim)
    if extern.mask == "keep" and extern.output[0] != "time":
        report.error(
            extern.field_pos["output"],
            f"`{extern.name}` keeps the mask (`mask = keep`), so its output keeps the time axis: "
            "write `output = [time, ...]`",
        )
        return None
    if extern.mask == "produce" and len(extern.output) != 2:
        report.error(
            extern.field_pos["output"],
            f"`{extern.name}` produces a mask over time (`mask = produce`), so its output is a sequence: "
            "write `output = [time, ...]` or `[*, ...]`",
        )
        return None
    masked = {"consume": False, "keep": current.masked, "produce": True}[extern.mask]
    return [TensorValue(layer.name, "float32", tuple(shape), masked)]


def _needs_sequence(layer: Layer, current: TensorValue, previous: Layer | None) -> str:
    what = "a recurrent layer" if layer.recurrent is not None else f"`{layer.kind}`"
    if (
        previous is not None
        and previous.recurrent is not None
        and not previous.recurrent.attrs["return_sequences"]
    ):
        fix = (
            f"`{previous.name}` returns only its last output ({_describe(current)}); "
            f"set `return_sequences=true` on `{previous.name}`"
        )
        return f"{what} needs a sequence [timesteps, features], but {fix} so that `{layer.name}` gets one"
    source = f"`{previous.name}`" if previous is not None else f"input `{current.name}`"
    return (
        f"{what} needs a sequence [timesteps, features]; `{layer.name}` receives {_describe(current)} "
        f"from {source}"
    )


def _infer_recurrent(
    model: Model, layer: Layer, current: TensorValue, report: Reporter
) -> list[TensorValue] | None:
    rec = layer.recurrent
    assert rec is not None
    ok = True
    if rec.attrs["stateful"] and model.batch_size is None:
        report.error(
            rec.where("stateful"),
            f"`stateful=true` on `{layer.name}` needs a fixed batch size: write `model {model.name}(batch_size=N) {{`",
        )
        ok = False
    if rec.attrs["unroll"] and current.shape[0] is None:
        report.error(
            rec.where("unroll"),
            f"`unroll=true` on `{layer.name}` needs a fixed number of timesteps, but the time axis is `*`; "
            "give the input a fixed length such as `float32[20, 8]`",
        )
        ok = False
    if layer.inner is not None and rec.attrs["go_backwards"]:
        report.error(
            rec.where("go_backwards"),
            "`go_backwards=true` inside `bidirectional` is not supported: the wrapper already runs one "
            "half backwards; drop the argument",
        )
        ok = False
    if layer.inner is not None and rec.attrs["unroll"] and current.masked and rec.attrs["return_sequences"]:
        report.error(
            rec.where("unroll"),
            f"`unroll=true` inside `bidirectional` on a masked sequence is refused: Keras 3's unrolled "
            f"loop zeroes the backward half at the wrong timesteps (it applies the unflipped mask); "
            f"drop `unroll` on `{layer.name}`",
        )
        ok = False
    if layer.inner is not None and rec.attrs["stateful"] and rec.attrs["return_state"]:
        report.error(
            rec.where("return_state"),
            f"`return_state=true` with `stateful=true` inside `bidirectional` is refused: Keras 3's "
            f"Bidirectional.compute_mask fails on that combination; drop one of them on `{layer.name}`",
        )
        ok = False
    if not ok:
        return None
    units = rec.attrs["units"]
    seq = rec.attrs["return_sequences"]
    time = current.shape[:1] if seq else ()
    state_names = ["h", "c"] if rec.kind == "lstm" else ["h"]
    masked = current.masked and seq
    if layer.inner is None:
        outputs = [TensorValue(layer.name, "float32", time + (units,), masked)]
        prefixes = [""]
    else:
        mode = layer.attrs["merge_mode"]
        if mode == "none":
            outputs = [
                TensorValue(f"{layer.name}.forward", "float32", time + (units,), masked),
                TensorValue(f"{layer.name}.backward", "float32", time + (units,), masked),
            ]
        else:
            width = 2 * units if mode == "concat" else units
            outputs = [TensorValue(layer.name, "float32", time + (width,), masked)]
        prefixes = ["forward_", "backward_"]
    if rec.attrs["return_state"]:
        for prefix in prefixes:
            for state in state_names:
                outputs.append(TensorValue(f"{layer.name}.{prefix}{state}", "float32", (units,)))
    return outputs


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
