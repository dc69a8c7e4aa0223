"""Build both programs, give them the same random weights, feed them the same inputs, compare."""

from __future__ import annotations

import contextlib
import linecache
import math
import os
import sys
import types
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rnnspec.equivalence import extern as extern_mod
from rnnspec.equivalence import inputs as inputs_mod
from rnnspec.equivalence import weights as weights_mod
from rnnspec.graph import shown
from rnnspec.ir import Model
from rnnspec.kinds import kind_of
from rnnspec.options import VerifyOptions


def configure_frameworks() -> None:
    """The reference is Keras 3 on TensorFlow's generic CPU path; keep TF quiet."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # Where a layer drops a mask, Keras warns at every build and call; `rnnspec check` says it once.
    warnings.filterwarnings("ignore", message=".*does not support masking", category=UserWarning)


_counter = 0


def load_program(code: str, label: str) -> Any:
    """Import generated (or user-edited) source as a fresh module, without writing a file.

    The source is compiled under the name `<rnnspec LABEL>` and registered with linecache, so
    tracebacks still show its lines; nothing is left on disk.
    """
    global _counter
    _counter += 1
    name = f"rnnspec_program_{_counter}"
    filename = f"<rnnspec {label}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(compile(code, filename, "exec"), module.__dict__)
    return module


# Two programs that compute the same function agree to this in float64, relative to
# max(|value|, 1). Far above float64 round-off (1e-16 per operation), far below any semantic
# slip; wide enough for the frameworks' documented float64 differences, such as `gelu`'s erf
# (5e-9, pinned in tests/test_keras_facts.py).
FLOAT64_TOLERANCE = 1e-7


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
    error: str | None = None  # the programs did not run
    gradients: Any = None  # a gradients.GradientResult, with `verify --gradients`
    problem: str | None = None  # they ran, but returned a different number or shape of tensors
    modes: list[str] = field(default_factory=list)  # which modes of the module were proved
    returned_training: bool | None = None  # the mode build_model() returned the module in
    batches_run: int = 0
    float64_diff: float | None = None  # relative, where the float32 comparison failed
    float64_case: str | None = None  # the batch of the float64 difference
    float64_overflow: int = 0  # values that overflow float64 in both programs (not judged)
    float64_error: str | None = None  # why the float64 rerun could not run
    roundoff: bool = False  # float32 differed beyond tolerance, float64 agrees
    train_skipped: str | None = None  # why .train() was not compared

    def as_json(self) -> dict[str, Any]:
        found = {
            "name": self.name,
            "passed": self.passed,
            "roundoff": self.roundoff,
            "cases": self.cases,
            "batches_run": self.batches_run,
            "modes": self.modes,
            "outputs": self.outputs,
            "first_divergent_layer": self.first_divergent_layer,
            "divergence": self.divergence,
            "error": self.error,
            "problem": self.problem,
            "float64_case": self.float64_case,
            "float64_overflow": self.float64_overflow,
            "float64_error": self.float64_error,
        }
        if self.gradients is not None:
            found["gradients"] = self.gradients.as_json()
        numbers = {
            "max_abs_diff": self.max_abs_diff,
            "max_rel_diff": self.max_rel_diff,
            "float64_diff": self.float64_diff,
        }
        found.update(json_numbers(numbers))
        found["worst"] = {
            "output": self.worst.output,
            "row": self.worst.row,
            "timestep": self.worst.timestep,
            "case": self.worst.case,
            **json_numbers({"keras": self.worst.keras, "torch": self.worst.torch}),
        }
        return found


def json_numbers(values: dict[str, float | None]) -> dict[str, Any]:
    """JSON has no inf or NaN: such a value becomes null, with its text in `NAME_text`."""
    found: dict[str, Any] = {}
    for key, value in values.items():
        if value is not None and not math.isfinite(value):
            found[key] = None
            found[f"{key}_text"] = str(value)
        else:
            found[key] = value
    return found


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


def same_structure(result: Result, case: str, keras_out: list[Any], torch_out: list[Any]) -> bool:
    """Whether both programs returned as many tensors, of the same shapes; if not, say so."""
    if len(keras_out) != len(torch_out):
        result.problem = f"Keras returns {len(keras_out)} tensors, PyTorch {len(torch_out)} (batch '{case}')"
    else:
        for index, (k, t) in enumerate(zip(keras_out, torch_out)):
            if k.shape != t.shape:
                result.problem = (
                    f"output {index}: Keras shape {k.shape}, PyTorch shape {t.shape} (batch '{case}')"
                )
                break
    if result.problem is not None:
        result.passed = False
        return False
    return True


def differences(k: Any, t: Any) -> Any:
    """|k - t| in float64 at every position: 0 where both are equal (infinities, NaN and NaN
    included), inf where only one is NaN."""
    import numpy as np

    k = k.astype(np.float64)
    t = t.astype(np.float64)
    same = (k == t) | (np.isnan(k) & np.isnan(t))
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(same, 0.0, np.abs(k - t))
    return np.where(np.isnan(diff), np.inf, diff)


def compare(
    result: Result, case: str, keras_out: list[Any], torch_out: list[Any], atol: float, rtol: float
) -> None:
    """Fold one batch's comparison into `result`: every output, every position, NaN == NaN."""
    import numpy as np

    if not same_structure(result, case, keras_out, torch_out):
        return
    for index, (k, t) in enumerate(zip(keras_out, torch_out)):
        diff = differences(k, t)
        k = k.astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            rel = diff / np.maximum(np.abs(k), 1e-12)
            rel = np.where(np.isnan(rel), np.inf, rel)  # against a NaN in Keras
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


@dataclass
class Programs:
    keras_code: str
    torch_code: str


def has_dropout(model: Model) -> bool:
    """Whether any layer drops units in training: then training-mode outputs are random."""
    for layer in model.layers:
        if layer.kind == "dropout" and layer.attrs["rate"] > 0:
            return True
        rec = layer.recurrent
        if rec is not None and (rec.attrs["dropout"] > 0 or rec.attrs["recurrent_dropout"] > 0):
            return True
        if layer.extern is None and kind_of(layer).random_in_training(layer):
            return True  # noise, dropped channels
    return False


@contextlib.contextmanager
def keras_float64() -> Iterator[None]:
    """Keras layers built inside compute in float64."""
    import keras

    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)


class TorchFailed(Exception):
    """The PyTorch program raised on a batch that the Keras program computed."""

    case = ""


class Pair:
    """The Keras model and the PyTorch module, each as its program's `build_model()` returns it."""

    def __init__(self, model: Model, programs: Programs, *, float64: bool = False) -> None:
        self.model = model
        self.float64 = float64
        suffix = "64" if float64 else ""
        self.keras_program = load_program(programs.keras_code, f"{model.name}_keras{suffix}")
        torch_program = load_program(programs.torch_code, f"{model.name}_pytorch{suffix}")
        with keras_float64() if float64 else contextlib.nullcontext():
            self.keras_model = self.keras_program.build_model()
        self.torch_module = torch_program.build_model()
        self.returned_training = bool(getattr(self.torch_module, "training", False))
        extern_mod.check_contracts(model, self.keras_model, self.torch_module)
        self._keras_calls: dict[tuple[bool, tuple[int, ...]], Any] = {}

    def keras_call(self, x: Any, training: bool) -> Any:
        """`model(x, training=...)`; over a long sequence traced once, as `model.predict` does
        (eager Keras steps a recurrence op by op, 50 times slower; the numbers are the same)."""
        import keras

        arrays = x if isinstance(x, tuple) else (x,)
        if isinstance(x, tuple):  # a graph's inputs: a list in declaration order (one: the tensor)
            x = list(x) if len(x) > 1 else x[0]
        eager = lambda: self.keras_model(x, training=training)  # noqa: E731
        long = any(a.ndim >= 2 and a.shape[1] >= inputs_mod.LONG_STEPS for a in arrays)
        if not long or keras.backend.backend() != "tensorflow":
            return eager()
        import tensorflow as tf

        key = (training, tuple(a.shape for a in arrays))
        if key not in self._keras_calls:
            tf.get_logger().setLevel("ERROR")  # one trace per long shape: its retracing notes are noise
            # autograph=False: autograph writes converted source (and its __pycache__) to $TMPDIR.
            self._keras_calls[key] = tf.function(
                lambda x: self.keras_model(x, training=training), autograph=False
            )
        try:
            return self._keras_calls[key](x)
        except Exception:  # what graph mode refuses (a model name TF takes for a bad scope name)
            return eager()

    def set_weights(self, weights: dict[str, list[Any]]) -> None:
        import numpy as np

        dtype = np.float64 if self.float64 else np.float32
        cast = {name: [a.astype(dtype) for a in arrays] for name, arrays in weights.items()}
        weights_mod.set_keras_weights(self.model, self.keras_model, cast)
        weights_mod.load_torch_state(
            self.torch_module, weights_mod.keras_to_torch(self.model, weights, self.torch_module)
        )
        if self.float64:
            self.torch_module.double()

    def set_mode(self, training: bool) -> None:
        # What a user does: `model.eval()` for inference, `model.train()` to train.
        if training:
            self.torch_module.train()
        else:
            self.torch_module.eval()

    def reset_states(self) -> None:
        self.keras_program.reset_states(self.keras_model)
        self.torch_module.reset_states()

    def inputs(self, x: Any) -> Any:
        import numpy as np

        if isinstance(x, tuple):
            return tuple(self.inputs(a) for a in x)
        return x.astype(np.float64) if self.float64 and x.dtype.kind == "f" else x

    def run_keras(self, x: Any, training: bool) -> list[Any]:
        return to_numpy(self.keras_call(self.inputs(x), training))

    def run_torch(self, x: Any) -> list[Any]:
        import torch

        try:
            with torch.no_grad():
                x = self.inputs(x)
                if isinstance(x, tuple):  # a graph: forward(a, b, ...) in declaration order
                    return to_numpy(self.torch_module(*(torch.from_numpy(a) for a in x)))
                return to_numpy(self.torch_module(torch.from_numpy(x)))
        except Exception as exc:  # Keras computed this batch: failing on it is a mismatch
            raise TorchFailed(f"{type(exc).__name__}: {exc}") from exc


# One step of a plan: a batch to compare, or None for a reset of the carried states.
Step = tuple[str, "inputs_mod.Case | None"]


def plans(model: Model, options: VerifyOptions, torch_code: str) -> list[tuple[int, list[Step]]]:
    """(seed, steps) for every variant verify runs: the default one, and with `thorough` more
    seeds, more rows and longer sequences (and, stateful, more chunks)."""
    sixteen_bit = any(name in torch_code for name in inputs_mod.SIXTEEN_BIT_TYPES)
    variants = [(options.seed, options.batch, options.time, options.chunks, "")]
    if options.thorough:
        for k in (1, 2):
            seed = (options.seed + k) % 2**32
            batch, time = (
                (options.batch, options.time) if k == 1 else (2 * options.batch + 1, 3 * options.time + 2)
            )
            variants.append((seed, batch, time, options.chunks + k, f"seed {seed}, "))
    found = []
    for seed, batch, time, chunks, prefix in variants:
        if model.stateful:
            steps: list[Step] = [("reset", None)]  # every variant starts from zero states
            for number, case in enumerate(inputs_mod.chunks(model, 2 * chunks, time, seed)):
                if number == chunks:
                    steps.append(("reset", None))
                label = case.name if number < chunks else f"after reset, chunk {number - chunks + 1}"
                steps.append((prefix + label, case))
        else:
            steps = [
                (prefix + case.name, case)
                for case in inputs_mod.cases(model, batch, time, seed, sixteen_bit=sixteen_bit)
            ]
        found.append((seed, steps))
    return found


def run_all(
    pair: Pair,
    model: Model,
    options: VerifyOptions,
    torch_code: str,
    modes: list[bool],
    keras_weights: dict[str, list[Any]] | None,
) -> Iterator[tuple[str, list[Any], list[Any]]]:
    """Every batch of every variant, in every mode: (label, Keras outputs, PyTorch outputs)."""
    for seed, steps in plans(model, options, torch_code):
        if keras_weights is None:
            weights = weights_mod.random_keras_weights(model, seed)
            weights.update(extern_mod.random_weights(model, pair.keras_model, seed))
        else:
            weights = keras_weights
        pair.set_weights(weights)
        for training in modes:
            pair.set_mode(training)
            if model.stateful:
                keras_outs = {}
            else:
                keras_outs = keras_by_rows(pair, [c for _, c in steps if c is not None], training)
            for label, case in steps:
                if case is None:
                    pair.reset_states()
                    continue
                if training and not case.every_mode:
                    continue
                label = ("training: " if training else "") + label
                keras_out = keras_outs.get(id(case)) or pair.run_keras(case.array, training)
                try:
                    torch_out = pair.run_torch(case.array)
                except TorchFailed as exc:
                    exc.case = label
                    raise
                yield label, keras_out, torch_out


def keras_by_rows(pair: Pair, cases: list[inputs_mod.Case], training: bool) -> dict[int, list[Any]]:
    """Keras's outputs for every short batch of one length, from one call on their rows stacked.

    Rows of a stateless model are independent, so the reference computes them all at once (a
    Keras call costs far more than its rows); the PyTorch module still gets each batch alone,
    since its fast paths depend on the batch.
    """
    import numpy as np

    found: dict[int, list[Any]] = {}
    groups: dict[tuple, list[inputs_mod.Case]] = {}
    if any(layer.extern is not None for layer in pair.model.layers):
        return found  # a user's layer may mix rows (batch statistics): each batch alone
    if training and any(kind_of(layer).mixes_rows_in_training for layer in pair.model.layers):
        return found  # batch statistics: each batch alone
    for case in cases:
        if case.every_mode:
            arrays = case.array if isinstance(case.array, tuple) else (case.array,)
            groups.setdefault(tuple(a.shape[1:] for a in arrays), []).append(case)
    for group in groups.values():
        if isinstance(group[0].array, tuple):
            joined: Any = tuple(np.concatenate(parts) for parts in zip(*(case.array for case in group)))
        else:
            joined = np.concatenate([case.array for case in group])
        stacked = pair.run_keras(joined, training)
        start = 0
        for case in group:
            rows = (case.array[0] if isinstance(case.array, tuple) else case.array).shape[0]
            found[id(case)] = [out[start : start + rows] for out in stacked]
            start += rows
    return found


def float64_difference(
    model: Model,
    programs: Programs,
    options: VerifyOptions,
    modes: list[bool],
    keras_weights: dict[str, list[Any]] | None,
) -> tuple[float, str, int]:
    """The largest difference of the two programs run in float64 on the same weights and
    batches, relative to max(|value|, 1); the batch it is in; and how many values overflow
    float64 as well (non-finite, or beyond 1e300, in both programs), which no precision can
    judge and which are left out. Stops at the first batch beyond FLOAT64_TOLERANCE: one is
    enough to call the difference real."""
    import numpy as np

    pair = Pair(model, programs, float64=True)
    worst, where, overflowed = 0.0, "", 0
    runs = run_all(pair, model, options, programs.torch_code, modes, keras_weights)
    for label, keras_out, torch_out in runs:
        if len(keras_out) != len(torch_out) or any(k.shape != t.shape for k, t in zip(keras_out, torch_out)):
            return math.inf, label, overflowed
        for k, t in zip(keras_out, torch_out):
            k, t = k.astype(np.float64), t.astype(np.float64)
            with np.errstate(invalid="ignore", over="ignore"):
                beyond = ~(np.abs(k) <= 1e300) & ~(np.abs(t) <= 1e300)  # NaN compares False
                diff = differences(k, t) / np.maximum(np.abs(k), 1.0)
            overflowed += int(np.count_nonzero(beyond & ~((k == t) | (np.isnan(k) & np.isnan(t)))))
            diff = np.where(beyond, 0.0, np.where(np.isnan(diff), np.inf, diff))
            largest = float(diff.max(initial=0.0))
            if largest > worst:
                worst, where = largest, label
        if worst > FLOAT64_TOLERANCE:
            break
    return worst, where, overflowed


def verify(
    model: Model,
    programs: Programs,
    options: VerifyOptions | None = None,
    *,
    keras_weights: dict[str, list[Any]] | None = None,
    float64_judgement: bool = True,
) -> Result:
    """Check that the two programs compute the same function on one model's inputs.

    The PyTorch module is proved as `build_model()` returns it, put in inference mode the way
    users are told to (`.eval()`), against Keras with `training=False`; and, when no layer
    drops units, in training mode too (`.train()` against `training=True`). Where float32
    outputs differ beyond tolerance, both programs run again in float64: if they agree there,
    the difference is float32 round-off (`result.roundoff`), not a bug.
    """
    options = options or VerifyOptions()
    configure_frameworks()
    with one_torch_thread():
        return _verify(model, programs, options, keras_weights, float64_judgement)


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Verify's batches are small: one thread runs them fastest; on a busy machine, torch's
    threads spinning against TensorFlow's made a run four times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _verify(
    model: Model,
    programs: Programs,
    options: VerifyOptions,
    keras_weights: dict[str, list[Any]] | None,
    float64_judgement: bool,
) -> Result:
    result = Result(model.name, outputs=[shown(key) for key in model.outputs])
    # A user's layer may do anything in training (noise, batch statistics): eval mode only.
    result.train_skipped = (
        "dropout is random"
        if has_dropout(model)
        else "a user's layer may train differently"
        if any(layer.extern is not None for layer in model.layers)
        else None
    )
    modes = [False] if result.train_skipped else [False, True]
    result.modes = ["eval" if not training else "train" for training in modes]
    pair = Pair(model, programs)
    result.returned_training = pair.returned_training
    first_plan = plans(model, options, programs.torch_code)[0][1]
    result.cases = [label for label, _ in first_plan][1 if model.stateful else 0 :]
    runs = run_all(pair, model, options, programs.torch_code, modes, keras_weights)
    try:
        for label, keras_out, torch_out in runs:
            result.batches_run += 1
            compare(result, label, keras_out, torch_out, options.atol, options.rtol)
            if result.problem is not None:
                return result
    except TorchFailed as exc:
        result.passed = False
        result.problem = f"PyTorch raised {exc} on batch '{exc.case}', which Keras computes"
        return result
    if result.passed or not float64_judgement:
        return result
    try:
        result.float64_diff, result.float64_case, result.float64_overflow = float64_difference(
            model, programs, options, modes, keras_weights
        )
    except Exception as exc:  # an edited program may hard-code float32; then float32 decides
        result.float64_error = f"{type(exc).__name__}: {exc}"
        return result
    if result.float64_diff <= FLOAT64_TOLERANCE:
        result.passed = True
        result.roundoff = True
    return result
