"""Build both programs, give them the same random weights, feed them the same inputs, compare."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnspec.equivalence import extern as extern_mod
from rnnspec.equivalence import inputs as inputs_mod
from rnnspec.equivalence import weights as weights_mod
from rnnspec.ir import Model


def configure_frameworks() -> None:
    """The reference is Keras 3 on TensorFlow's generic CPU path; keep TF quiet."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


_counter = 0


def load_program(code: str, label: str) -> Any:
    """Import generated (or user-edited) source as a fresh module."""
    global _counter
    _counter += 1
    name = f"rnnspec_program_{_counter}"
    directory = Path(tempfile.mkdtemp(prefix="rnnspec-"))
    path = directory / f"{label}.py"
    path.write_text(code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Worst:
    output: int = 0
    row: int = 0
    timestep: int | None = None
    case: str = ""
    keras: float = 0.0
    torch: float = 0.0


@dataclass
class Result:
    name: str
    passed: bool = True
    max_abs_diff: float = 0.0
    max_rel_diff: float = 0.0
    worst: Worst = field(default_factory=Worst)
    cases: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    first_divergent_layer: str | None = None
    divergence: str | None = None  # at a user's layer: which one, and what differs there
    error: str | None = None
    gradients: Any = None  # a gradients.GradientResult, with `verify --gradients`

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "max_abs_diff": self.max_abs_diff,
            "max_rel_diff": self.max_rel_diff,
            "worst": vars(self.worst),
            "cases": self.cases,
            "outputs": self.outputs,
            "first_divergent_layer": self.first_divergent_layer,
            "divergence": self.divergence,
            "error": self.error,
            **({"gradients": self.gradients.as_json()} if self.gradients is not None else {}),
        }


def to_numpy(values: Any) -> list[Any]:
    import numpy as np

    if not isinstance(values, (list, tuple)):
        values = [values]
    out = []
    for value in values:
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        out.append(np.asarray(value))
    return out


def compare(
    result: Result, case: str, keras_out: list[Any], torch_out: list[Any], atol: float, rtol: float
) -> None:
    """Fold one batch's comparison into `result`: every output, every position, NaN == NaN."""
    import numpy as np

    if len(keras_out) != len(torch_out):
        result.passed = False
        result.error = f"Keras returns {len(keras_out)} tensors, PyTorch {len(torch_out)}"
        return
    for index, (k, t) in enumerate(zip(keras_out, torch_out)):
        if k.shape != t.shape:
            result.passed = False
            result.error = f"output {index}: Keras shape {k.shape}, PyTorch shape {t.shape} ({case})"
            return
        k = k.astype(np.float64)
        t = t.astype(np.float64)
        same = (k == t) | (np.isnan(k) & np.isnan(t))  # equal infinities and NaN == NaN agree
        with np.errstate(invalid="ignore"):
            diff = np.where(same, 0.0, np.abs(k - t))
        diff = np.where(np.isnan(diff), np.inf, diff)
        rel = diff / np.maximum(np.abs(k), 1e-12)
        bad = diff > atol + rtol * np.abs(np.nan_to_num(k))
        if bad.any():
            result.passed = False
        if diff.size and diff.max() >= result.max_abs_diff:
            where = np.unravel_index(int(np.argmax(diff)), diff.shape)
            result.max_abs_diff = float(diff.max())
            result.worst = Worst(
                output=index,
                row=int(where[0]),
                timestep=int(where[1]) if diff.ndim == 3 else None,
                case=case,
                keras=float(k[where]),
                torch=float(t[where]),
            )
        if rel.size:
            result.max_rel_diff = max(result.max_rel_diff, float(np.where(bad | (diff > atol), rel, 0).max()))


def run_keras(model: Any, x: Any) -> list[Any]:
    return to_numpy(model(x, training=False))


def run_torch(module: Any, x: Any) -> list[Any]:
    import torch

    with torch.no_grad():
        return to_numpy(module(torch.from_numpy(x)))


@dataclass
class Programs:
    keras_code: str
    torch_code: str


def verify(
    model: Model,
    programs: Programs,
    *,
    seed: int = 0,
    atol: float = 1e-5,
    rtol: float = 0.0,
    batch: int = 6,
    steps: int = 7,
    chunks: int = 3,
    keras_weights: dict[str, list[Any]] | None = None,
) -> Result:
    """Check that the two programs compute the same function on one model's inputs."""
    configure_frameworks()
    result = Result(model.name, outputs=list(model.outputs))
    keras_program = load_program(programs.keras_code, f"{model.name}_keras")
    torch_program = load_program(programs.torch_code, f"{model.name}_pytorch")
    keras_model = keras_program.build_model()
    torch_module = torch_program.build_model()
    extern_mod.check_contracts(model, keras_model, torch_module)
    if keras_weights is None:
        weights = weights_mod.random_keras_weights(model, seed)
        weights.update(extern_mod.random_weights(model, keras_model, seed))
    else:
        weights = keras_weights
    weights_mod.set_keras_weights(model, keras_model, weights)
    weights_mod.load_torch_state(torch_module, weights_mod.keras_to_torch(model, weights, torch_module))
    torch_module.eval()

    if model.stateful:
        batches = inputs_mod.chunks(model, 2 * chunks, steps, seed)
        for number, case in enumerate(batches):
            if number == chunks:
                keras_program.reset_states(keras_model)
                torch_module.reset_states()
                result.cases.append("reset")
            label = case.name if number < chunks else f"after reset, chunk {number - chunks + 1}"
            result.cases.append(label)
            compare(
                result,
                label,
                run_keras(keras_model, case.array),
                run_torch(torch_module, case.array),
                atol,
                rtol,
            )
    else:
        for case in inputs_mod.cases(model, batch, steps, seed):
            result.cases.append(case.name)
            compare(
                result,
                case.name,
                run_keras(keras_model, case.array),
                run_torch(torch_module, case.array),
                atol,
                rtol,
            )
    return result
