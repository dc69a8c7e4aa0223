"""`layer_normalization`: Keras's LayerNormalization over the feature axis.

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
