"""The Keras halves of the example user layers (keras_layers.py and torch_layers.py are a pair)."""

import keras
from keras import ops


class TemporalSoftmax(keras.layers.Layer):
    """The masking guide's custom layer: a softmax over the unmasked timesteps.

    It consumes the mask (`call(inputs, mask=None)`), and its `compute_mask` returns None: no
    mask flows on (without it Keras drops the mask too, with a warning). The guide divides by
    the sum over the last axis; a softmax over time divides by the sum over axis 1, as here. A
    fully masked row gives zeros.
    """

    def call(self, inputs, mask=None):
        exp = ops.exp(inputs)
        if mask is not None:
            exp = exp * ops.expand_dims(ops.cast(mask, exp.dtype), -1)
        total = ops.sum(exp, axis=1, keepdims=True)
        return exp / ops.maximum(total, 1e-30)

    def compute_mask(self, inputs, mask=None):
        return None


class SilenceMask(keras.layers.Layer):
    """Marks as padding each timestep whose features all lie within +-threshold (silence).

    It produces a mask (`compute_mask`) and leaves its input unchanged. `call` returns a new
    tensor: Keras keeps a mask already attached to a layer's output instead of calling
    `compute_mask`, so returning `inputs` itself would pass the old mask on.
    """

    def __init__(self, threshold=0.5, **kwargs):
        super().__init__(**kwargs)
        self.threshold = threshold

    def call(self, inputs, mask=None):
        return ops.copy(inputs)

    def compute_mask(self, inputs, mask=None):
        loud = ops.any(ops.abs(inputs) > self.threshold, axis=-1)
        return loud if mask is None else ops.logical_and(loud, mask)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


class ScaleShift(keras.layers.Layer):
    """A learned scale and shift per feature, applied at every timestep; keeps the mask."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def build(self, input_shape):
        features = input_shape[-1]
        self.scale = self.add_weight(name="scale", shape=(features,), initializer="ones")
        self.shift = self.add_weight(name="shift", shape=(features,), initializer="zeros")

    def call(self, inputs, mask=None):
        return inputs * self.scale + self.shift


class AttentionPool(keras.layers.Layer):
    """Additive attention over the unmasked timesteps, then the weighted sum over time.

    score_t = v . tanh(W h_t + b); a softmax over the unmasked steps; a fully masked row pools
    to zeros. It consumes the mask: `compute_mask` returns None.
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        features = input_shape[-1]
        self.kernel = self.add_weight(name="kernel", shape=(features, self.units))
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self.score = self.add_weight(name="score", shape=(self.units, 1))

    def call(self, inputs, mask=None):
        hidden = ops.tanh(ops.matmul(inputs, self.kernel) + self.bias)
        scores = ops.squeeze(ops.matmul(hidden, self.score), axis=-1)
        if mask is not None:
            scores = ops.where(mask, scores, -1e9)
        weights = ops.softmax(scores, axis=-1)
        if mask is not None:
            weights = weights * ops.cast(mask, weights.dtype)
        return ops.sum(inputs * ops.expand_dims(weights, -1), axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "units": self.units}
