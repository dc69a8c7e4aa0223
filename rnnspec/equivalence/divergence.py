"""Where a user's layer first makes the two programs differ, for verify's layer-by-layer report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rnnspec.equivalence import harness
from rnnspec.equivalence import inputs as inputs_mod
from rnnspec.equivalence import weights as weights_mod
from rnnspec.equivalence.extern import random_weights
from rnnspec.ir import Model

if TYPE_CHECKING:
    import numpy as np


def first_difference(
    model: Model,
    programs: Any,
    *,
    seed: int = 0,
    atol: float = 1e-5,
    rtol: float = 0.0,
    batch: int = 6,
    steps: int = 7,
    chunks: int = 3,
    keras_weights: dict[str, list[np.ndarray]] | None = None,
) -> str | None:
    """For a model cut after a user's layer: the first position, in verify's order (batch, row,
    timestep, feature), where the two programs' outputs differ, or, for `mask = produce`, where
    the Keras mask and the PyTorch `compute_mask` first differ; None when both agree.

    A produced mask is not an output, so comparing outputs cannot see it: without this the next
    layer would take the blame. The weights and batches are verify's own.
    """
    import numpy as np
    import torch
    from keras.src.backend import get_keras_mask

    layer = model.layers[-1]
    assert layer.extern is not None
    keras_model = harness.load_program(programs.keras_code, f"{model.name}_keras_cut").build_model()
    torch_module = harness.load_program(programs.torch_code, f"{model.name}_pytorch_cut").build_model()
    if keras_weights is None:
        keras_weights = weights_mod.random_keras_weights(model, seed)
        keras_weights.update(random_weights(model, keras_model, seed))
    weights_mod.set_keras_weights(model, keras_model, keras_weights)
    weights_mod.load_torch_state(torch_module, weights_mod.keras_to_torch(model, keras_weights, torch_module))
    torch_module.eval()
    produced: list[Any] = []
    called: list[tuple[Any, Any]] = []  # the user module's input and mask, as forward got them
    if layer.extern.mask == "produce":
        sub = torch_module.get_submodule(layer.name)
        compute_mask, forward = sub.compute_mask, sub.forward

        def recording(*args: Any, **kwargs: Any) -> Any:
            produced.append(compute_mask(*args, **kwargs))
            return produced[-1]

        def recording_forward(x: Any, *args: Any, **kwargs: Any) -> Any:
            called.append((x, kwargs.get("mask", args[0] if args else None)))
            return forward(x, *args, **kwargs)

        # On the instance: the class stays the user's.
        sub.compute_mask, sub.forward = recording, recording_forward
    if model.stateful:
        batches = inputs_mod.chunks(model, chunks, steps, seed)
    else:
        batches = inputs_mod.cases(model, batch, steps, seed)
    for case in batches:
        produced.clear()
        called.clear()
        keras_out = keras_model(case.array, training=False)
        with torch.no_grad():
            torch_out = torch_module(torch.from_numpy(case.array))
        k, t = (
            harness.to_numpy(keras_out)[0].astype(np.float64),
            harness.to_numpy(torch_out)[0].astype(np.float64),
        )
        if k.shape != t.shape:
            return f"its output has shape {k.shape} in Keras, {t.shape} in PyTorch (batch '{case.name}')"
        with np.errstate(invalid="ignore"):
            bad = ~((k == t) | (np.isnan(k) & np.isnan(t))) & ~(np.abs(k - t) <= atol + rtol * np.abs(k))
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            return (
                f"its output first differs at {_position(where)} of batch '{case.name}': "
                f"keras {k[where]:.7g}, pytorch {t[where]:.7g}"
            )
        if layer.extern.mask != "produce":
            continue
        if not produced and called:
            # The program, cut after this layer, has no later layer to read the mask: ask for it.
            with torch.no_grad():
                produced.append(compute_mask(*called[-1]))
        keras_mask = get_keras_mask(keras_out)
        km = np.asarray(keras_mask, dtype=bool) if keras_mask is not None else None
        tm = produced[-1].detach().cpu().numpy().astype(bool) if produced else None
        if km is None or tm is None or km.shape != tm.shape:
            shape = lambda m: "no mask" if m is None else f"a mask of shape {m.shape}"  # noqa: E731
            return f"in batch '{case.name}', Keras gives {shape(km)}, PyTorch {shape(tm)}"
        if (km != tm).any():
            row, step = (int(i) for i in np.argwhere(km != tm)[0])
            return (
                f"its mask first differs at row {row}, timestep {step} of batch '{case.name}': "
                f"keras {bool(km[row, step])}, pytorch {bool(tm[row, step])}"
            )
    return None


def _position(index: tuple[int, ...]) -> str:
    names = ["row", "timestep", "feature"] if len(index) == 3 else ["row", "feature"]
    return ", ".join(f"{name} {value}" for name, value in zip(names, index))
