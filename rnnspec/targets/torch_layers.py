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
PAD_SAME = '''
def pad_same(x, kernel, stride, dilation=1, value=0.0):
    """Pad the last axis as TensorFlow's `same` padding does: ceil(length / stride) outputs,
    the odd padded cell after."""
    length = x.shape[-1]
    span = (kernel - 1) * dilation + 1
    total = max((-(-length // stride) - 1) * stride + span - length, 0)
    return F.pad(x, (total // 2, total - total // 2), value=value)
'''


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


def conv1d(attr: str, src: str) -> PyCall:
    """torch's Conv1d on the prepared input `src`, channels last again."""
    return transpose(PyCall(attr, (src,)), "1", "2")


def pool1d(which: str, src: str, pool: int, stride: int, same: bool) -> PyCall:
    """MaxPooling1D / AveragePooling1D on a channels-last `src`; `same` through the helpers."""
    if same:
        return PyCall(f"{which}_pool_same", (src, str(pool), str(stride)))
    return transpose(
        PyCall(f"F.{which}_pool1d", (transpose(src, "1", "2"), str(pool), str(stride))), "1", "2"
    )


# Written when a 2-D `same` window has a stride over a height that varies.
PAD_SAME_2D = '''
def pad_same_2d(x, kernel, stride, dilation=1, value=0.0):
    """Pad the last two axes as TensorFlow's `same` padding does, each on its own."""
    pads = []
    for length in (x.shape[-1], x.shape[-2]):
        span = (kernel - 1) * dilation + 1
        total = max((-(-length // stride) - 1) * stride + span - length, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, tuple(pads), value=value)
'''


# `same` pooling: max pooling pads with -inf, so a padded cell never wins; TensorFlow's average
# pooling divides each window's sum by its count of cells inside the input, not by the window's
# size: the ratio of two zero-padded poolings is exactly that.
MAX_POOL_SAME = '''
def max_pool_same(x, pool, stride):
    """MaxPooling1D with `same` padding, channels last as Keras: padded cells never win."""
    padded = pad_same(x.transpose(1, 2), pool, stride, value=float("-inf"))
    return F.max_pool1d(padded, pool, stride).transpose(1, 2)
'''

AVG_POOL_SAME = '''
def avg_pool_same(x, pool, stride):
    """AveragePooling1D with `same` padding, channels last: each window's mean over its cells
    inside the sequence, as TensorFlow's."""
    x = x.transpose(1, 2)
    total = F.avg_pool1d(pad_same(x, pool, stride), pool, stride)
    ones = pad_same(torch.ones_like(x[:, :1]), pool, stride)
    return (total / F.avg_pool1d(ones, pool, stride)).transpose(1, 2)
'''


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
KERAS_RELU = '''
def keras_relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Keras's relu with its options: x above `threshold` (clipped to [0, max_value]), and
    `negative_slope * (x - threshold)` added below it."""
    if negative_slope != 0.0 and max_value is None and threshold == 0.0:
        return F.leaky_relu(x, negative_slope)
    y = torch.where(x > threshold, x, 0.0) if threshold != 0.0 else torch.relu(x)
    if max_value is not None:
        y = y.clamp(0.0, max_value)
    if negative_slope != 0.0:
        y = y - negative_slope * torch.relu(threshold - x)
    return y
'''


def leaky_relu(src: str, negative_slope: float) -> PyCall:
    return PyCall("F.leaky_relu", (src, py_literal(negative_slope)))


# Noise in training only, as Keras's GaussianNoise; at inference the identity.
GAUSSIAN_NOISE = '''
class GaussianNoise(nn.Module):
    """Keras's GaussianNoise: x + stddev * N(0, 1) in training, x in inference."""

    def __init__(self, stddev):
        super().__init__()
        self.stddev = stddev

    def forward(self, x):
        return x + self.stddev * torch.randn_like(x) if self.training else x
'''


def spatial_dropout1d(attr: str, src: str) -> PyCall:
    """SpatialDropout1D drops whole feature channels per sample: torch's Dropout1d, channels-first."""
    return transpose(PyCall(attr, (transpose(src, "1", "2"),)), "1", "2")


# BatchNormalization over the last axis. Inference: the moving statistics, in TensorFlow's order
# (tf.nn.batch_normalization: inv = rsqrt(variance + epsilon) * gamma; x * inv + (beta - mean * inv)).
# Training: the batch's mean and biased variance over every axis but the last (under a mask, over
# the unmasked steps, with Keras's 1e-7 in the denominators), and the moving statistics updated
# with Keras's momentum (torch's BatchNorm would use the unbiased variance and 1 - momentum).
KERAS_BATCH_NORMALIZATION = '''
class KerasBatchNormalization(nn.Module):
    """Keras's BatchNormalization over the last axis; the moving statistics are buffers."""

    def __init__(self, features, epsilon=0.001, momentum=0.99, center=True, scale=True):
        super().__init__()
        self.epsilon = epsilon
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(features)) if scale else None
        self.bias = nn.Parameter(torch.zeros(features)) if center else None
        self.register_buffer("running_mean", torch.zeros(features))
        self.register_buffer("running_var", torch.ones(features))

    def forward(self, x, mask=None):
        if self.training:
            axes = tuple(range(x.dim() - 1))
            if mask is None:
                mean = x.mean(dim=axes)
                variance = (x - mean).square().mean(dim=axes)
            else:
                keep = mask.unsqueeze(-1).expand_as(x)
                count = keep.sum(dim=axes).to(x.dtype) + 1e-7
                mean = torch.where(keep, x, 0.0).sum(dim=axes) / count
                spread = torch.where(keep, x - mean, 0.0).square()
                variance = spread.sum(dim=axes) / count
            with torch.no_grad():
                new = 1.0 - self.momentum
                self.running_mean.mul_(self.momentum).add_(new * mean.detach())
                self.running_var.mul_(self.momentum).add_(new * variance.detach())
        else:
            mean, variance = self.running_mean, self.running_var
        inv = torch.rsqrt(variance + self.epsilon)
        if self.weight is not None:
            inv = inv * self.weight
        shift = -mean * inv if self.bias is None else self.bias - mean * inv
        return x * inv + shift
'''

HELPERS = {
    "pad_same": PAD_SAME,
    "pad_same_2d": PAD_SAME_2D,
    "max_pool_same": MAX_POOL_SAME,
    "avg_pool_same": AVG_POOL_SAME,
    "keras_relu": KERAS_RELU,
    "KerasBatchNormalization": KERAS_BATCH_NORMALIZATION,
    "GaussianNoise": GAUSSIAN_NOISE,
}
# Helpers that call another helper.
NEEDS = {"max_pool_same": ("pad_same",), "avg_pool_same": ("pad_same",)}
