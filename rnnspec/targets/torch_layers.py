"""The PyTorch arithmetic of Keras's one-input layers, as the generated programs write it.

Values stay channels-last between layers, as in Keras (`[batch, time, features]`); a layer that
torch computes channels-first (convolution, pooling) transposes in and out itself, so reshape
and flatten see Keras's element order. Expressions are calls on a source expression, which the
layout wraps as the formatter would; helpers are written into the generated module once, when a
layer needs them. Each is checked
against Keras on corner values in tests/test_layers_arith.py, and the Keras behaviour they follow
is pinned in tests/test_keras_facts.py (facts 50-79).

Nothing here imports a framework: the compiler uses it to write code.
"""

from __future__ import annotations

from rnnspec.targets.common import PyCall, py_literal

# The activations v1 adds, each Keras 3's function. Keras's `leaky_relu` activation has slope 0.2
# (the LeakyReLU layer's default is 0.3); `mish` is x * tanh(softplus(x)), as F.mish.
NEW_ACTIVATIONS = {
    "leaky_relu": "F.leaky_relu({}, 0.2)",
    "relu6": "F.relu6({})",
    "silu": "F.silu({})",
    "mish": "F.mish({})",
    "log_softmax": "torch.log_softmax({}, dim=-1)",
}


def same_padding(length: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's `same` padding of one axis: (before, after), the odd cell after.

    The output has ceil(length / stride) cells; with stride 1 the padding does not depend on the
    length ((kernel - 1) * dilation cells in all).
    """
    effective = (kernel - 1) * dilation + 1
    total = max((-(-length // stride) - 1) * stride + effective - length, 0)
    return total // 2, total - total // 2


def padding(mode: str, kernel: int, stride: int, dilation: int, length: int | None) -> tuple[int, int] | None:
    """The (before, after) padding of a convolution or pooling axis, or None when it depends on a
    length that varies (`same` with a stride above 1 on a `*` axis: the helper computes it)."""
    if mode == "valid":
        return 0, 0
    if mode == "causal":
        return (kernel - 1) * dilation, 0
    if stride == 1 or length is not None:
        return same_padding(length or 1, kernel, stride, dilation)
    return None


# Written into the generated module when a `same` axis has a stride and a varying length: the
# padding then depends on each batch's length.


def transpose(value: str | PyCall, *axes: str) -> PyCall:
    """`torch.transpose(value, 1, 2)` (or `torch.permute(value, axes)`): a call the layout wraps as
    the formatter does, where a method after a call (`f(x).transpose(1, 2)`) would not be."""
    if len(axes) == 2:
        return PyCall("torch.transpose", (value, *axes))
    return PyCall("torch.permute", (value, f"({', '.join(axes)})"))


def padded(src: str | PyCall, pad: tuple[int, int] | None, kernel: int, stride: int, dilation: int) -> PyCall:
    """A channels-first `src` padded: by a literal pair, or by the helper on the runtime length."""
    if pad is not None:
        return PyCall("F.pad", (src, f"({pad[0]}, {pad[1]})"))
    return PyCall("pad_same", (src, str(kernel), str(stride), *([str(dilation)] if dilation != 1 else [])))


def conv1d_input(src: str, pad: tuple[int, int] | None, kernel: int, stride: int, dilation: int) -> PyCall:
    """A Conv1D's input, channels first and padded as TensorFlow pads it (torch's Conv1d is unpadded)."""
    inner = transpose(src, "1", "2")
    return inner if pad == (0, 0) else padded(inner, pad, kernel, stride, dilation)


def channels_last(value: str | PyCall) -> PyCall:
    """A channels-first result (a convolution's, a pooling's) channels last again, as Keras lays
    it out: the runtime's `channels_last` (a view; a contiguous copy under torch.export)."""
    return PyCall("channels_last", (value,))


def conv1d(attr: str, src: str) -> PyCall:
    """torch's Conv1d on the prepared input `src`, channels last again."""
    return channels_last(PyCall(attr, (src,)))


def pool1d(which: str, src: str, pool: int, stride: int, same: bool) -> PyCall:
    """MaxPooling1D / AveragePooling1D on a channels-last `src`; `same` through the helpers."""
    if same:
        return PyCall(f"{which}_pool_same", (src, str(pool), str(stride)))
    if which == "max":
        return PyCall("max_pool_valid", (src, str(pool), str(stride)))
    return channels_last(PyCall(f"F.{which}_pool1d", (transpose(src, "1", "2"), str(pool), str(stride))))


# Written when a 2-D `same` window has a stride over a height that varies.


# `same` pooling: max pooling pads with -inf, so a padded cell never wins; TensorFlow's average
# pooling divides each window's sum by its count of cells inside the input, not by the window's
# size: the ratio of two zero-padded poolings is exactly that.


def repeat_vector(src: str, n: int) -> PyCall:
    return PyCall("torch.stack", (f"[{src}] * {n}", "dim=1"))


def reshape(src: str, dims: tuple[int, ...]) -> PyCall:
    """Keras's Reshape to per-sample `dims` (resolved, no -1): channels-last order is torch's."""
    return PyCall("torch.unflatten", (flatten(src), "1", py_literal(tuple(dims))))


def flatten(src: str) -> PyCall:
    return PyCall("torch.flatten", (src, "1"))


def global_max_pooling(src: str) -> PyCall:
    """The max over time. Keras ignores a mask here: masked steps are in the max."""
    return PyCall("torch.amax", (src, "dim=1"))


def relu(src: str, max_value: float | None, negative_slope: float, threshold: float) -> PyCall:
    """Keras's ReLU layer: the plain call at the defaults, else the helper."""
    if max_value is None and threshold == 0.0:
        if negative_slope == 0.0:
            return PyCall("torch.relu", (src,))
        return PyCall("F.leaky_relu", (src, py_literal(negative_slope)))
    if max_value == 6.0 and threshold == 0.0 and negative_slope == 0.0:
        return PyCall("F.relu6", (src,))
    args = (src, py_literal(negative_slope), py_literal(max_value), py_literal(threshold))
    return PyCall("keras_relu", args)


# Keras's `relu` with options, in Keras's order of operations (keras/src/activations/activations.py
# ReLU.static_call): keep x above the threshold, clip at max_value, then subtract the slope times
# the part below the threshold.


def leaky_relu(src: str, negative_slope: float) -> PyCall:
    return PyCall("F.leaky_relu", (src, py_literal(negative_slope)))


# Noise in training only, as Keras's GaussianNoise; at inference the identity.


def spatial_dropout1d(attr: str, src: str) -> PyCall:
    """SpatialDropout1D drops whole feature channels per sample: torch's Dropout1d, channels-first."""
    return transpose(PyCall(attr, (transpose(src, "1", "2"),)), "1", "2")


# BatchNormalization over the last axis. Inference: the moving statistics, in TensorFlow's order
# (tf.nn.batch_normalization: inv = rsqrt(variance + epsilon) * gamma; x * inv + (beta - mean * inv)).
# Training: the batch's mean and biased variance over every axis but the last (under a mask, over
# the unmasked steps, with Keras's 1e-7 in the denominators), and the moving statistics updated
# with Keras's momentum (torch's BatchNorm would use the unbiased variance and 1 - momentum).

# The runtime definitions (rnnspec/runtime/torch_rnn.py) these expressions call.
HELPERS = (
    "channels_last",
    "pad_same",
    "pad_same_2d",
    "max_pool_valid",
    "max_pool_same",
    "avg_pool_same",
    "keras_relu",
    "KerasBatchNormalization",
    "GaussianNoise",
)
