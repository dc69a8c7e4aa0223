"""The IR-driven weight mapping between a Keras model and the generated PyTorch module.

Keras arrays are the lists `layer.get_weights()` returns (for `bidirectional`, the forward layer's
then the backward layer's); torch arrays are `state_dict()` entries. The mapping is pure numpy and
works both ways: kernels are transposed, GRU gate blocks reordered (Keras z, r, h; torch r, z, n),
and Keras's single bias split into torch's two (the recurrent one zero) or summed back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rnnspec.ir import Layer, Model

if TYPE_CHECKING:
    import numpy as np

# torch gate block i is Keras block ORDER[kind][i]
GATE_ORDER = {"lstm": (0, 1, 2, 3), "gru": (1, 0, 2), "simple_rnn": (0,)}


def _reorder(array: np.ndarray, kind: str, axis: int, inverse: bool = False) -> np.ndarray:
    import numpy as np

    order = GATE_ORDER[kind]
    if inverse:
        order = tuple(order.index(i) for i in range(len(order)))
    blocks = np.split(array, len(order), axis=axis)
    return np.concatenate([blocks[i] for i in order], axis=axis)


def keras_weight_shapes(model: Model) -> dict[str, list[tuple[int, ...]]]:
    """The shapes `get_weights()` gives for each layer that has weights, from the IR alone."""
    shapes: dict[str, list[tuple[int, ...]]] = {}
    for layer in model.layers:
        width = _input_width(model, layer)
        kind = layer.kind
        if kind == "embedding":
            shapes[layer.name] = [(layer.attrs["input_dim"], layer.attrs["output_dim"])]
        elif kind == "dense":
            units = layer.attrs["units"]
            shapes[layer.name] = [(width, units)] + ([(units,)] if layer.attrs["use_bias"] else [])
        elif kind == "attention_pooling":
            shapes[layer.name] = [(width, 1)]
        elif layer.recurrent is not None:
            one = _recurrent_shapes(layer.recurrent, width)
            shapes[layer.name] = one * (2 if layer.inner is not None else 1)
    return shapes


def _input_width(model: Model, layer: Layer) -> int:
    return model.values[layer.inputs[0]].shape[-1] or 0


def _recurrent_shapes(rec: Layer, width: int) -> list[tuple[int, ...]]:
    units = rec.attrs["units"]
    gates = len(GATE_ORDER[rec.kind])
    shapes = [(width, gates * units), (units, gates * units)]
    if rec.attrs["use_bias"]:
        if rec.kind == "gru" and rec.attrs["reset_after"]:
            shapes.append((2, gates * units))
        else:
            shapes.append((gates * units,))
    return shapes


def keras_to_torch(
    model: Model, keras_weights: dict[str, list[np.ndarray]], module=None
) -> dict[str, np.ndarray]:
    """Map Keras arrays (per layer name) to the generated module's state_dict entries.

    A user's layer maps by its spec's `weights` table, or by its torch class's `keras_to_torch`
    hook, which needs the built `module`.
    """
    import numpy as np

    from rnnspec.equivalence import extern

    state: dict[str, np.ndarray] = {}
    for layer in model.layers:
        arrays = keras_weights.get(layer.name, [])
        kind, name = layer.kind, layer.name
        if layer.extern is not None:
            sub = module.get_submodule(name) if module is not None else None
            for key, value in extern.keras_to_torch(layer, arrays, sub).items():
                state[f"{name}.{key}"] = value
        elif kind == "embedding":
            state[f"{name}.weight"] = arrays[0]
        elif kind == "dense":
            state[f"{name}.weight"] = arrays[0].T
            if layer.attrs["use_bias"]:
                state[f"{name}.bias"] = arrays[1]
        elif kind == "attention_pooling":
            state[f"{name}.kernel.weight"] = arrays[0].T
        elif layer.recurrent is not None:
            rec = layer.recurrent
            per = len(_recurrent_shapes(rec, 1))
            halves = [arrays[:per], arrays[per:]] if layer.inner is not None else [arrays]
            for suffix, half in zip(["", "_reverse"], halves):
                kernel, recurrent = half[0], half[1]
                prefix = f"{name}."
                state[f"{prefix}weight_ih_l0{suffix}"] = _reorder(kernel, rec.kind, 1).T
                state[f"{prefix}weight_hh_l0{suffix}"] = _reorder(recurrent, rec.kind, 1).T
                if not rec.attrs["use_bias"]:
                    continue
                bias = half[2]
                if rec.kind == "gru" and rec.attrs["reset_after"]:
                    state[f"{prefix}bias_ih_l0{suffix}"] = _reorder(bias[0], rec.kind, 0)
                    state[f"{prefix}bias_hh_l0{suffix}"] = _reorder(bias[1], rec.kind, 0)
                elif rec.kind == "gru":
                    state[f"{prefix}bias_ih_l0{suffix}"] = _reorder(bias, rec.kind, 0)
                else:
                    state[f"{prefix}bias_ih_l0{suffix}"] = _reorder(bias, rec.kind, 0)
                    state[f"{prefix}bias_hh_l0{suffix}"] = np.zeros_like(bias)
    return {key: np.ascontiguousarray(value, dtype=np.float32) for key, value in state.items()}


def torch_to_keras(model: Model, state: dict[str, np.ndarray], module=None) -> dict[str, list[np.ndarray]]:
    """The inverse of keras_to_torch: state_dict entries back to Keras arrays per layer."""
    import numpy as np

    from rnnspec.equivalence import extern

    weights: dict[str, list[np.ndarray]] = {}
    for layer in model.layers:
        kind, name = layer.kind, layer.name
        if layer.extern is not None:
            prefix = f"{name}."
            own = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
            sub = module.get_submodule(name) if module is not None else None
            arrays = extern.torch_to_keras(layer, own, sub)
            if arrays:
                weights[name] = arrays
        elif kind == "embedding":
            weights[name] = [state[f"{name}.weight"]]
        elif kind == "dense":
            weights[name] = [state[f"{name}.weight"].T]
            if layer.attrs["use_bias"]:
                weights[name].append(state[f"{name}.bias"])
        elif kind == "attention_pooling":
            weights[name] = [state[f"{name}.kernel.weight"].T]
        elif layer.recurrent is not None:
            rec = layer.recurrent
            arrays: list[np.ndarray] = []
            for suffix in ["", "_reverse"] if layer.inner is not None else [""]:

                def get(key: str, name: str = name, suffix: str = suffix) -> np.ndarray:
                    return state[f"{name}.{key}_l0{suffix}"]

                arrays.append(_reorder(get("weight_ih").T, rec.kind, 1, inverse=True))
                arrays.append(_reorder(get("weight_hh").T, rec.kind, 1, inverse=True))
                if not rec.attrs["use_bias"]:
                    continue
                if rec.kind == "gru" and rec.attrs["reset_after"]:
                    arrays.append(
                        np.stack(
                            [
                                _reorder(get("bias_ih"), rec.kind, 0, inverse=True),
                                _reorder(get("bias_hh"), rec.kind, 0, inverse=True),
                            ]
                        )
                    )
                elif rec.kind == "gru":
                    arrays.append(_reorder(get("bias_ih"), rec.kind, 0, inverse=True))
                else:
                    arrays.append(_reorder(get("bias_ih") + get("bias_hh"), rec.kind, 0, inverse=True))
            weights[name] = arrays
    return {key: [np.ascontiguousarray(a, dtype=np.float32) for a in value] for key, value in weights.items()}


def random_keras_weights(model: Model, seed: int) -> dict[str, list[np.ndarray]]:
    """Random arrays for every Keras weight, biases included (zero biases hide mapping bugs)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    weights: dict[str, list[np.ndarray]] = {}
    for name, shapes in keras_weight_shapes(model).items():
        arrays = []
        for shape in shapes:
            scale = 1.0 / np.sqrt(shape[0]) if len(shape) == 2 and shape[0] > 2 else 0.5
            arrays.append(rng.normal(0.0, scale, size=shape).astype(np.float32))
        weights[name] = arrays
    return weights


def get_keras_weights(model: Model, keras_model) -> dict[str, list[np.ndarray]]:
    weights = {}
    for layer in model.layers:
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
