"""`layer_normalization` and `batch_normalization`: Keras's normalisations over the feature axis.

`layer_normalization`: Keras's LayerNormalization over the feature axis.

Keras (TensorFlow backend) computes `x * inv + (beta - mean * inv)` with
`inv = rsqrt(variance + epsilon) * gamma`: epsilon inside the square root, the biased variance,
as torch's layer_norm. The mask passes through unchanged and unread (Keras: supports_masking), and
masked timesteps are normalised like the others. Pinned in tests/test_keras_facts.py.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rnnspec.ir import Attr, LayerSchema
from rnnspec.kinds.base import KerasArray, LayerKind


class LayerNormalization(LayerKind):
    name = "layer_normalization"
    schema = LayerSchema(
        (),
        {"epsilon": Attr("float", 0.001), "center": Attr("bool", True), "scale": Attr("bool", True)},
    )
    keras_class = "keras.layers.LayerNormalization"
    h5_name = "layer_normalization"
    keras_fixed: ClassVar[dict[str, tuple[tuple[Any, ...], str]]] = {
        "axis": ((-1, [-1]), "only normalisation over the last axis (axis=-1) has an equivalent"),
        "rms_scaling": ((False,), "rms_scaling=True has no equivalent"),
    }
    arrays = (
        KerasArray(
            "gamma", lambda layer, width: (width,), "weight", present=lambda layer: layer.attrs["scale"]
        ),
        KerasArray(
            "beta", lambda layer, width: (width,), "bias", present=lambda layer: layer.attrs["center"]
        ),
    )


class BatchNormalization(LayerKind):
    """Keras's BatchNormalization over the last axis. Inference normalises with the moving
    statistics (tf.nn.batch_normalization's order: inv = rsqrt(variance + epsilon) * gamma, then
    x * inv + (beta - mean * inv)); training with the batch's mean and biased variance, over the
    unmasked steps under a mask, updating the moving statistics with Keras's momentum. The moving
    statistics are torch buffers (`running_mean`, `running_var`), which port carries. The mask
    passes on. Pinned in tests/test_keras_facts.py (fact 52)."""

    name = "batch_normalization"
    schema = LayerSchema(
        (),
        {
            "epsilon": Attr("float", 0.001),
            "momentum": Attr("rate", 0.99),
            "center": Attr("bool", True),
            "scale": Attr("bool", True),
        },
    )
    keras_class = "keras.layers.BatchNormalization"
    h5_name = "batch_normalization"
    reads_mask = True  # in training, the batch statistics are the unmasked steps'
    mixes_rows_in_training = True
    keras_fixed: ClassVar[dict[str, tuple[tuple[Any, ...], str]]] = {
        "axis": ((-1, [-1]), "only normalisation over the last axis (axis=-1) has an equivalent"),
        "renorm": ((False,), "batch renormalisation (renorm=True) has no equivalent"),
        "synchronized": ((False,), "synchronized batch statistics have no equivalent"),
    }
    arrays = (
        KerasArray(
            "gamma", lambda layer, width: (width,), "weight", present=lambda layer: layer.attrs["scale"]
        ),
        KerasArray(
            "beta", lambda layer, width: (width,), "bias", present=lambda layer: layer.attrs["center"]
        ),
        # Non-trainable weights in Keras (counted in its parameters), buffers in torch (not).
        KerasArray("moving_mean", lambda layer, width: (width,), "running_mean", buffer=True),
        KerasArray(
            "moving_variance", lambda layer, width: (width,), "running_var", positive=True, buffer=True
        ),
    )
