"""The PyTorch arithmetic rnnspec writes for Keras's one-input layers (rnnspec/targets/torch_layers.py),
run as written and compared with Keras 3 on values that cover each layer's corners."""

import math
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnnspec.targets import torch_layers as T

L = keras.layers
RNG = np.random.default_rng(50)
X = RNG.normal(size=(3, 9, 4)).astype("float32") * 3
# negative, zero, small, large, and values at the ReLU options' edges
CORNERS = np.array(
    [
        -1e4,
        -88.0,
        -20.0,
        -6.5,
        -3.0,
        -1.0,
        -0.5,
        -1e-7,
        0.0,
        1e-7,
        0.5,
        1.0,
        2.0,
        3.0,
        6.0,
        6.5,
        20.0,
        88.0,
        1e4,
    ],
    "float32",
)


def helpers_namespace():
    """The runtime the programs copy their helpers from (rnnspec/runtime/torch_rnn.py)."""
    from rnnspec.runtime import torch_rnn

    namespace = {"torch": torch, "F": F, "nn": nn, "math": math}
    namespace.update({name: getattr(torch_rnn, name) for name in T.HELPERS})
    return namespace


NS = helpers_namespace()


def run(expression, x: np.ndarray, **names):
    """Evaluate one of the expressions the generator writes (text or a call on `x`), on `x`."""
    text = expression if isinstance(expression, str) else expression.flat()
    return eval(text.format(x="x"), {**NS, **names, "x": torch.from_numpy(x)}).detach().numpy()


def keras_out(layer, x, **kwargs):
    return np.asarray(layer(x, **kwargs))


@pytest.mark.parametrize("name", sorted(T.NEW_ACTIVATIONS))
def test_new_activations_match_keras_on_corners(name):
    values = np.stack([CORNERS, -CORNERS[::-1]])  # two rows for log_softmax's axis
    expected = np.asarray(keras.activations.get(name)(values))
    got = run(T.NEW_ACTIVATIONS[name].replace("{}", "{x}"), values)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    # and the Activation layer computes the same
    np.testing.assert_allclose(keras_out(L.Activation(name), values), expected, rtol=0, atol=0)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"negative_slope": 0.1},
        {"max_value": 6.0},
        {"max_value": 2.5},
        {"max_value": 0.0},
        {"threshold": 1.0},
        {"threshold": 1.0, "max_value": 3.0},
        {"negative_slope": 0.2, "threshold": 1.0},
        {"negative_slope": 0.2, "max_value": 3.0},
        {"negative_slope": 0.3, "max_value": 6.0, "threshold": 2.0},
    ],
)
def test_relu_layer_options_match_keras(options):
    full = {"max_value": None, "negative_slope": 0.0, "threshold": 0.0, **options}
    expression = T.relu("x", full["max_value"], full["negative_slope"], full["threshold"])
    expected = keras_out(L.ReLU(**options), CORNERS)
    np.testing.assert_allclose(run(expression, CORNERS), expected, rtol=1e-6, atol=1e-6)
    # the helper itself, whatever expression the options choose
    np.testing.assert_allclose(
        run("keras_relu({x}, **opts)", CORNERS, opts=full), expected, rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("slope", [0.3, 0.0, 0.01, 1.5])
def test_leaky_relu_layer(slope):
    layer = L.LeakyReLU() if slope == 0.3 else L.LeakyReLU(negative_slope=slope)
    np.testing.assert_allclose(run(T.leaky_relu("x", slope), CORNERS), keras_out(layer, CORNERS), rtol=1e-6)


@pytest.mark.parametrize("length", [1, 2, 5, 6, 7, 9])
@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_same_padding_is_tensorflows(length, kernel, stride):
    """The output length is ceil(length / stride), and the padding TF's SAME: the helper the
    programs hold and the compile-time function agree with Keras's Conv1D on every combination."""
    x = RNG.normal(size=(1, length, 1)).astype("float32")
    layer = L.Conv1D(1, kernel, strides=stride, padding="same", use_bias=False)
    layer.build(x.shape)
    layer.set_weights([np.arange(1, kernel + 1, dtype="float32").reshape(kernel, 1, 1) ** 2])
    expected = keras_out(layer, x)
    assert expected.shape[1] == -(-length // stride)
    weight = torch.from_numpy(layer.get_weights()[0].transpose(2, 1, 0).copy())
    channels_first = torch.from_numpy(x).transpose(1, 2)
    for padded in (
        F.pad(channels_first, T.same_padding(length, kernel, stride)),
        NS["pad_same"](channels_first, kernel, stride),
    ):
        got = F.conv1d(padded, weight, stride=stride).transpose(1, 2)
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-5)


def conv_module(layer):
    kernel = layer.get_weights()[0]  # (kernel, in, out): torch keeps (out, in, kernel)
    size, width, filters = kernel.shape
    module = nn.Conv1d(
        width, filters, size, stride=layer.strides[0], dilation=layer.dilation_rate[0], bias=layer.use_bias
    )
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(kernel.transpose(2, 1, 0).copy()))
        if layer.use_bias:
            module.bias.copy_(torch.from_numpy(layer.get_weights()[1]))
    return module


@pytest.mark.parametrize(
    "options",
    [
        {"kernel_size": 3},
        {"kernel_size": 2, "padding": "same"},
        {"kernel_size": 4, "padding": "same"},
        {"kernel_size": 3, "padding": "same", "strides": 2},
        {"kernel_size": 4, "padding": "same", "strides": 3},
        {"kernel_size": 3, "padding": "causal"},
        {"kernel_size": 2, "padding": "causal", "dilation_rate": 3},
        {"kernel_size": 3, "padding": "causal", "strides": 2},
        {"kernel_size": 3, "padding": "same", "dilation_rate": 2},
        {"kernel_size": 2, "strides": 2, "use_bias": False},
        {"kernel_size": 3, "dilation_rate": 2, "activation": "relu"},
    ],
)
@pytest.mark.parametrize("fixed_length", [True, False])
def test_conv1d_matches_keras(options, fixed_length):
    layer = L.Conv1D(5, **options)
    layer.build(X.shape)
    layer.set_weights([RNG.normal(size=w.shape).astype("float32") for w in layer.get_weights()])
    kernel, stride = options["kernel_size"], options.get("strides", 1)
    dilation = options.get("dilation_rate", 1)
    pad = T.padding(
        options.get("padding", "valid"), kernel, stride, dilation, X.shape[1] if fixed_length else None
    )
    activation = {"relu": "torch.relu({})"}.get(options.get("activation"), "{}")
    first = T.conv1d_input("x", pad, kernel, stride, dilation)
    got = run(activation.format(T.conv1d("conv", "x").flat()), run(first, X), conv=conv_module(layer))
    np.testing.assert_allclose(got, keras_out(layer, X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "pool, stride, mode",
    [(2, None, "valid"), (3, None, "valid"), (3, 1, "valid"), (2, 3, "valid"), (2, None, "same"),
     (3, None, "same"), (4, 1, "same"), (3, 2, "same"), (5, 3, "same"), (4, 4, "same")],
)  # fmt: skip
@pytest.mark.parametrize("which", ["max", "avg"])
def test_pooling1d_matches_keras(pool, stride, mode, which):
    layer = (L.MaxPooling1D if which == "max" else L.AveragePooling1D)(pool, strides=stride, padding=mode)
    expression = T.pool1d(which, "x", pool, pool if stride is None else stride, mode == "same")
    x = X.copy()
    x[0] = -np.abs(x[0])  # a padded cell must not win a max of negatives, nor count in a mean
    np.testing.assert_allclose(run(expression, x), keras_out(layer, x), rtol=1e-6, atol=1e-6)


def test_global_max_pooling_ignores_the_mask_as_keras():
    got = run(T.global_max_pooling("x"), X)
    np.testing.assert_array_equal(got, keras_out(L.GlobalMaxPooling1D(), X))


@pytest.mark.parametrize("dims", [(36,), (9, 2, 2), (-1, 2), (3, -1), (2, 18)])
def test_reshape_and_flatten_keep_keras_element_order(dims):
    expected = keras_out(L.Reshape(dims), X)
    np.testing.assert_array_equal(run(T.reshape("x", expected.shape[1:]), X), expected)
    np.testing.assert_array_equal(run(T.flatten("x"), X), keras_out(L.Flatten(), X))
    x4 = X.reshape(3, 3, 3, 4)
    np.testing.assert_array_equal(run(T.flatten("x"), x4), keras_out(L.Flatten(), x4))


def test_repeat_vector():
    v = X[:, 0]
    np.testing.assert_array_equal(run(T.repeat_vector("x", 4), v), keras_out(L.RepeatVector(4), v))


def test_noise_and_spatial_dropout_are_the_identity_at_inference():
    module = nn.Dropout1d(0.5).eval()
    np.testing.assert_array_equal(run(T.spatial_dropout1d("drop", "x"), X, drop=module), X)
    np.testing.assert_array_equal(keras_out(L.SpatialDropout1D(0.5), X), X)
    noise = NS["GaussianNoise"](0.5).eval()
    np.testing.assert_array_equal(noise(torch.from_numpy(X)).numpy(), X)
    np.testing.assert_array_equal(keras_out(L.GaussianNoise(0.5), X), X)


def test_spatial_dropout_in_training_drops_whole_channels_as_keras():
    module = nn.Dropout1d(0.5).train()
    got = run(T.spatial_dropout1d("drop", "x"), X + 10, drop=module)
    kept = got != 0
    assert (kept == kept[:, :1, :]).all() and 0 < kept.mean() < 1  # per sample and channel
    np.testing.assert_allclose(got[kept], ((X + 10) * 2)[kept], rtol=1e-6)
    y = np.asarray(L.SpatialDropout1D(0.5)(X + 10, training=True))
    k_kept = y != 0
    assert (k_kept == k_kept[:, :1, :]).all()
    np.testing.assert_allclose(y[k_kept], ((X + 10) * 2)[k_kept], rtol=1e-6)


def test_gaussian_noise_in_training_adds_noise_of_that_stddev():
    big = np.zeros((200, 50, 4), "float32")
    got = NS["GaussianNoise"](0.5).train()(torch.from_numpy(big)).numpy()
    assert abs(got.std() - 0.5) < 0.01
    assert abs(np.asarray(L.GaussianNoise(0.5)(big, training=True)).std() - 0.5) < 0.01


def batch_norm_pair(center=True, scale=True, epsilon=0.001, momentum=0.99):
    layer = L.BatchNormalization(center=center, scale=scale, epsilon=epsilon, momentum=momentum)
    layer.build(X.shape)
    arrays = [RNG.normal(size=w.shape).astype("float32") for w in layer.get_weights()]
    arrays[-1] = np.abs(arrays[-1]) + 0.05  # a variance
    arrays[-1][0] = 0.0  # epsilon alone under the square root
    layer.set_weights(arrays)
    module = NS["KerasBatchNormalization"](4, epsilon=epsilon, momentum=momentum, center=center, scale=scale)
    names = (["weight"] if scale else []) + (["bias"] if center else []) + ["running_mean", "running_var"]
    module.load_state_dict({name: torch.from_numpy(a) for name, a in zip(names, arrays)})
    return layer, module


@pytest.mark.parametrize("center, scale", [(True, True), (False, True), (True, False), (False, False)])
@pytest.mark.parametrize("epsilon", [0.001, 1e-5, 0.5])
def test_batch_normalization_inference_uses_the_moving_statistics(center, scale, epsilon):
    layer, module = batch_norm_pair(center, scale, epsilon)
    module.eval()
    got = module(torch.from_numpy(X)).detach().numpy()
    np.testing.assert_allclose(got, keras_out(layer, X), rtol=1e-6, atol=1e-5)
    flat = X[:, 0]  # after a layer that drops time
    flat_layer = L.BatchNormalization(center=center, scale=scale, epsilon=epsilon)
    flat_layer.build(flat.shape)
    flat_layer.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        module(torch.from_numpy(flat)).detach().numpy(), keras_out(flat_layer, flat), atol=1e-5
    )


@pytest.mark.parametrize("masked", [False, True])
def test_batch_normalization_training_updates_the_moving_statistics_as_keras(masked):
    layer, module = batch_norm_pair(momentum=0.9)
    module.train()
    mask = RNG.random(X.shape[:2]) > 0.4
    mask[2] = False  # a fully masked row
    kwargs = {"mask": mask} if masked else {}
    got = module(torch.from_numpy(X), torch.from_numpy(mask) if masked else None).detach().numpy()
    expected = np.asarray(layer(X, training=True, **kwargs))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(module.running_mean.numpy(), layer.moving_mean.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        module.running_var.numpy(), layer.moving_variance.numpy(), rtol=1e-5, atol=1e-6
    )
