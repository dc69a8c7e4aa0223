"""Convolution and pooling over time: Keras's Conv1D, MaxPooling1D, AveragePooling1D.

Channels last, as Keras: the value stays [timesteps, features] between layers; the PyTorch
program transposes to torch's channels-first inside the layer only. Padding is TensorFlow's:
`same` gives ceil(steps / strides) outputs with the odd padded cell after, `causal` pads
(kernel - 1) * dilation cells before (tests/test_keras_facts.py, facts 53-54). Each drops a mask
(Keras warns).
"""

from __future__ import annotations

from typing import Any, ClassVar

from rnnspec.ir import Attr, Layer, LayerSchema, TensorValue
from rnnspec.kinds.base import Context, KerasArray, describe
from rnnspec.kinds.shape import DropsMask


def steps_out(steps: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """Keras's output length of one axis (TensorFlow's arithmetic)."""
    if padding in ("same", "causal"):
        return -(-steps // stride)
    return (steps - (kernel - 1) * dilation - 1) // stride + 1


class _TimeWindow(DropsMask):
    """A layer sliding a window over the time axis."""

    needs_sequence = True

    def window(self, layer: Layer) -> tuple[int, int, int, str]:
        """(kernel, stride, dilation, padding)."""
        raise NotImplementedError

    def steps_out(self, layer: Layer, steps: int) -> int:
        return steps_out(steps, *self.window(layer))

    def min_steps(self, layer: Layer) -> int:
        """The fewest timesteps it accepts: one window's span under `valid`, else one."""
        kernel, _, dilation, padding = self.window(layer)
        return (kernel - 1) * dilation + 1 if padding == "valid" else 1

    def width(self, layer: Layer, features: int) -> int:
        return features

    def infer(self, layer: Layer, current: TensorValue, ctx: Context) -> list[TensorValue] | None:
        steps, features = current.shape
        _, stride, dilation, _ = self.window(layer)
        if stride > 1 and dilation > 1:
            ctx.report.error(
                layer.where("dilation_rate"),
                f"`{layer.kind}` cannot take strides > 1 with dilation_rate > 1 (Keras refuses it)",
            )
            return None
        if steps is not None and steps < self.min_steps(layer):
            ctx.report.error(
                layer.pos,
                f"`{layer.name}` needs at least {self.min_steps(layer)} timesteps with padding=valid; "
                f"it receives {describe(current)}",
            )
            return None
        out = None if steps is None else self.steps_out(layer, steps)
        return [TensorValue(layer.name, "float32", (out, self.width(layer, features)))]


class Conv1D(_TimeWindow):
    name = "conv1d"
    schema = LayerSchema(
        ("filters", "kernel_size"),
        {
            "filters": Attr("pos_int"),
            "kernel_size": Attr("pos_int"),
            "strides": Attr("pos_int", 1),
            "padding": Attr("choice", "valid", ("valid", "same", "causal")),
            "dilation_rate": Attr("pos_int", 1),
            "activation": Attr("activation", "linear"),
            "use_bias": Attr("bool", True),
        },
    )
    keras_class = "keras.layers.Conv1D"
    h5_name = "conv1d"
    # Keras's kernel is (kernel_size, features, filters); torch's Conv1d weight (filters, features,
    # kernel_size): the axes reversed, which is numpy's `.T` of a 3-D array.
    arrays = (
        KerasArray(
            "kernel",
            lambda layer, width: (layer.attrs["kernel_size"], width, layer.attrs["filters"]),
            "weight",
            transpose=True,
        ),
        KerasArray(
            "bias",
            lambda layer, width: (layer.attrs["filters"],),
            "bias",
            present=lambda layer: layer.attrs["use_bias"],
        ),
    )
    keras_fixed: ClassVar[dict[str, tuple[tuple[Any, ...], str]]] = {
        "groups": ((1,), "grouped convolution (groups > 1) has no equivalent"),
        "data_format": (("channels_last",), "only data_format='channels_last' has an equivalent"),
    }

    def window(self, layer: Layer) -> tuple[int, int, int, str]:
        a = layer.attrs
        return a["kernel_size"], a["strides"], a["dilation_rate"], a["padding"]

    def width(self, layer: Layer, features: int) -> int:
        return layer.attrs["filters"]


class _Pooling1D(_TimeWindow):
    keras_fixed: ClassVar[dict[str, tuple[tuple[Any, ...], str]]] = {
        "data_format": (("channels_last",), "only data_format='channels_last' has an equivalent")
    }

    def window(self, layer: Layer) -> tuple[int, int, int, str]:
        pool = layer.attrs["pool_size"]
        return pool, layer.attrs["strides"] or pool, 1, layer.attrs["padding"]


class MaxPooling1D(_Pooling1D):
    name = "max_pooling1d"
    schema = LayerSchema(
        ("pool_size",),
        {
            "pool_size": Attr("pos_int", 2),
            "strides": Attr("pos_int", None),
            "padding": Attr("choice", "valid", ("valid", "same")),
        },
    )
    keras_class = "keras.layers.MaxPooling1D"
    h5_name = "max_pooling1d"


class AveragePooling1D(_Pooling1D):
    """Under `same`, each window's mean over its cells inside the sequence (TensorFlow's)."""

    name = "average_pooling1d"
    schema = LayerSchema(
        ("pool_size",),
        {
            "pool_size": Attr("pos_int"),  # Keras 3 has no default here
            "strides": Attr("pos_int", None),
            "padding": Attr("choice", "valid", ("valid", "same")),
        },
    )
    keras_class = "keras.layers.AveragePooling1D"
    h5_name = "average_pooling1d"


def pair(size: int | tuple[int, int]) -> tuple[int, int]:
    """A 2-D window's size as (height, width): one int is both (Keras's `kernel_size=3`)."""
    return (size, size) if isinstance(size, int) else (size[0], size[1])


class _Spatial2D(DropsMask):
    """A 2-D window over [height, width, channels] (channels last, as Keras); kernels, strides and
    pools are one int for both axes or a (height, width) pair, as Keras takes them."""

    def window(self, layer: Layer) -> tuple[tuple[int, int], tuple[int, int], int, str]:
        """((kernel height, width), (stride height, width), dilation, padding)."""
        raise NotImplementedError

    def channels(self, layer: Layer, channels: int) -> int:
        return channels

    # The height is the axis that may vary (the time axis): these two are its (inputs.min_steps).
    def steps_out(self, layer: Layer, steps: int) -> int:
        kernel, stride, dilation, padding = self.window(layer)
        return steps_out(steps, kernel[0], stride[0], dilation, padding)

    def min_steps(self, layer: Layer) -> int:
        kernel, _, dilation, padding = self.window(layer)
        return (kernel[0] - 1) * dilation + 1 if padding == "valid" else 1

    def infer(self, layer: Layer, current: TensorValue, ctx: Context) -> list[TensorValue] | None:
        if len(current.shape) != 3 or None in current.shape[1:]:
            ctx.report.error(
                layer.pos,
                f"`{layer.kind}` takes [height, width, channels] (channels last, as Keras; the height may "
                f"vary); `{layer.name}` receives {describe(current)}: reshape to it first, e.g. "
                "`reshape(-1, F, 1)`",
            )
            return None
        kernel, stride, dilation, padding = self.window(layer)
        if max(stride) > 1 and dilation > 1:
            ctx.report.error(
                layer.where("dilation_rate"),
                f"`{layer.kind}` cannot take strides > 1 with dilation_rate > 1 (Keras refuses it)",
            )
            return None
        height, width, channels = current.shape
        out = [
            None if size is None else steps_out(size, kernel[axis], stride[axis], dilation, padding)
            for axis, size in enumerate((height, width))
        ]
        if min(size for size in out if size is not None) < 1:
            spans = [(k - 1) * dilation + 1 for k in kernel]
            cells = f"{spans[0]} cells per axis" if spans[0] == spans[1] else "{} x {} cells".format(*spans)
            ctx.report.error(
                layer.pos,
                f"`{layer.name}` needs at least {cells} with padding=valid; it receives {describe(current)}",
            )
            return None
        return [TensorValue(layer.name, "float32", (out[0], out[1], self.channels(layer, channels)))]


class Conv2D(_Spatial2D):
    """Keras's Conv2D, for the convolutional fronts of speech and OCR models."""

    name = "conv2d"
    schema = LayerSchema(
        ("filters", "kernel_size"),
        {
            "filters": Attr("pos_int"),
            "kernel_size": Attr("size_2d"),
            "strides": Attr("size_2d", 1),
            "padding": Attr("choice", "valid", ("valid", "same")),
            "dilation_rate": Attr("pos_int", 1),
            "activation": Attr("activation", "linear"),
            "use_bias": Attr("bool", True),
        },
    )
    keras_class = "keras.layers.Conv2D"
    h5_name = "conv2d"
    keras_fixed: ClassVar[dict[str, tuple[tuple[Any, ...], str]]] = {
        "groups": ((1,), "grouped convolution (groups > 1) has no equivalent"),
        "data_format": (("channels_last",), "only data_format='channels_last' has an equivalent"),
    }
    # Keras's kernel is (height, width, in, out); torch's Conv2d weight (out, in, height, width).
    arrays = (
        KerasArray(
            "kernel",
            lambda layer, width: (*pair(layer.attrs["kernel_size"]), width, layer.attrs["filters"]),
            "weight",
        ),
        KerasArray(
            "bias",
            lambda layer, width: (layer.attrs["filters"],),
            "bias",
            present=lambda layer: layer.attrs["use_bias"],
        ),
    )

    def window(self, layer: Layer) -> tuple[tuple[int, int], tuple[int, int], int, str]:
        a = layer.attrs
        return pair(a["kernel_size"]), pair(a["strides"]), a["dilation_rate"], a["padding"]

    def channels(self, layer: Layer, channels: int) -> int:
        return layer.attrs["filters"]

    def keras_to_torch(self, layer: Layer, arrays: list[Any]) -> dict[str, Any]:
        state = {"weight": arrays[0].transpose(3, 2, 0, 1)}
        if layer.attrs["use_bias"]:
            state["bias"] = arrays[1]
        return state

    def torch_to_keras(self, layer: Layer, state: dict[str, Any]) -> list[Any]:
        arrays = [state["weight"].transpose(2, 3, 1, 0)]
        return arrays + ([state["bias"]] if layer.attrs["use_bias"] else [])


class MaxPooling2D(_Spatial2D):
    name = "max_pooling2d"
    schema = LayerSchema(
        ("pool_size",),
        {
            "pool_size": Attr("size_2d", 2),
            "strides": Attr("size_2d", None),
            "padding": Attr("choice", "valid", ("valid", "same")),
        },
    )
    keras_class = "keras.layers.MaxPooling2D"
    h5_name = "max_pooling2d"
    keras_fixed: ClassVar[dict[str, tuple[tuple[Any, ...], str]]] = {
        "data_format": (("channels_last",), "only data_format='channels_last' has an equivalent")
    }

    def window(self, layer: Layer) -> tuple[tuple[int, int], tuple[int, int], int, str]:
        pool = layer.attrs["pool_size"]
        return pair(pool), pair(layer.attrs["strides"] or pool), 1, layer.attrs["padding"]
