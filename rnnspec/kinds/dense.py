"""Token embeddings, dense layers and attention pooling: kinds with plain weight arrays."""

from __future__ import annotations

from typing import Any

from rnnspec.ir import Attr, Layer, LayerSchema, TensorValue
from rnnspec.kinds.base import Context, KerasArray, LayerKind


class Embedding(LayerKind):
    name = "embedding"
    schema = LayerSchema(
        ("input_dim", "output_dim"),
        {"input_dim": Attr("pos_int"), "output_dim": Attr("pos_int"), "mask_zero": Attr("bool", False)},
    )
    keras_class = "keras.layers.Embedding"
    h5_name = "embedding"
    takes_ids = True
    arrays = (
        KerasArray(
            "embeddings", lambda layer, width: (layer.attrs["input_dim"], layer.attrs["output_dim"]), "weight"
        ),
    )

    def infer(self, layer: Layer, current: TensorValue, ctx: Context) -> list[TensorValue] | None:
        shape = current.shape + (layer.attrs["output_dim"],)
        return [TensorValue(layer.name, "float32", shape, self.mask_out(layer, current.masked))]

    def mask_out(self, layer: Layer, masked_in: bool) -> bool:
        return layer.attrs["mask_zero"]

    def keeps_mask(self, layer: Layer) -> bool:
        return False


class Dense(LayerKind):
    name = "dense"
    schema = LayerSchema(
        ("units",),
        {
            "units": Attr("pos_int"),
            "activation": Attr("activation", "linear"),
            "use_bias": Attr("bool", True),
        },
    )
    keras_class = "keras.layers.Dense"
    h5_name = "dense"
    arrays = (
        KerasArray("kernel", lambda layer, width: (width, layer.attrs["units"]), "weight", transpose=True),
        KerasArray(
            "bias",
            lambda layer, width: (layer.attrs["units"],),
            "bias",
            present=lambda layer: layer.attrs["use_bias"],
        ),
    )

    def infer(self, layer: Layer, current: TensorValue, ctx: Context) -> list[TensorValue] | None:
        shape = current.shape[:-1] + (layer.attrs["units"],)
        return [TensorValue(layer.name, "float32", shape, current.masked)]


class AttentionPooling(LayerKind):
    """A learned score per timestep, softmax over the unmasked timesteps, weighted sum."""

    name = "attention_pooling"
    schema = LayerSchema((), {})
    keras_class = "AttentionPooling"  # defined in the generated Keras program
    h5_name = "attention_pooling"
    needs_sequence = True
    reads_mask = True
    arrays = (KerasArray("kernel", lambda layer, width: (width, 1), "kernel.weight", transpose=True),)

    def infer(self, layer: Layer, current: TensorValue, ctx: Context) -> list[TensorValue] | None:
        return [TensorValue(layer.name, "float32", current.shape[1:])]

    def mask_out(self, layer: Layer, masked_in: bool) -> bool:
        return False

    def keeps_mask(self, layer: Layer) -> bool:
        return False


class TimeDistributed(LayerKind):
    """`time_distributed(dense(...))`: Keras's TimeDistributed(Dense): the Dense at every timestep,
    masked ones too; the mask passes on (fact 56). Its arrays are the Dense's."""

    name = "time_distributed"
    schema = LayerSchema(("layer",), {"layer": Attr("dense_layer")})
    keras_class = "keras.layers.TimeDistributed"
    h5_name = "time_distributed"
    needs_sequence = True
    arrays = (
        KerasArray(
            "kernel", lambda layer, width: (width, layer.attrs["layer"]["units"]), "weight", transpose=True
        ),
        KerasArray(
            "bias",
            lambda layer, width: (layer.attrs["layer"]["units"],),
            "bias",
            present=lambda layer: layer.attrs["layer"]["use_bias"],
        ),
    )

    def infer(self, layer: Layer, current: TensorValue, ctx: Context) -> list[TensorValue] | None:
        shape = current.shape[:-1] + (layer.attrs["layer"]["units"],)
        return [TensorValue(layer.name, "float32", shape, current.masked)]

    def keras_wrapped(self, layer: Layer) -> tuple[str, dict[str, Any]] | None:
        return "keras.layers.Dense", layer.attrs["layer"]

    def h5_paths(self, layer: Layer, group: str, count: int) -> list[str]:
        return [f"{group}/layer/vars/{i}" for i in range(count)]
