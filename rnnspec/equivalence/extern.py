"""User layers (`extern layer`) at verification time: where their code is imported from, their
weights, and whether each class keeps the mask contract its spec declares.

verify imports and runs the user's modules: the spec's directory and the current directory are
put first on sys.path while a spec is verified.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnnspec.ir import Layer, Model

if TYPE_CHECKING:
    import numpy as np


class ExternContractError(Exception):
    """A user's class does not do what its `extern layer` block declares (verify exits 2)."""


@contextlib.contextmanager
def user_code_path(spec_path: str | Path, model: Model | None = None) -> Iterator[None]:
    """Import the user's modules from the spec's directory, then the current directory.

    The packages of `model`'s user layers are forgotten afterwards, so that the next spec, from
    another directory, imports its own `my_layers` rather than this one's.
    """
    entries = list(dict.fromkeys([str(Path(spec_path).resolve().parent), str(Path.cwd())]))
    users = [layer.extern for layer in extern_layers(model)] if model is not None else []
    packages = {path.module.split(".")[0] for ext in users if ext for path in (ext.keras, ext.pytorch)}
    before = set(sys.modules)
    sys.path[:0] = entries
    try:
        yield
    finally:
        for entry in entries:
            with contextlib.suppress(ValueError):
                sys.path.remove(entry)
        for name in set(sys.modules) - before:
            if name.split(".")[0] in packages:
                del sys.modules[name]


def extern_layers(model: Model) -> list[Layer]:
    return [layer for layer in model.layers if layer.extern is not None]


def describe_layer(layer: Layer) -> str:
    """`attend` (your layer `Scorer`: pkg.k:Scorer / pkg.t:Scorer), for reports."""
    ext = layer.extern
    assert ext is not None
    return (
        f"`{layer.name}` (your layer `{ext.name}`: {ext.keras.text} in Keras, {ext.pytorch.text} in PyTorch)"
    )


def random_weights(model: Model, keras_model: Any, seed: int) -> dict[str, list[np.ndarray]]:
    """Random arrays for the user layers' Keras weights; their shapes come from the built layers."""
    import numpy as np

    rng = np.random.default_rng([seed, 15])
    weights: dict[str, list[np.ndarray]] = {}
    for layer in extern_layers(model):
        arrays = []
        for current in keras_model.get_layer(layer.name).get_weights():
            shape = current.shape
            scale = 1.0 / np.sqrt(shape[0]) if len(shape) == 2 and shape[0] > 2 else 0.5
            arrays.append(rng.normal(0.0, scale, size=shape).astype(np.float32))
        if arrays:
            weights[layer.name] = arrays
    return weights


def keras_to_torch(layer: Layer, arrays: list[np.ndarray], module: Any | None) -> dict[str, np.ndarray]:
    """One user layer's Keras arrays as state_dict entries of its torch module (names relative to it)."""
    import numpy as np

    ext = layer.extern
    assert ext is not None
    if ext.weights is not None:
        if len(arrays) != len(ext.weights):
            raise ExternContractError(
                f"layer {describe_layer(layer)}: its Keras layer has {len(arrays)} weight arrays, and the "
                f"`weights` table of `{ext.name}` lists {len(ext.weights)}"
            )
        return {entry.key: (a.T if entry.transpose else a) for entry, a in zip(ext.weights, arrays)}
    hook = getattr(module, "keras_to_torch", None) if module is not None else None
    if not arrays:
        return {}
    if hook is None:
        raise ExternContractError(
            f"layer {describe_layer(layer)} has {len(arrays)} Keras weight arrays, and nothing says where they "
            f"go in PyTorch: add a `weights = [...]` table to `extern layer {ext.name}`, or a "
            f"`keras_to_torch(arrays)` static method to {ext.pytorch.text}"
        )
    mapped = hook([np.array(a) for a in arrays])
    if not isinstance(mapped, dict):
        raise ExternContractError(
            f"{ext.pytorch.text}.keras_to_torch returned a {type(mapped).__name__}, not a dict of parameter "
            "names to arrays"
        )
    return {str(key): np.asarray(value) for key, value in mapped.items()}


def torch_to_keras(layer: Layer, state: dict[str, np.ndarray], module: Any | None) -> list[np.ndarray]:
    """The inverse, for porting: entries named relative to the layer's module."""
    import numpy as np

    ext = layer.extern
    assert ext is not None
    if ext.weights is not None:
        return [state[entry.key].T if entry.transpose else state[entry.key] for entry in ext.weights]
    if not state:
        return []
    hook = getattr(module, "torch_to_keras", None) if module is not None else None
    if hook is None:
        raise ExternContractError(
            f"layer {describe_layer(layer)}: nothing says how its PyTorch parameters become Keras weights: "
            f"add a `weights = [...]` table to `extern layer {ext.name}`, or a `torch_to_keras(state)` static "
            f"method to {ext.pytorch.text}"
        )
    return [np.asarray(a) for a in hook(dict(state))]


def check_contracts(model: Model, keras_model: Any, torch_module: Any) -> None:
    """Each user class does what its spec's `mask = ...` says, in the way Keras honours it."""
    import keras

    for layer in extern_layers(model):
        ext = layer.extern
        assert ext is not None
        klayer = keras_model.get_layer(layer.name)
        overrides = type(klayer).compute_mask is not keras.layers.Layer.compute_mask
        problems = []
        if ext.mask == "keep" and not klayer.supports_masking:
            problems.append(
                f"{ext.keras.text} must set `self.supports_masking = True` (mask = keep); without it Keras "
                "drops the mask after the layer"
            )
        if ext.mask == "produce" and not overrides:
            problems.append(
                f"{ext.keras.text} must define `compute_mask(inputs, mask=None)` (mask = produce)"
            )
        if ext.mask == "consume" and klayer.supports_masking and not overrides:
            problems.append(
                f"{ext.keras.text} sets `supports_masking` without a `compute_mask` that returns None, so Keras "
                "passes the mask on (mask = consume); use `mask = keep`, or drop `supports_masking`"
            )
        tmodule = torch_module.get_submodule(layer.name)
        if ext.mask == "produce" and not callable(getattr(tmodule, "compute_mask", None)):
            problems.append(f"{ext.pytorch.text} must define `compute_mask(x, mask=None)` (mask = produce)")
        parameters = inspect.signature(tmodule.forward).parameters.values()
        if not any(p.name == "mask" or p.kind is p.VAR_KEYWORD for p in parameters):
            problems.append(f"{ext.pytorch.text}.forward must take `mask=None`, as Keras's call does")
        if problems:
            raise ExternContractError(
                f"layer {describe_layer(layer)} does not keep its declared contract:\n"
                + "\n".join(f"  {p}" for p in problems)
            )
