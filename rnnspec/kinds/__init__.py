"""Every layer kind, declared once (one module per family); `kind_of` is the one registry lookup.

Adding a kind: a `LayerKind` subclass in a module here, listed in KINDS; its emitter in each target
(rnnspec/targets/pytorch.py EMITTERS; Keras's constructor is generic); tests; docs. See
docs/adding-a-kind.md.
"""

from __future__ import annotations

from rnnspec.errors import Unsupported
from rnnspec.ir import Layer, LayerSchema
from rnnspec.kinds.base import Context, KerasArray, LayerKind, describe, needs_sequence_message
from rnnspec.kinds.conv import AveragePooling1D, Conv1D, Conv2D, MaxPooling1D, MaxPooling2D
from rnnspec.kinds.dense import AttentionPooling, Dense, Embedding, TimeDistributed
from rnnspec.kinds.extern import EXTERN
from rnnspec.kinds.merge import MERGES
from rnnspec.kinds.normalization import BatchNormalization, LayerNormalization
from rnnspec.kinds.recurrent import BIDIRECTIONAL, GATE_ORDER, GRU, LSTM, SIMPLE_RNN
from rnnspec.kinds.shape import (
    Activation,
    Flatten,
    GaussianNoise,
    GlobalMaxPooling,
    LeakyReLU,
    ReLU,
    RepeatVector,
    Reshape,
    SpatialDropout1D,
)
from rnnspec.kinds.simple import Dropout, GlobalAveragePooling, Masking

KINDS: dict[str, LayerKind] = {
    kind.name: kind
    for kind in (
        Embedding(),
        Masking(),
        SIMPLE_RNN,
        LSTM,
        GRU,
        BIDIRECTIONAL,
        Dense(),
        Dropout(),
        GlobalAveragePooling(),
        AttentionPooling(),
        LayerNormalization(),
        # v1's one-input layers
        BatchNormalization(),
        Reshape(),
        Activation(),
        RepeatVector(),
        GlobalMaxPooling(),
        Conv1D(),
        MaxPooling1D(),
        AveragePooling1D(),
        Flatten(),
        TimeDistributed(),
        ReLU(),
        LeakyReLU(),
        SpatialDropout1D(),
        GaussianNoise(),
        Conv2D(),
        MaxPooling2D(),
        *MERGES,
    )
}

LAYER_SCHEMAS: dict[str, LayerSchema] = {name: kind.schema for name, kind in KINDS.items()}

# The Keras class (config.json `class_name`) of each built-in kind, for `import`.
KERAS_KINDS: dict[str, str] = {kind.keras_class_name: name for name, kind in KINDS.items()}


def kind_of(layer: Layer, tool: str = "rnnspec") -> LayerKind:
    """The declaration of a layer's kind; Unsupported (naming `tool`) for a kind with none."""
    if layer.extern is not None:
        return EXTERN
    kind = KINDS.get(layer.kind)
    if kind is None:
        raise Unsupported.of(layer.kind, tool, layer.pos)
    return kind


__all__ = [
    "GATE_ORDER",
    "KERAS_KINDS",
    "KINDS",
    "LAYER_SCHEMAS",
    "Context",
    "KerasArray",
    "LayerKind",
    "describe",
    "kind_of",
    "needs_sequence_message",
]
