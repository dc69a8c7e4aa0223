"""The gradient proof behind `rnnspec verify --gradients`.

Training the PyTorch program as Keras trains needs more than equal outputs: every weight must
receive the gradient its Keras counterpart receives, mapped the way the weights map. A bias that
Keras has once and torch twice shows up here: Keras's gradient maps to `bias_ih`, and the zero
that `bias_hh` must then receive is compared like every other element.

The loss is a fixed random linear function of every output (states included) at every position,
the same in both programs, so that its gradient reaches every position of every output. Both
programs run in inference mode (no dropout), on the forward proof's batches: masks with holes,
fully padded rows, and a stateful model's chunks, with its reset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rnnspec.equivalence import extern as extern_mod
from rnnspec.equivalence import inputs as inputs_mod
from rnnspec.equivalence import weights as weights_mod
from rnnspec.equivalence.harness import Programs, configure_frameworks, load_program
from rnnspec.ir import MERGE_KINDS, Model


@dataclass
class GradientWorst:
    what: str = ""  # "weight `lstm_1.weight_hh_l0`" or "input `x`"
    index: tuple[int, ...] = ()
    case: str = ""
    keras: float = 0.0
    torch: float = 0.0


@dataclass
class GradientResult:
    passed: bool = True
    max_abs_diff: float = 0.0
    worst: GradientWorst = field(default_factory=GradientWorst)
    compared: list[str] = field(default_factory=list)  # the torch names, and `input NAME`
    cases: list[str] = field(default_factory=list)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        worst = dict(vars(self.worst), index=list(self.worst.index))
        return {
            "passed": self.passed,
            "max_abs_diff": self.max_abs_diff,
            "worst": worst,
            "compared": self.compared,
            "cases": self.cases,
            "error": self.error,
        }

    def describe(self) -> str:
        if self.error:
            return f"gradients: ERROR {self.error}"
        worst = self.worst
        where = f"{worst.what} [{', '.join(map(str, worst.index))}]"
        weights = sum(1 for name in self.compared if not name.startswith("input "))
        count = sum(1 for name in self.compared if name.startswith("input "))
        inputs = " and the input" if count == 1 else f" and {count} inputs" if count else ""
        head = "ok" if self.passed else "MISMATCH"
        return (
            f"gradients: {head}  max |diff| {self.max_abs_diff:.3g} ({where}, batch '{worst.case}': "
            f"keras {worst.keras:.7g}, pytorch {worst.torch:.7g}); {weights} weights{inputs}, "
            f"{len([c for c in self.cases if c != 'reset'])} batches"
        )


def keras_variables(model: Model, keras_model: Any) -> dict[str, list[Any]]:
    """Each IR layer's Keras variables, in the order `get_weights()` lists them."""
    variables = {}
    for layer in model.layers:
        if layer.kind in MERGE_KINDS:
            continue  # no weights (and an unnamed merge is named by Keras)
        klayer = keras_model.get_layer(layer.name)
        if layer.inner is not None:
            variables[layer.name] = list(klayer.forward_layer.weights) + list(klayer.backward_layer.weights)
        elif klayer.weights:
            variables[layer.name] = list(klayer.weights)
    return variables


def _cotangents(arrays: list[Any], rng: Any) -> list[Any]:
    import numpy as np

    return [rng.normal(size=a.shape).astype(np.float32) for a in arrays]


def keras_gradients(
    model: Model, keras_model: Any, x: Any, rng: Any, torch_module: Any = None
) -> tuple[dict[str, Any], Any, list]:
    """Gradients of sum(output * R) for random R: per torch name, for the input, and the Rs used."""
    import numpy as np
    import tensorflow as tf

    variables = keras_variables(model, keras_model)
    flat = [v for layer in variables.values() for v in layer]
    arrays = x if isinstance(x, tuple) else (x,)  # a graph: one array per input
    inps = [tf.constant(a) for a in arrays]
    differentiable = [a.dtype == np.float32 for a in arrays]
    with tf.GradientTape() as tape:
        for inp, watched in zip(inps, differentiable):
            if watched:
                tape.watch(inp)
        outputs = keras_model(inps if isinstance(x, tuple) and len(inps) > 1 else inps[0], training=False)
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        cotangents = _cotangents([o.numpy() for o in outputs], rng)
        loss = tf.add_n([tf.reduce_sum(o * r) for o, r in zip(outputs, cotangents)])
    watched = [inp for inp, w in zip(inps, differentiable) if w]
    grads = tape.gradient(loss, watched + [v.value for v in flat])
    grads = [None if g is None else tf.convert_to_tensor(g).numpy() for g in grads]
    input_grads = [grads.pop(0) if w else None for w in differentiable]
    input_grads = [
        np.zeros(a.shape, np.float32) if w and g is None else g
        for a, w, g in zip(arrays, differentiable, input_grads)
    ]
    input_grad: Any = tuple(input_grads) if isinstance(x, tuple) else input_grads[0]
    per_layer: dict[str, list[Any]] = {}
    position = 0
    for name, layer_vars in variables.items():
        per_layer[name] = [
            np.zeros(v.shape, np.float32) if g is None else g
            for v, g in zip(layer_vars, grads[position : position + len(layer_vars)])
        ]
        position += len(layer_vars)
    # The module maps a user's layer (its `weights` table or `keras_to_torch` hook).
    mapped = weights_mod.keras_to_torch(model, per_layer, torch_module)
    if torch_module is not None:  # moving statistics: Keras variables, torch buffers; no gradient
        buffers = {name for name, _ in torch_module.named_buffers()}
        mapped = {name: grad for name, grad in mapped.items() if name not in buffers}
    return mapped, input_grad, cotangents


def torch_gradients(module: Any, x: Any, cotangents: list[Any]) -> tuple[dict[str, Any], Any]:
    """The same loss's gradients in the PyTorch program, per parameter name (zero where none flows)."""
    import numpy as np
    import torch

    module.zero_grad(set_to_none=True)
    inps = [torch.from_numpy(a) for a in (x if isinstance(x, tuple) else (x,))]
    for inp in inps:
        if inp.is_floating_point():
            inp.requires_grad_(True)
    outputs = module(*inps)
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    if len(outputs) != len(cotangents):
        raise ValueError(f"Keras returns {len(cotangents)} tensors, PyTorch {len(outputs)}")
    loss = sum((o * torch.from_numpy(r)).sum() for o, r in zip(outputs, cotangents))
    loss.backward()
    grads = {
        name: np.zeros(tuple(p.shape), np.float32) if p.grad is None else p.grad.detach().numpy()
        for name, p in module.named_parameters()
    }
    input_grads = [
        inp.grad.detach().numpy()
        if inp.grad is not None
        else np.zeros(tuple(inp.shape), np.float32)
        if inp.is_floating_point()
        else None
        for inp in inps
    ]
    return grads, tuple(input_grads) if isinstance(x, tuple) else input_grads[0]


def _fold(
    result: GradientResult, what: str, case: str, keras: Any, torch: Any, atol: float, rtol: float
) -> None:
    import numpy as np

    if keras.shape != torch.shape:
        result.passed = False
        result.error = f"{what}: Keras gradient shape {keras.shape}, PyTorch {torch.shape} ({case})"
        return
    k = keras.astype(np.float64)
    t = torch.astype(np.float64)
    diff = np.abs(k - t)
    diff = np.where(np.isnan(diff) & ~(np.isnan(k) & np.isnan(t)), np.inf, np.nan_to_num(diff))
    if (diff > atol + rtol * np.abs(np.nan_to_num(k))).any():
        result.passed = False
    if diff.size and diff.max() >= result.max_abs_diff:
        where = np.unravel_index(int(np.argmax(diff)), diff.shape)
        result.max_abs_diff = float(diff.max())
        result.worst = GradientWorst(
            what, tuple(int(i) for i in where), case, float(k[where]), float(t[where])
        )


def verify_gradients(
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
) -> GradientResult:
    """Compare the gradients of both programs with respect to every input and weight."""
    import numpy as np

    configure_frameworks()
    result = GradientResult()
    keras_program = load_program(programs.keras_code, f"{model.name}_keras_grad")
    keras_model = keras_program.build_model()
    torch_program = load_program(programs.torch_code, f"{model.name}_pytorch_grad")
    torch_module = torch_program.build_model()
    if keras_weights is None:  # as the forward proof draws them, a user's layers included
        weights = weights_mod.random_keras_weights(model, seed)
        weights.update(extern_mod.random_weights(model, keras_model, seed))
    else:
        weights = keras_weights
    weights_mod.set_keras_weights(model, keras_model, weights)
    weights_mod.load_torch_state(torch_module, weights_mod.keras_to_torch(model, weights, torch_module))
    torch_module.eval()
    rng = np.random.default_rng([seed, 1])

    def one(label: str, array: Any) -> None:
        expected, keras_input, cotangents = keras_gradients(model, keras_model, array, rng, torch_module)
        actual, torch_input = torch_gradients(torch_module, array, cotangents)
        if set(expected) != set(actual):
            missing = sorted(set(expected) ^ set(actual))
            raise ValueError(f"the PyTorch parameters do not map to Keras's weights: {', '.join(missing)}")
        names = sorted(expected)
        keras_inputs = keras_input if isinstance(array, tuple) else (keras_input,)
        torch_inputs = torch_input if isinstance(array, tuple) else (torch_input,)
        inputs = []
        for inp, k, t in zip(model.inputs, keras_inputs, torch_inputs):
            if k is not None:
                _fold(result, f"input `{inp.name}`", label, k, t, atol, rtol)
                inputs.append(f"input {inp.name}")
        for name in names:
            _fold(result, f"weight `{name}`", label, expected[name], actual[name], atol, rtol)
        if not result.compared:
            result.compared = names + inputs

    if model.stateful:
        for number, case in enumerate(inputs_mod.chunks(model, 2 * chunks, steps, seed)):
            if number == chunks:
                keras_program.reset_states(keras_model)
                torch_module.reset_states()
                result.cases.append("reset")
            label = case.name if number < chunks else f"after reset, chunk {number - chunks + 1}"
            result.cases.append(label)
            one(label, case.array)
    else:
        for case in inputs_mod.cases(model, batch, steps, seed):
            result.cases.append(case.name)
            one(case.name, case.array)
    return result
