"""AST -> IR: one parsed model becomes IR layers with typed, defaulted attributes.

Every argument is checked here against its kind's schema (rnnspec/kinds/), in one place; the
graph rules (shapes, masks) are check.py's passes.
"""

from __future__ import annotations

import math
from typing import Any

from rnnspec.errors import Pos, Reporter, did_you_mean
from rnnspec.ir import (
    ACTIVATIONS,
    DTYPES,
    EXTERN_ARG_TYPES,
    EXTERN_FIELDS,
    FLOAT32_MAX,
    FLOAT32_OVERFLOW,
    KERAS_LAYER_KWARGS,
    MASK_MODES,
    MAX_SIZE,
    MERGE_MODES,
    MODEL_OPTIONS,
    RECURRENT_KINDS,
    Attr,
    ClassPath,
    ExternLayer,
    Layer,
    LayerSchema,
    Model,
    TensorValue,
    WeightEntry,
    bad_identifier,
    bad_path_part,
    snake_case,
)
from rnnspec.kinds import KINDS, LAYER_SCHEMAS
from rnnspec.parse import (
    Arg,
    Bool,
    Call,
    ClassRef,
    Dotted,
    ExternArg,
    FieldList,
    Ident,
    InputDecl,
    ListValue,
    ModelAST,
    Number,
    Star,
    Wrapped,
    field_text,
    value_text,
)


def build_model(
    ast: ModelAST, report: Reporter, externs: dict[str, ExternLayer | None] | None = None
) -> Model | None:
    """Turn one parsed model into IR layers with typed, defaulted attributes (no graph rules yet)."""
    options = _bind_args(ast.options, (), MODEL_OPTIONS, "model", ast.name_pos, report)
    inputs: list[TensorValue] = []
    layers: list[Layer] = []
    counts: dict[str, int] = {}
    for index, stmt in enumerate(ast.statements):
        if isinstance(stmt, InputDecl):
            if index != 0 or inputs:
                report.error(
                    stmt.pos, "`input` must be the first statement of a model, and v0 allows exactly one"
                )
                continue
            value = _input_value(stmt, report)
            if value is not None:
                inputs.append(value)
            continue
        layer = _layer(stmt.call, report, externs or {})
        if layer is None:
            continue
        name_layer(layer, stmt.alias, counts)
        layers.append(layer)
    if options is None:
        return None
    return Model(ast.name, ast.name_pos, options["batch_size"], inputs, layers)


def input_dims(stmt: Any, report: Reporter) -> list[int | None] | None:
    """An input's dimensions, `*` as None; each bad one reported, and then None."""
    shape: list[int | None] = []
    bad = False
    for dim in stmt.dims:
        if isinstance(dim, Number) and not (dim.is_int and 0 < dim.value <= MAX_SIZE):
            report.error(
                dim.pos,
                f"a dimension must be a positive integer (at most {MAX_SIZE:,}) or `*`, got `{dim.text}`",
            )
            bad = True
        shape.append(dim.value if isinstance(dim, Number) else None)
    return None if bad else shape


def _input_value(stmt: Any, report: Reporter) -> TensorValue | None:
    ok = True
    if stmt.dtype.name not in DTYPES:
        report.error(
            stmt.dtype.pos,
            f"unknown input type `{stmt.dtype.name}`: use int32, int64 or float32{did_you_mean(stmt.dtype.name, DTYPES)}",
        )
        ok = False
    shape = input_dims(stmt, report)
    if not ok or shape is None:
        return None
    dims = "[" + ", ".join("*" if d is None else str(d) for d in shape) + "]"
    if stmt.dtype.name.startswith("int"):
        if len(shape) != 1:
            report.error(
                stmt.dtype.pos,
                f"an {stmt.dtype.name} input holds token ids and takes one dimension, the time axis "
                f"(`{stmt.dtype.name}[*]` or `{stmt.dtype.name}[20]`), got {dims}",
            )
            return None
    else:
        if len(shape) not in (1, 2):
            report.error(
                stmt.dtype.pos,
                f"a float32 input takes [features] or [timesteps, features], got {dims}",
            )
            return None
        if shape[-1] is None:
            report.error(stmt.dims[-1].pos, "the feature dimension must be a fixed size, not `*`")
            return None
    return TensorValue(stmt.name, stmt.dtype.name, tuple(shape), pos=stmt.name_pos)


def name_layer(layer: Layer, alias: Ident | None, counts: dict[str, int]) -> None:
    """Name a new layer: its `as NAME`, or Keras's `kind_N` (the Nth layer of its kind)."""
    counts[layer.kind] = counts.get(layer.kind, 0) + 1
    if alias is not None:
        layer.name = alias.name
        layer.attr_pos["name"] = alias.pos
    else:
        base = snake_case(layer.kind) if layer.extern is not None else layer.kind
        layer.name = f"{base}_{counts[layer.kind]}"


def _layer(
    call: Call, report: Reporter, externs: dict[str, ExternLayer | None] | None = None
) -> Layer | None:
    externs = externs or {}
    if call.kind in externs and externs[call.kind] is None:
        return None  # its extern block has errors, reported there
    extern = externs.get(call.kind)
    schema = extern.schema if extern is not None else LAYER_SCHEMAS.get(call.kind)
    if schema is None:
        known = list(LAYER_SCHEMAS) + list(externs)
        keras_names = {kind.keras_class_name: name for name, kind in KINDS.items() if kind.keras_class}
        if call.kind in keras_names:  # `GlobalAveragePooling1D(...)`, as a Keras program writes it
            hint = f" (Keras's `{call.kind}` is `{keras_names[call.kind]}` here)"
        else:
            hint = did_you_mean(call.kind, known)
        report.error(call.pos, f"unknown layer kind `{call.kind}`{hint}")
        return None
    attr_pos: dict[str, Pos] = {}
    attrs = _bind_args(call.args, schema.positional, schema.attrs, call.kind, call.pos, report, attr_pos)
    if attrs is None:
        return None
    layer = Layer(name="", kind=call.kind, attrs=attrs, pos=call.pos, attr_pos=attr_pos, extern=extern)
    if call.kind == "bidirectional":
        inner = attrs.pop("layer")
        layer.inner = inner
    return layer


def _bind_args(
    args: tuple[Arg, ...],
    positional: tuple[str, ...],
    schema: dict[str, Attr],
    owner: str,
    owner_pos: Pos,
    report: Reporter,
    attr_pos: dict[str, Pos] | None = None,
) -> dict[str, Any] | None:
    """Bind positional and keyword arguments to a schema, validating every value; None on error."""
    before = len(report.diagnostics)
    bound: dict[str, Any] = {}
    where: dict[str, Pos] = {} if attr_pos is None else attr_pos
    given: set[str] = set()
    seen_keyword = False
    # `reshape(3, 8)`: a last positional of type `dims` takes every remaining positional argument.
    variadic = positional[-1] if positional and schema[positional[-1]].type == "dims" else None
    if variadic is not None:
        rest = [arg for arg in args[len(positional) - 1 :] if arg.name is None]
        if rest and all(arg.name is None for arg in args[: len(positional) - 1 + len(rest)]):
            value = _dims(rest, variadic, owner, report)
            where[variadic] = rest[0].value.pos
            given.add(variadic)
            if value is not _INVALID:
                bound[variadic] = value
            args = args[: len(positional) - 1] + args[len(positional) - 1 + len(rest) :]
    for index, arg in enumerate(args):
        if arg.name is None:
            if seen_keyword:
                report.error(arg.pos, f"positional argument after a keyword argument in `{owner}`")
                continue
            if index >= len(positional) or positional[index] in given:
                expected = (
                    f"takes at most {len(positional)} positional argument{'s' if len(positional) != 1 else ''}"
                    if positional
                    else "takes no positional arguments"
                )
                report.error(arg.pos, f"`{owner}` {expected}")
                continue
            name = positional[index]
        else:
            seen_keyword = True
            name = arg.name
            if name not in schema:
                report.error(arg.pos, f"`{owner}` has no argument `{name}`{did_you_mean(name, list(schema))}")
                continue
        if name in given:
            report.error(arg.pos, f"argument `{name}` of `{owner}` is given twice")
            continue
        given.add(name)
        value = _convert(arg, name, schema[name], owner, report)
        where[name] = arg.value.pos if arg.name is None else arg.pos
        if value is not _INVALID:
            bound[name] = value
    for name, attr in schema.items():
        if name not in given:
            if attr.required:
                report.error(owner_pos, f"`{owner}` needs the argument `{name}`")
            else:
                bound[name] = attr.default
    if len(report.diagnostics) > before:
        return None
    return bound


_INVALID = object()


def _dims(args: list[Arg], name: str, owner: str, report: Reporter) -> Any:
    """Sizes given one per positional argument: positive integers, and at most one -1."""
    dims = []
    for arg in args:
        value = arg.value
        if isinstance(value, Number) and value.is_int and (0 < value.value <= MAX_SIZE or value.value == -1):
            dims.append(value.value)
        else:
            report.error(
                value.pos,
                f"the sizes of `{owner}` are positive integers (one may be -1), got `{_show(value)}`",
            )
            return _INVALID
    if dims.count(-1) > 1:
        report.error(
            args[0].value.pos, f"`{owner}` takes at most one -1 among its sizes, got {dims.count(-1)}"
        )
        return _INVALID
    return tuple(dims)


def _convert(arg: Arg, name: str, attr: Attr, owner: str, report: Reporter) -> Any:
    value = arg.value
    shown = _show(value)
    note = _rounding_note(value)
    where = value.pos
    if attr.type == "recurrent_layer":
        if isinstance(value, Call) and value.kind in RECURRENT_KINDS:
            inner = _layer(value, report)
            return inner if inner is not None else _INVALID
        kind = value.kind if isinstance(value, Call) else shown
        report.error(
            where,
            f"`bidirectional` wraps one recurrent layer (simple_rnn, lstm or gru), got `{kind}`"
            + (did_you_mean(kind, RECURRENT_KINDS) if isinstance(value, Ident) else ""),
        )
        return _INVALID
    if attr.type == "dense_layer":
        if isinstance(value, Call) and value.kind == "dense":
            inner = _layer(value, report)
            return dict(inner.attrs) if inner is not None else _INVALID
        kind = value.kind if isinstance(value, Call) else shown
        report.error(where, f"`{owner}` wraps one `dense(...)` layer, got `{kind}`")
        return _INVALID
    if attr.type == "dims":
        return _dims([arg], name, owner, report)
    if isinstance(value, Call):
        report.error(where, f"`{name}` of `{owner}` takes a value, not a layer `{value.kind}(...)`")
        return _INVALID
    if attr.type == "pos_int":
        if isinstance(value, Number) and value.is_int and 0 < value.value <= MAX_SIZE:
            return value.value
        if isinstance(value, Number) and value.is_int and value.value > MAX_SIZE:
            report.error(where, f"`{name}` of `{owner}` is too large: at most {MAX_SIZE:,}, got `{shown}`")
            return _INVALID
        report.error(where, f"`{name}` of `{owner}` must be a positive integer, got `{shown}`{note}")
    elif attr.type == "size_2d":
        if isinstance(value, Number) and value.is_int and 0 < value.value <= MAX_SIZE:
            return value.value
        if isinstance(value, ListValue) and len(value.items) == 2:
            sizes = [
                item.value
                for item in value.items
                if isinstance(item, Number) and item.is_int and 0 < item.value <= MAX_SIZE
            ]
            if len(sizes) == 2:
                return (sizes[0], sizes[1])
        report.error(
            where,
            f"`{name}` of `{owner}` must be a positive integer or a list of two, got `{shown}`{note}",
        )
    elif attr.type == "bool":
        if isinstance(value, Bool):
            return value.value
        report.error(where, f"`{name}` of `{owner}` must be `true` or `false`, got `{shown}`")
    elif attr.type == "rate":
        if isinstance(value, Number) and 0 <= value.value < 1:
            return float(value.value)
        report.error(where, f"`{name}` of `{owner}` must be a rate in [0, 1), got `{shown}`{note}")
    elif attr.type == "float":
        if isinstance(value, Number) and _finite_float32(float(value.text)):
            return float(value.value)
        if isinstance(value, Number):
            report.error(
                where,
                f"`{name}` of `{owner}` must be a number that float32 can hold (at most {FLOAT32_MAX:.8g} "
                f"in magnitude), got `{shown}`{note or ', which overflows float32 to infinity'}",
            )
        else:
            report.error(where, f"`{name}` of `{owner}` must be a number, got `{shown}`")
    elif attr.type == "int":
        if isinstance(value, Number) and value.is_int and abs(value.value) < 2**63:
            return value.value
        report.error(where, f"`{name}` of `{owner}` must be an integer, got `{shown}`")
    elif attr.type == "float32":
        if isinstance(value, Number) and _finite_float32(float(value.value)):
            return float(value.value)
        what = "a number finite in float32" if isinstance(value, Number) else "a number"
        report.error(where, f"`{name}` of `{owner}` must be {what}, got `{shown}`")
    elif attr.type == "choice":
        if isinstance(value, Ident) and value.name in attr.choices:
            return value.name
        report.error(
            where,
            f"`{name}` of `{owner}` must be one of {', '.join(attr.choices)}; got `{shown}`"
            + (did_you_mean(value.name, attr.choices) if isinstance(value, Ident) else ""),
        )
    elif attr.type in ("activation", "merge_mode"):
        choices = ACTIVATIONS if attr.type == "activation" else MERGE_MODES
        if isinstance(value, Ident) and value.name in choices:
            return value.name
        if isinstance(value, Ident):
            report.error(
                where,
                f"unknown {attr.type.replace('_', ' ')} `{shown}` for `{name}` of `{owner}`"
                f"{did_you_mean(value.name, choices)}",
            )
        else:
            report.error(where, f"`{name}` of `{owner}` must be one of {', '.join(choices)}; got `{shown}`")
    else:  # pragma: no cover - a schema typo, not a user mistake
        raise AssertionError(attr.type)
    return _INVALID


def _rounding_note(value: Any) -> str:
    """`, which is 1.0 as a float` where the number written is not the number a program gets."""
    if not isinstance(value, Number) or value.is_int:
        return ""
    from decimal import Decimal  # only for messages: decimal costs a cold start ~1 ms to import

    number = float(value.text)
    if not math.isfinite(number):
        return ", which is infinite as a float"
    if Decimal(repr(number)) != Decimal(value.text):
        return f", which is {number!r} as a float"
    return ""


def _finite_float32(value: float) -> bool:
    return math.isfinite(value) and abs(value) < FLOAT32_OVERFLOW


def _show(value: Any) -> str:
    return f"{value.kind}(...)" if isinstance(value, Call) else value_text(value)


def build_externs(asts: list[Any], report: Reporter) -> dict[str, ExternLayer | None]:
    """Check every `extern layer` block of a file; by name, the valid ones, and None for the others."""
    externs: dict[str, ExternLayer | None] = {}
    seen: dict[str, Pos] = {}
    for ast in asts:
        before = len(report.diagnostics)
        if ast.name in seen:
            report.error(
                ast.name_pos,
                f"extern layer `{ast.name}` is declared twice (first at line {seen[ast.name].line})",
            )
        seen.setdefault(ast.name, ast.name_pos)
        why = bad_path_part(ast.name)
        if why:
            report.error(ast.name_pos, f"extern layer name `{ast.name}` {why}; choose another name")
        elif not ast.name[0].isupper():
            report.error(
                ast.name_pos,
                f"extern layer name `{ast.name}` must start with an uppercase letter: it names a class "
                "in the generated programs, and lowercase names are the built-in layers'",
            )
        elif ast.name in LAYER_SCHEMAS:
            report.error(ast.name_pos, f"`{ast.name}` is a built-in layer kind; choose another name")
        fields: dict[str, Any] = {}
        field_pos: dict[str, Pos] = {}
        attrs: dict[str, Attr] = {}
        for item in ast.items:
            if isinstance(item, ExternArg):
                if item.name in attrs:
                    report.error(item.pos, f"argument `{item.name}` of `{ast.name}` is declared twice")
                    continue
                attr = _extern_arg(ast.name, item, report)
                if attr is not None:
                    attrs[item.name] = attr
                continue
            if item.name not in EXTERN_FIELDS:
                report.error(
                    item.pos,
                    f"`extern layer` has no field `{item.name}`{did_you_mean(item.name, EXTERN_FIELDS)}; "
                    f"it takes {', '.join(EXTERN_FIELDS)}, and arguments as `name: type = default`",
                )
                continue
            if item.name in fields:
                report.error(item.pos, f"field `{item.name}` of `{ast.name}` is given twice")
                continue
            fields[item.name] = item.value
            field_pos[item.name] = item.pos
        for required in ("keras", "pytorch", "mask", "output"):
            if required not in fields:
                report.error(ast.end_pos, f"extern layer `{ast.name}` needs the field `{required}`")
        paths: dict[str, ClassPath] = {}
        for framework in ("keras", "pytorch"):
            value = fields.get(framework)
            if value is None:
                continue
            if not isinstance(value, ClassRef):
                report.error(
                    value.pos,
                    f"`{framework}` of `{ast.name}` must be `package.module:Class`, got `{field_text(value)}`",
                )
                continue
            path = _class_path(value, framework, ast.name, report)
            if path is not None:
                paths[framework] = path
        mask = fields.get("mask")
        if mask is not None and not (isinstance(mask, Dotted) and mask.text in MASK_MODES):
            shown = field_text(mask)
            report.error(
                mask.pos,
                f"`mask` of `{ast.name}` must be consume, keep or produce, got `{shown}`"
                + did_you_mean(shown, MASK_MODES),
            )
        output = _extern_output(ast.name, fields.get("output"), attrs, report)
        weights = _extern_weights(ast.name, fields.get("weights"), report)
        input_size = fields.get("pytorch_input_size")
        if input_size is not None and not (
            isinstance(input_size, Dotted) and input_size.text in ("true", "false")
        ):
            report.error(
                input_size.pos,
                f"`pytorch_input_size` of `{ast.name}` must be `true` or `false`, got `{field_text(input_size)}`",
            )
        if len(report.diagnostics) > before:
            externs.setdefault(ast.name, None)  # reported; a model using it needs no second message
            continue
        assert isinstance(mask, Dotted) and output is not None
        externs[ast.name] = ExternLayer(
            name=ast.name,
            pos=ast.name_pos,
            keras=paths["keras"],
            pytorch=paths["pytorch"],
            mask=mask.text,
            output=output,
            schema=LayerSchema(tuple(attrs), attrs),
            weights=weights,
            pytorch_input_size=isinstance(input_size, Dotted) and input_size.text == "true",
            field_pos=field_pos,
        )
    return externs


def _class_path(value: Any, framework: str, owner: str, report: Reporter) -> ClassPath | None:
    for part, pos in [(p, value.module.pos) for p in value.module.parts] + [
        (value.name.name, value.name.pos)
    ]:
        why = bad_path_part(part)
        if why:
            report.error(
                pos,
                f"`{framework}` of `{owner}`: `{part}` in `{field_text(value)}` {why}; it cannot be imported",
            )
            return None
    if not value.name.name[0].isupper():
        report.error(
            value.name.pos,
            f"`{framework}` of `{owner}`: the class `{value.name.name}` must start with an uppercase letter, "
            "so that it cannot clash with a local name of the generated programs",
        )
        return None
    return ClassPath(value.module.text, value.name.name)


def _extern_arg(owner: str, item: Any, report: Reporter) -> Attr | None:
    why = bad_identifier(item.name)
    if why:
        report.error(item.pos, f"argument name `{item.name}` of `{owner}` {why}; choose another name")
        return None
    if item.name in ("time", "features"):
        report.error(
            item.pos,
            f"argument name `{item.name}` of `{owner}` is a word of `output` (the input's "
            f"{'time axis' if item.name == 'time' else 'feature width'}); choose another name",
        )
        return None
    if item.name in KERAS_LAYER_KWARGS:
        report.error(
            item.pos,
            f"argument name `{item.name}` of `{owner}` is taken by keras.layers.Layer (or by rnnspec); "
            "choose another name",
        )
        return None
    type_ = item.type
    if isinstance(type_, Ident) and type_.name in EXTERN_ARG_TYPES:
        attr = Attr({"float": "float32"}.get(type_.name, type_.name))
    elif isinstance(type_, Call) and type_.kind == "one_of":
        choices = []
        for arg in type_.args:
            if arg.name is not None or not isinstance(arg.value, Ident) or bad_identifier(arg.value.name):
                report.error(
                    arg.pos, f"`one_of` takes names, such as `one_of(max, mean)`; got `{_show(arg.value)}`"
                )
                return None
            choices.append(arg.value.name)
        if not choices:
            report.error(type_.pos, "`one_of` needs at least one name, such as `one_of(max, mean)`")
            return None
        attr = Attr("choice", choices=tuple(choices))
    else:
        shown = _show(type_)
        report.error(
            type_.pos,
            f"unknown argument type `{shown}` for `{item.name}` of `{owner}`: use int, float, bool or "
            f"one_of(NAME, ...){did_you_mean(shown, EXTERN_ARG_TYPES)}",
        )
        return None
    if item.default is None:
        return attr
    default = _convert(Arg(item.name, item.default, item.default.pos), item.name, attr, owner, report)
    if default is _INVALID:
        return None
    return Attr(attr.type, default, attr.choices)


def _extern_output(
    owner: str, value: Any, attrs: dict[str, Attr], report: Reporter
) -> tuple[int | str, ...] | None:
    if value is None:
        return None
    example = "such as `[time, features]` or `[features]`"
    if not isinstance(value, FieldList) or len(value.items) not in (1, 2):
        report.error(value.pos, f"`output` of `{owner}` is the per-sample shape, one or two dims {example}")
        return None
    dims: list[int | str] = []
    for index, item in enumerate(value.items):
        last = index == len(value.items) - 1
        if isinstance(item, Star) and not last:
            dims.append("*")
        elif isinstance(item, Number) and item.is_int and item.value > 0:
            dims.append(item.value)
        elif isinstance(item, Dotted) and len(item.parts) == 1 and item.text == "time" and not last:
            dims.append("time")
        elif isinstance(item, Dotted) and len(item.parts) == 1 and item.text == "features":
            dims.append("features")
        elif (
            isinstance(item, Dotted) and len(item.parts) == 1 and attrs.get(item.text, Attr("")).type == "int"
        ):
            dims.append(item.text)
        else:
            allowed = (
                "`time`, `*` or a positive integer"
                if not last
                else "`features`, a positive integer, or the name of an int argument"
            )
            report.error(
                item.pos,
                f"`output` of `{owner}`: {'the time' if not last else 'the feature'} dimension must be "
                f"{allowed}, got `{field_text(item)}`",
            )
            return None
    return tuple(dims)


def _extern_weights(owner: str, value: Any, report: Reporter) -> tuple[WeightEntry, ...] | None:
    if value is None:
        return None
    if not isinstance(value, FieldList):
        report.error(
            value.pos,
            f"`weights` of `{owner}` is a list, one torch parameter per Keras weight in get_weights() order, "
            "such as `[transpose(proj.weight), proj.bias]`",
        )
        return None
    entries: list[WeightEntry] = []
    for item in value.items:
        if isinstance(item, Wrapped) and item.func.name == "transpose":
            target, transpose = item.target, True
        elif isinstance(item, Dotted):
            target, transpose = item, False
        else:
            report.error(
                item.pos,
                f"`weights` of `{owner}` lists parameter names such as `proj.bias`, or `transpose(proj.weight)`; "
                f"got `{field_text(item)}`",
            )
            return None
        for part in target.parts:
            why = bad_path_part(part)
            if why:
                report.error(target.pos, f"parameter `{target.text}` of `{owner}`: `{part}` {why}")
                return None
        entries.append(WeightEntry(target.text, transpose))
    keys = [entry.key for entry in entries]
    for key in keys:
        if keys.count(key) > 1:
            report.error(value.pos, f"`weights` of `{owner}` names the parameter `{key}` twice")
            return None
    return tuple(entries)
