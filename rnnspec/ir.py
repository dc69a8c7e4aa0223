"""The IR: a graph of named tensor values and the layers between them.

Every layer kind declares its arguments once, in LAYER_SCHEMAS (type, default, allowed values);
`build_model` checks a parsed model against those schemas in one place, and check.py then runs
the passes over the graph (shapes, masks, the language's rules).
"""

from __future__ import annotations

import keyword
import math
import struct
from dataclasses import dataclass, field
from typing import Any

from rnnspec.errors import Pos, Reporter, did_you_mean
from rnnspec.parse import Arg, Bool, Call, Ident, ModelAST, Number, value_text

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


FLOAT32_MAX = "3.4028235e38"


def fits_float32(value: float) -> bool:
    """Whether `value` rounds to a finite float32 (struct refuses what would overflow)."""
    try:
        struct.pack("<f", float(value))
    except OverflowError:
        return False
    return math.isfinite(float(value))


@dataclass(frozen=True)
class Attr:
    """One argument of a layer kind: its type, its Keras default, its allowed values."""

    type: str  # pos_int | bool | rate | float | activation | merge_mode | recurrent_layer
    default: Any = REQUIRED

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
}

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
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    @property
    def recurrent(self) -> Layer | None:
        """The recurrent layer doing the work: this one, or the one a bidirectional wraps."""
        if self.kind in RECURRENT_KINDS:
            return self
        return self.inner

    def where(self, attr: str) -> Pos:
        return self.attr_pos.get(attr, self.pos)


@dataclass
class Model:
    name: str
    pos: Pos
    batch_size: int | None
    inputs: list[TensorValue]
    layers: list[Layer]
    values: dict[str, TensorValue] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)

    @property
    def stateful(self) -> bool:
        return any(layer.recurrent and layer.recurrent.attrs["stateful"] for layer in self.layers)

    @property
    def masked(self) -> bool:
        return any(value.masked for value in self.values.values())


def bad_identifier(name: str) -> str | None:
    """Why a spec name cannot become a Python identifier in generated code, or None."""
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return "is a Python keyword"
    if name.startswith("__"):
        return "starts with `__`, which Python reserves"
    return None


def build_model(ast: ModelAST, report: Reporter) -> Model | None:
    """Turn one parsed model into IR layers with typed, defaulted attributes (no graph rules yet)."""
    options = _bind_args(ast.options, (), MODEL_OPTIONS, "model", ast.name_pos, report)
    inputs: list[TensorValue] = []
    layers: list[Layer] = []
    counts: dict[str, int] = {}
    from rnnspec.parse import InputDecl

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
        layer = _layer(stmt.call, report)
        if layer is None:
            continue
        counts[layer.kind] = counts.get(layer.kind, 0) + 1
        if stmt.alias is not None:
            layer.name = stmt.alias.name
            layer.attr_pos["name"] = stmt.alias.pos
        else:
            layer.name = f"{layer.kind}_{counts[layer.kind]}"
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
            if not dim.is_int or dim.value <= 0:
                report.error(dim.pos, f"a dimension must be a positive integer or `*`, got `{dim.text}`")
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


def _layer(call: Call, report: Reporter) -> Layer | None:
    schema = LAYER_SCHEMAS.get(call.kind)
    if schema is None:
        report.error(
            call.pos, f"unknown layer kind `{call.kind}`{did_you_mean(call.kind, list(LAYER_SCHEMAS))}"
        )
        return None
    attr_pos: dict[str, Pos] = {}
    attrs = _bind_args(call.args, schema.positional, schema.attrs, call.kind, call.pos, report, attr_pos)
    if attrs is None:
        return None
    layer = Layer(name="", kind=call.kind, attrs=attrs, pos=call.pos, attr_pos=attr_pos)
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
        if isinstance(value, Number) and value.is_int and value.value > 0:
            return value.value
        report.error(where, f"`{name}` of `{owner}` must be a positive integer, got `{shown}`")
    elif attr.type == "bool":
        if isinstance(value, Bool):
            return value.value
        report.error(where, f"`{name}` of `{owner}` must be `true` or `false`, got `{shown}`")
    elif attr.type == "rate":
        if isinstance(value, Number) and 0 <= value.value < 1:
            return float(value.value)
        report.error(where, f"`{name}` of `{owner}` must be a rate in [0, 1), got `{shown}`")
    elif attr.type == "float":
        if isinstance(value, Number):
            if fits_float32(value.value):
                return float(value.value)
            report.error(
                where,
                f"`{name}` of `{owner}` is `{shown}`, beyond float32's range (largest finite value "
                f"{FLOAT32_MAX}): the model computes in float32, where it would become inf",
            )
        else:
            report.error(where, f"`{name}` of `{owner}` must be a number, got `{shown}`")
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


def _show(value: Any) -> str:
    return f"{value.kind}(...)" if isinstance(value, Call) else value_text(value)
