"""The IR: a graph of named tensor values and the layers between them.

Every layer kind declares its arguments once, in LAYER_SCHEMAS (type, default, allowed values);
`build_model` checks a parsed model against those schemas in one place, and check.py then runs
the passes over the graph (shapes, masks, the language's rules).
"""

from __future__ import annotations

import keyword
import math
import re
from dataclasses import dataclass, field
from typing import Any

from rnnspec.errors import Diagnostic, Pos, Reporter, did_you_mean
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
    ModelAST,
    Number,
    Star,
    Wrapped,
    field_text,
    value_text,
)

ACTIVATIONS = (
    "linear",
    "tanh",
    "sigmoid",
    "hard_sigmoid",
    "relu",
    "elu",
    "selu",
    "gelu",
    "softplus",
    "softsign",
    "swish",
    "softmax",
    "exponential",
)
MERGE_MODES = ("concat", "sum", "mul", "ave", "none")
RECURRENT_KINDS = ("simple_rnn", "lstm", "gru")
DTYPES = ("int32", "int64", "float32")

REQUIRED = object()
# The largest finite float32, and the magnitude from which a number rounds to infinity in float32
# (half a unit in the last place above it: 3.4028235e38, as float32's maximum is usually printed,
# still rounds to the maximum).
FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_OVERFLOW = FLOAT32_MAX + 2.0**103
# Sizes index tensors in both frameworks (int32 in places); nothing larger can be built.
MAX_SIZE = 2**31 - 1


@dataclass(frozen=True)
class Attr:
    """One argument of a layer kind: its type, its Keras default, its allowed values."""

    type: str  # pos_int | bool | rate | float | activation | merge_mode | recurrent_layer | int | float32 | choice
    default: Any = REQUIRED
    choices: tuple[str, ...] = ()  # for `choice`

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class LayerSchema:
    positional: tuple[str, ...]
    attrs: dict[str, Attr]


_RECURRENT = {
    "units": Attr("pos_int"),
    "activation": Attr("activation", "tanh"),
    "use_bias": Attr("bool", True),
    "dropout": Attr("rate", 0.0),
    "recurrent_dropout": Attr("rate", 0.0),
    "return_sequences": Attr("bool", False),
    "return_state": Attr("bool", False),
    "go_backwards": Attr("bool", False),
    "stateful": Attr("bool", False),
    "unroll": Attr("bool", False),
}

LAYER_SCHEMAS: dict[str, LayerSchema] = {
    "embedding": LayerSchema(
        ("input_dim", "output_dim"),
        {"input_dim": Attr("pos_int"), "output_dim": Attr("pos_int"), "mask_zero": Attr("bool", False)},
    ),
    "masking": LayerSchema((), {"mask_value": Attr("float", 0.0)}),
    "simple_rnn": LayerSchema(("units",), dict(_RECURRENT)),
    "lstm": LayerSchema(
        ("units",),
        {
            **_RECURRENT,
            "recurrent_activation": Attr("activation", "sigmoid"),
            "unit_forget_bias": Attr("bool", True),
        },
    ),
    "gru": LayerSchema(
        ("units",),
        {
            **_RECURRENT,
            "recurrent_activation": Attr("activation", "sigmoid"),
            "reset_after": Attr("bool", True),
        },
    ),
    "bidirectional": LayerSchema(
        ("layer",), {"layer": Attr("recurrent_layer"), "merge_mode": Attr("merge_mode", "concat")}
    ),
    "dense": LayerSchema(
        ("units",),
        {
            "units": Attr("pos_int"),
            "activation": Attr("activation", "linear"),
            "use_bias": Attr("bool", True),
        },
    ),
    "dropout": LayerSchema(("rate",), {"rate": Attr("rate")}),
    "global_average_pooling": LayerSchema((), {}),
    "attention_pooling": LayerSchema((), {}),
    # Merges (v1): applied to two or more values, `concatenate(axis=-1)(a, b)`.
    "concatenate": LayerSchema((), {"axis": Attr("int", -1)}),
    **{
        kind: LayerSchema((), {}) for kind in ("add", "subtract", "multiply", "average", "maximum", "minimum")
    },
}
MERGE_KINDS = ("concatenate", "add", "subtract", "multiply", "average", "maximum", "minimum")

MODEL_OPTIONS = {"batch_size": Attr("pos_int", None)}


@dataclass
class TensorValue:
    """A named tensor in the graph; `shape` is per sample (batch excluded), None for a varying length."""

    name: str
    dtype: str
    shape: tuple[int | None, ...]
    masked: bool = False
    pos: Pos | None = None  # where a model input is declared

    @property
    def is_sequence(self) -> bool:
        return len(self.shape) == 2


@dataclass
class Layer:
    name: str
    kind: str
    attrs: dict[str, Any]
    pos: Pos
    attr_pos: dict[str, Pos] = field(default_factory=dict)
    inner: Layer | None = None  # the recurrent layer a `bidirectional` wraps
    extern: ExternLayer | None = None  # the user's layer this one instantiates
    inputs: list[str] = field(default_factory=list)  # of its first application
    outputs: list[str] = field(default_factory=list)
    calls: int = 0  # how many statements apply it (v1: `embed(y)` applies `embed` again)

    @property
    def recurrent(self) -> Layer | None:
        """The recurrent layer doing the work: this one, or the one a bidirectional wraps."""
        if self.kind in RECURRENT_KINDS:
            return self
        return self.inner

    def where(self, attr: str) -> Pos:
        return self.attr_pos.get(attr, self.pos)


@dataclass
class Node:
    """One application of a layer (v1): the values it takes and the values it returns, by key.

    `outputs` follow Keras's order (output, *states); `written` are the names the statement
    gives them (`_` drops one; empty when it names none). A layer applied again is the same
    `Layer` object with `call_index` 1, 2, ...
    """

    layer: Layer
    inputs: list[str]
    pos: Pos
    input_pos: list[Pos] = field(default_factory=list)
    mask: str | None = None  # an explicit mask input, `mask=m`
    mask_pos: Pos | None = None
    initial_state: list[str] = field(default_factory=list)
    initial_state_pos: list[Pos] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    call_index: int = 0
    written: list[str] = field(default_factory=list)
    target_pos: list[Pos] = field(default_factory=list)


@dataclass
class Model:
    name: str
    pos: Pos
    batch_size: int | None
    inputs: list[TensorValue]
    layers: list[Layer]
    values: dict[str, TensorValue] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    # v1 graphs: the layer applications in statement order (a v0 stack has none), and what
    # `check` reports without refusing the spec (an unused value, a mask Keras ignores).
    is_graph: bool = False
    nodes: list[Node] = field(default_factory=list)
    output_pos: Pos | None = None
    warnings: list[Diagnostic] = field(default_factory=list)

    @property
    def stateful(self) -> bool:
        return any(layer.recurrent and layer.recurrent.attrs["stateful"] for layer in self.layers)

    @property
    def masked(self) -> bool:
        return any(value.masked for value in self.values.values())


def snake_case(name: str) -> str:
    """`TemporalMaxPool` -> `temporal_max_pool`: how Keras names a layer class's instances."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def bad_identifier(name: str) -> str | None:
    """Why a spec name cannot become a Python identifier in generated code, or None."""
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return "is a Python keyword"
    if name.startswith("__"):
        return "starts with `__`, which Python reserves"
    return None


def build_model(
    ast: ModelAST, report: Reporter, externs: dict[str, ExternLayer | None] | None = None
) -> Model | None:
    """Turn one parsed model into IR layers with typed, defaulted attributes (no graph rules yet)."""
    options = _bind_args(ast.options, (), MODEL_OPTIONS, "model", ast.name_pos, report)
    from rnnspec.graph import build_graph, is_graph

    if is_graph(ast):
        model = Model(ast.name, ast.name_pos, options["batch_size"] if options else None, [], [])
        build_graph(ast, report, externs or {}, model)
        return model if options is not None else None
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
        counts[layer.kind] = counts.get(layer.kind, 0) + 1
        if stmt.alias is not None:
            layer.name = stmt.alias.name
            layer.attr_pos["name"] = stmt.alias.pos
        else:
            base = snake_case(layer.kind) if layer.extern is not None else layer.kind
            layer.name = f"{base}_{counts[layer.kind]}"
        layers.append(layer)
    if options is None:
        return None
    return Model(ast.name, ast.name_pos, options["batch_size"], inputs, layers)


def _input_value(stmt: Any, report: Reporter) -> TensorValue | None:
    ok = True
    if stmt.dtype.name not in DTYPES:
        report.error(
            stmt.dtype.pos,
            f"unknown input type `{stmt.dtype.name}`: use int32, int64 or float32{did_you_mean(stmt.dtype.name, DTYPES)}",
        )
        ok = False
    shape: list[int | None] = []
    for dim in stmt.dims:
        if isinstance(dim, Number):
            if not dim.is_int or not 0 < dim.value <= MAX_SIZE:
                report.error(
                    dim.pos,
                    f"a dimension must be a positive integer (at most {MAX_SIZE:,}) or `*`, got `{dim.text}`",
                )
                ok = False
            shape.append(dim.value if dim.is_int else None)
        else:
            shape.append(None)
    if not ok:
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
        report.error(call.pos, f"unknown layer kind `{call.kind}`{did_you_mean(call.kind, known)}")
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
    for index, arg in enumerate(args):
        if arg.name is None:
            if seen_keyword:
                report.error(arg.pos, f"positional argument after a keyword argument in `{owner}`")
                continue
            if index >= len(positional):
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


# --- extern layers: a user's own layer classes, one per framework -----------------------------

MASK_MODES = ("consume", "keep", "produce")
EXTERN_ARG_TYPES = ("int", "float", "bool")
EXTERN_FIELDS = ("keras", "pytorch", "mask", "output", "weights", "pytorch_input_size")
# Keyword arguments that keras.layers.Layer's constructor takes itself (or that the generated
# code passes): a user argument of that name would collide with them.
KERAS_LAYER_KWARGS = frozenset(
    "name dtype trainable autocast input_shape batch_input_shape batch_size input_dim weights "
    "activity_regularizer input_size".split()
)


@dataclass(frozen=True)
class ClassPath:
    """Where a user's class lives: `from {module} import {name}`; every part a checked identifier."""

    module: str
    name: str

    @property
    def text(self) -> str:
        return f"{self.module}:{self.name}"


@dataclass(frozen=True)
class WeightEntry:
    """The torch parameter (relative to the layer's module) that one Keras array becomes."""

    key: str
    transpose: bool = False


@dataclass
class ExternLayer:
    """A layer kind the user declares with `extern layer NAME { ... }` and writes once per framework."""

    name: str
    pos: Pos
    keras: ClassPath
    pytorch: ClassPath
    mask: str  # consume | keep | produce
    output: tuple[int | str, ...]  # per sample: ints, `*`, `time`, `features` or an int argument's name
    schema: LayerSchema
    weights: tuple[WeightEntry, ...] | None = None  # None: the torch class's keras_to_torch hook
    pytorch_input_size: bool = False
    field_pos: dict[str, Pos] = field(default_factory=dict)


def _bad_path_part(part: str) -> str | None:
    why = bad_identifier(part)
    if why is None and part.endswith("__"):
        return "ends with `__`, which Python reserves"
    return why


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
        why = _bad_path_part(ast.name)
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
        why = _bad_path_part(part)
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
            why = _bad_path_part(part)
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
