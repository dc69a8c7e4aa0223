"""The IR: a graph of named tensor values and the layers between them, as plain data.

What each layer kind accepts and computes is declared once per kind in rnnspec/kinds/; turning a
parsed model into this IR (binding arguments to those schemas) is rnnspec/build.py.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from typing import Any

from rnnspec.errors import Diagnostic, Pos

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
    # v1: Keras 3's own (the `leaky_relu` activation's slope is 0.2; the LeakyReLU layer's 0.3)
    "leaky_relu",
    "relu6",
    "silu",
    "mish",
    "log_softmax",
)
MERGE_MODES = ("concat", "sum", "mul", "ave", "none")
RECURRENT_KINDS = ("simple_rnn", "lstm", "gru")
# Merges (v1): applied to two or more values, `concatenate(axis=-1)(a, b)`.
MERGE_KINDS = ("concatenate", "add", "subtract", "multiply", "average", "maximum", "minimum")
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

    # pos_int | bool | rate | float | activation | merge_mode | recurrent_layer | int | float32 | choice
    # | dims (the rest of the positional arguments: sizes, one may be -1) | dense_layer (a `dense(...)`)
    # | size_2d (a 2-D window's sizes: one int for both axes, or a (height, width) tuple from `[h, w]`)
    type: str
    default: Any = REQUIRED
    choices: tuple[str, ...] = ()  # for `choice`

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class LayerSchema:
    positional: tuple[str, ...]
    attrs: dict[str, Attr]


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


def bad_path_part(part: str) -> str | None:
    why = bad_identifier(part)
    if why is None and part.endswith("__"):
        return "ends with `__`, which Python reserves"
    return why
