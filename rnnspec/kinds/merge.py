"""Merges (v1 graphs): applied to two or more values, `concatenate(axis=-1)(a, b)`, `add()(a, b)`.

Their shapes and masks take several inputs, so rnnspec/graph.py infers them (Keras's rules, facts
33-35 of tests/test_keras_facts.py), and each target writes them itself; they have no weights.
"""

from __future__ import annotations

from rnnspec.ir import MERGE_KINDS, Attr, LayerSchema
from rnnspec.kinds.base import LayerKind


class Merge(LayerKind):
    def __init__(self, name: str, keras_name: str, schema: LayerSchema | None = None) -> None:
        self.name = name
        self.schema = schema or LayerSchema((), {})
        self.keras_class = f"keras.layers.{keras_name}"
        self.h5_name = name


MERGES = (
    Merge("concatenate", "Concatenate", LayerSchema((), {"axis": Attr("int", -1)})),
    Merge("add", "Add"),
    Merge("subtract", "Subtract"),
    Merge("multiply", "Multiply"),
    Merge("average", "Average"),
    Merge("maximum", "Maximum"),
    Merge("minimum", "Minimum"),
)
assert tuple(kind.name for kind in MERGES) == MERGE_KINDS
