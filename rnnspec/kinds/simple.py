"""Weightless kinds: masking, dropout, global average pooling."""

from __future__ import annotations

from rnnspec.ir import Attr, Layer, LayerSchema, TensorValue
from rnnspec.kinds.base import Context, LayerKind


class Masking(LayerKind):
    name = "masking"
    schema = LayerSchema((), {"mask_value": Attr("float", 0.0)})
    keras_class = "keras.layers.Masking"
    h5_name = "masking"
    needs_sequence = True

    def mask_out(self, layer: Layer, masked_in: bool) -> bool:
        return True

    def keeps_mask(self, layer: Layer) -> bool:
        return False


class Dropout(LayerKind):
    name = "dropout"
    schema = LayerSchema(("rate",), {"rate": Attr("rate")})
    keras_class = "keras.layers.Dropout"
    h5_name = "dropout"


class GlobalAveragePooling(LayerKind):
    """The mean over the time axis; under a mask, over each row's unmasked steps."""

    name = "global_average_pooling"
    schema = LayerSchema((), {})
    keras_class = "keras.layers.GlobalAveragePooling1D"
    h5_name = "global_average_pooling1d"
    needs_sequence = True
    reads_mask = True

    def infer(self, layer: Layer, current: TensorValue, ctx: Context) -> list[TensorValue] | None:
        return [TensorValue(layer.name, "float32", current.shape[1:])]

    def mask_out(self, layer: Layer, masked_in: bool) -> bool:
        return False

    def keeps_mask(self, layer: Layer) -> bool:
        return False
