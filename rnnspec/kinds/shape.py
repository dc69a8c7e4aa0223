"""One-input layers that reshape, activate, pool over time or add noise: Keras's RepeatVector,
Reshape, Flatten, Activation, ReLU, LeakyReLU, GlobalMaxPooling1D, SpatialDropout1D, GaussianNoise.

Masks (pinned in tests/test_keras_facts.py, facts 50-51): Activation, ReLU, LeakyReLU,
SpatialDropout1D and GaussianNoise pass a mask on unread; Reshape, Flatten, RepeatVector and
GlobalMaxPooling1D drop it (Keras warns), and GlobalMaxPooling1D's max takes in the masked steps.
"""

from __future__ import annotations

from math import prod

from rnnspec.ir import Attr, Layer, LayerSchema, TensorValue
from rnnspec.kinds.base import Context, LayerKind, describe


class DropsMask(LayerKind):
    """A layer Keras calls without masking support: a mask that reaches it ends there (with
    Keras's warning; `rnnspec check` says so too)."""

    drops_mask = True

    def mask_out(self, layer: Layer, masked_in: bool) -> bool:
        return False

    def keeps_mask(self, layer: Layer) -> bool:
        return False


class RepeatVector(DropsMask):
    name = "repeat_vector"
    schema = LayerSchema(("n",), {"n": Attr("pos_int")})
    keras_class = "keras.layers.RepeatVector"
    h5_name = "repeat_vector"

    def infer(self, layer: Layer, current: TensorValue, ctx: Context) -> list[TensorValue] | None:
        if len(current.shape) != 1:
            ctx.report.error(
                layer.pos,
                f"`repeat_vector` repeats a vector [features]; `{layer.name}` receives {describe(current)}",
            )
            return None
        return [TensorValue(layer.name, "float32", (layer.attrs["n"], current.shape[0]))]


class Reshape(DropsMask):
    name = "reshape"
    schema = LayerSchema(("target_shape",), {"target_shape": Attr("dims")})
    keras_class = "keras.layers.Reshape"
    h5_name = "reshape"

    def infer(self, layer: Layer, current: TensorValue, ctx: Context) -> list[TensorValue] | None:
        dims = layer.attrs["target_shape"]
        where = layer.where("target_shape")
        if None in current.shape:
            # A varying length stays first, as `reshape(-1, ...)`: each timestep reshaped alone.
            step = current.shape[1:]
            if current.shape[0] is None and None not in step and dims[0] == -1 and -1 not in dims[1:]:
                if prod(step) == prod(dims[1:]):
                    return [TensorValue(layer.name, "float32", (None, *dims[1:]))]
            target = ", ".join(str(d) for d in dims)
            ctx.report.error(
                where,
                f"`reshape({target})` of {describe(current)}, whose length varies: keep the length first, "
                f"as `reshape(-1, ...)` with sizes holding the {prod(d for d in step if d is not None):,} values "
                "of each timestep",
            )
            return None
        size = prod(current.shape)
        known = prod(d for d in dims if d != -1)
        if (-1 in dims and size % known) or (-1 not in dims and size != known):
            target = ", ".join(str(d) for d in dims)
            ctx.report.error(
                where,
                f"`reshape({target})` cannot hold the {size:,} values per sample of {describe(current)}",
            )
            return None
        shape = tuple(size // known if d == -1 else d for d in dims)
        return [TensorValue(layer.name, "float32", shape)]


class Flatten(DropsMask):
    name = "flatten"
    schema = LayerSchema((), {})
    keras_class = "keras.layers.Flatten"
    h5_name = "flatten"

    def infer(self, layer: Layer, current: TensorValue, ctx: Context) -> list[TensorValue] | None:
        if None in current.shape:
            ctx.report.error(
                layer.pos,
                f"`flatten` needs fixed sizes; `{layer.name}` receives {describe(current)}, whose length varies",
            )
            return None
        return [TensorValue(layer.name, "float32", (prod(current.shape),))]


class Activation(LayerKind):
    name = "activation"
    schema = LayerSchema(("activation",), {"activation": Attr("activation")})
    keras_class = "keras.layers.Activation"
    h5_name = "activation"


class ReLU(LayerKind):
    """Keras's ReLU layer: max_value, negative_slope and threshold as Keras's relu takes them."""

    name = "relu"
    schema = LayerSchema(
        (),
        {
            "max_value": Attr("float", None),
            "negative_slope": Attr("float", 0.0),
            "threshold": Attr("float", 0.0),
        },
    )
    keras_class = "keras.layers.ReLU"
    h5_name = "re_lu"

    def infer(self, layer: Layer, current: TensorValue, ctx: Context) -> list[TensorValue] | None:
        bad = False
        for key in ("max_value", "negative_slope", "threshold"):
            value = layer.attrs[key]
            if value is not None and value < 0:
                ctx.report.error(
                    layer.where(key), f"`{key}` of `relu` cannot be negative (Keras), got `{value}`"
                )
                bad = True
        return None if bad else super().infer(layer, current, ctx)


class LeakyReLU(LayerKind):
    name = "leaky_relu"
    schema = LayerSchema(("negative_slope",), {"negative_slope": Attr("float", 0.3)})
    keras_class = "keras.layers.LeakyReLU"
    h5_name = "leaky_re_lu"

    def infer(self, layer: Layer, current: TensorValue, ctx: Context) -> list[TensorValue] | None:
        if layer.attrs["negative_slope"] < 0:
            ctx.report.error(
                layer.where("negative_slope"),
                f"`negative_slope` of `leaky_relu` cannot be negative (Keras), got `{layer.attrs['negative_slope']}`",
            )
            return None
        return super().infer(layer, current, ctx)


class GlobalMaxPooling(DropsMask):
    """The max over the time axis. Keras ignores a mask here: masked timesteps count."""

    name = "global_max_pooling"
    schema = LayerSchema((), {})
    keras_class = "keras.layers.GlobalMaxPooling1D"
    h5_name = "global_max_pooling1d"
    needs_sequence = True

    def infer(self, layer: Layer, current: TensorValue, ctx: Context) -> list[TensorValue] | None:
        return [TensorValue(layer.name, "float32", current.shape[1:])]


class SpatialDropout1D(LayerKind):
    """Dropout of whole feature channels per sample, in training only."""

    name = "spatial_dropout1d"
    schema = LayerSchema(("rate",), {"rate": Attr("rate")})
    keras_class = "keras.layers.SpatialDropout1D"
    h5_name = "spatial_dropout1d"
    needs_sequence = True

    def random_in_training(self, layer: Layer) -> bool:
        return layer.attrs["rate"] > 0


class GaussianNoise(LayerKind):
    """Gaussian noise added in training only; Keras takes a stddev in [0, 1]."""

    name = "gaussian_noise"
    schema = LayerSchema(("stddev",), {"stddev": Attr("float")})
    keras_class = "keras.layers.GaussianNoise"
    h5_name = "gaussian_noise"

    def random_in_training(self, layer: Layer) -> bool:
        return layer.attrs["stddev"] > 0

    def infer(self, layer: Layer, current: TensorValue, ctx: Context) -> list[TensorValue] | None:
        if not 0 <= layer.attrs["stddev"] <= 1:
            ctx.report.error(
                layer.where("stddev"),
                f"`stddev` of `gaussian_noise` must be in [0, 1] (Keras), got `{layer.attrs['stddev']}`",
            )
            return None
        return super().infer(layer, current, ctx)
