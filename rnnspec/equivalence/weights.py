"""The IR-driven weight mapping between a Keras model and the generated PyTorch module.

Keras arrays are the lists `layer.get_weights()` returns (for `bidirectional`, the forward layer's
then the backward layer's); torch arrays are `state_dict()` entries. The mapping is pure numpy and
works both ways; each kind declares its own (rnnspec/kinds/).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rnnspec.equivalence import extern
from rnnspec.ir import MERGE_KINDS, Layer, Model
from rnnspec.kinds import kind_of

if TYPE_CHECKING:
    import numpy as np


def keras_weight_shapes(model: Model) -> dict[str, list[tuple[int, ...]]]:
    """The shapes `get_weights()` gives for each layer that has weights, from the IR alone."""
    shapes: dict[str, list[tuple[int, ...]]] = {}
    for layer in model.layers:
        if layer.extern is not None:
            continue  # only the user's built classes know their weights
        found = [shape for _, shape in kind_of(layer).keras_weights(layer, _input_width(model, layer))]
        if found:
            shapes[layer.name] = found
    return shapes


def _input_width(model: Model, layer: Layer) -> int:
    return model.values[layer.inputs[0]].shape[-1] or 0


def keras_to_torch(
    model: Model, keras_weights: dict[str, list[np.ndarray]], module=None
) -> dict[str, np.ndarray]:
    """Map Keras arrays (per layer name) to the generated module's state_dict entries.

    Each kind maps its own (rnnspec/kinds/); a user's layer maps by its spec's `weights` table, or
    by its torch class's `keras_to_torch` hook, which needs the built `module`.
    """
    import numpy as np

    state: dict[str, np.ndarray] = {}
    for layer in model.layers:
        arrays = keras_weights.get(layer.name, [])
        name = layer.name
        if layer.extern is not None:
            sub = module.get_submodule(name) if module is not None else None
            mapped = extern.keras_to_torch(layer, arrays, sub)
        else:
            mapped = kind_of(layer).keras_to_torch(layer, arrays)
        for key, value in mapped.items():
            state[f"{name}.{key}"] = value
    return {key: np.ascontiguousarray(value, dtype=np.float32) for key, value in state.items()}


def torch_to_keras(model: Model, state: dict[str, np.ndarray], module=None) -> dict[str, list[np.ndarray]]:
    """The inverse of keras_to_torch: state_dict entries back to Keras arrays per layer."""
    import numpy as np

    weights: dict[str, list[np.ndarray]] = {}
    for layer in model.layers:
        name = layer.name
        prefix = f"{name}."
        own = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
        if layer.extern is not None:
            sub = module.get_submodule(name) if module is not None else None
            arrays = extern.torch_to_keras(layer, own, sub)
        else:
            arrays = kind_of(layer).torch_to_keras(layer, own)
        if arrays:
            weights[name] = arrays
    return {key: [np.ascontiguousarray(a, dtype=np.float32) for a in value] for key, value in weights.items()}


def random_keras_weights(model: Model, seed: int) -> dict[str, list[np.ndarray]]:
    """Random arrays for every Keras weight, biases included (zero biases hide mapping bugs)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    weights: dict[str, list[np.ndarray]] = {}
    for name, shapes in keras_weight_shapes(model).items():
        layer = next(one for one in model.layers if one.name == name)
        positive = kind_of(layer).positive_weights(layer)
        arrays = []
        for shape, above_zero in zip(shapes, positive + [False] * len(shapes)):
            scale = 1.0 / np.sqrt(shape[0]) if len(shape) == 2 and shape[0] > 2 else 0.5
            array = rng.normal(0.0, scale, size=shape).astype(np.float32)
            # A variance: above zero (a moving variance of zero would test epsilon alone).
            arrays.append(np.abs(array) + np.float32(0.05) if above_zero else array)
        weights[name] = arrays
    return weights


def get_keras_weights(model: Model, keras_model) -> dict[str, list[np.ndarray]]:
    weights = {}
    for layer in model.layers:
        if layer.kind in MERGE_KINDS:
            continue  # no weights (and an unnamed merge is named by Keras)
        klayer = keras_model.get_layer(layer.name)
        if layer.inner is not None:
            weights[layer.name] = klayer.forward_layer.get_weights() + klayer.backward_layer.get_weights()
        elif klayer.weights:
            weights[layer.name] = klayer.get_weights()
    return weights


def set_keras_weights(model: Model, keras_model, weights: dict[str, list[np.ndarray]]) -> None:
    for layer in model.layers:
        if layer.name not in weights:
            continue
        klayer = keras_model.get_layer(layer.name)
        arrays = weights[layer.name]
        if layer.inner is not None:
            half = len(arrays) // 2
            klayer.forward_layer.set_weights(arrays[:half])
            klayer.backward_layer.set_weights(arrays[half:])
        else:
            klayer.set_weights(arrays)


def load_torch_state(module, state: dict[str, np.ndarray]) -> None:
    """Load mapped arrays into a module, refusing any missing or unexpected entry."""
    import torch

    tensors = {key: torch.from_numpy(value.copy()) for key, value in state.items()}
    module.load_state_dict(tensors, strict=True)
