"""A compiled Keras model in its own process, timed on request: the JAX baseline.

Keras 3 fixes its backend when it is first imported, so the JAX-backed model cannot live in the
process that holds the TensorFlow one. The benchmark starts this worker with
``KERAS_BACKEND=jax`` and talks to it over stdin/stdout, one JSON line per request; each timed
call is measured here, around ``predict_on_batch`` (jit-compiled on JAX, results back on the
host), so the pipe's latency is not counted and the round-robin pairing of the parent holds.

Requests: ``{"op": "load", "source": ..., "weights": NPZ, "inputs": NPZ, "threads": N}``,
``{"op": "time", "pattern": P}`` -> ``{"seconds": s}``, ``{"op": "grad_time", "pattern": P}``
(a jitted forward + backward), ``{"op": "grad_loss", "pattern": P}`` -> ``{"loss": l}``,
``{"op": "memory", "pattern": P}`` -> ``{"bytes": n}`` (XLA's temporaries and outputs for one
forward), ``{"op": "output", "pattern": P, "path": NPY}`` (writes the output),
``{"op": "reset"}``, ``{"op": "quit"}``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import types


def _threads(threads: int) -> None:
    """As many cores for XLA's CPU client as the parent gives torch and TensorFlow threads.

    XLA has no thread-count flag that bounds everything it runs (its thunk executor keeps a
    pool of its own), so the worker is pinned to `threads` cores before JAX starts, and
    with one thread Eigen's own threading is off as well.
    """
    if hasattr(os, "sched_setaffinity"):  # Linux; elsewhere XLA keeps every core
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])
    if threads == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()


def _gradient_step(model):
    """A jitted forward + backward: the gradient of sum(outputs) w.r.t. every trainable weight,
    inference mode (as the parent's torch and TF rows), as a JAX user writes a training step."""
    import jax
    import jax.numpy as jnp

    def loss(weights, frozen, x):
        y, _ = model.stateless_call(weights, frozen, x, training=False)
        return jnp.sum(y[0] if isinstance(y, list | tuple) else y)

    grad = jax.jit(jax.grad(loss))
    value = jax.jit(loss)

    def step(x, loss_only=False):
        # Read each call: predict_on_batch donates the variables' buffers on JAX.
        trainable = [v.value for v in model.trainable_variables]
        frozen = [v.value for v in model.non_trainable_variables]
        if loss_only:
            return value(trainable, frozen, x)
        return jax.block_until_ready(grad(trainable, frozen, x))

    return step


def _peak_bytes(model, x) -> int:
    """The bytes XLA holds while one forward runs, beyond the weights and the input: its buffer
    assignment's temporaries plus the outputs, as the compiled executable reports them
    (`memory_analysis()` of `jax.jit` over `model.stateless_call`, the computation
    `predict_on_batch` runs). The CPU client allocates exactly these per execution; JAX has no
    allocator statistics on CPU (`device.memory_stats()` is None there).
    """
    import jax

    def forward(trainable, frozen, x):
        y, _ = model.stateless_call(trainable, frozen, x, training=False)
        return y

    trainable = [v.value for v in model.trainable_variables]
    frozen = [v.value for v in model.non_trainable_variables]
    stats = jax.jit(forward).lower(trainable, frozen, x).compile().memory_analysis()
    return int(stats.temp_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes)


def main() -> int:
    import numpy as np

    model = program = grad = None
    inputs: dict[str, np.ndarray] = {}
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        reply: dict = {"ok": True}
        if op == "load":
            _threads(request["threads"])
            os.environ["KERAS_BACKEND"] = "jax"
            from rnnspec.check import load_model
            from rnnspec.compiler import compile_source
            from rnnspec.equivalence import weights as weights_mod

            ir = load_model(request["source"], None)
            code = compile_source(request["source"], "keras", f"{ir.name}.rnn")
            program = types.ModuleType("keras_jax_program")
            exec(compile(code, "<keras jax program>", "exec"), program.__dict__)
            model = program.build_model()
            stored = np.load(request["weights"])
            weights: dict[str, list] = {}
            for key in sorted(stored.files, key=lambda k: (k.rsplit("/", 1)[0], int(k.rsplit("/", 1)[1]))):
                layer, _ = key.rsplit("/", 1)
                weights.setdefault(layer, []).append(stored[key])
            weights_mod.set_keras_weights(ir, model, weights)
            data = np.load(request["inputs"])
            inputs = {name: data[name] for name in data.files}
            import keras

            reply["keras"] = keras.__version__
            reply["backend"] = keras.backend.backend()
        elif op == "time":
            x = inputs[request["pattern"]]
            start = time.perf_counter()
            model.predict_on_batch(x)
            reply["seconds"] = time.perf_counter() - start
        elif op == "grad_time":
            if grad is None:
                grad = _gradient_step(model)
            x = inputs[request["pattern"]]
            grad(x)  # compiled for this shape before the clock starts (the parent warms up too)
            start = time.perf_counter()
            grad(x)
            reply["seconds"] = time.perf_counter() - start
        elif op == "grad_loss":
            if grad is None:
                grad = _gradient_step(model)
            reply["loss"] = float(grad(inputs[request["pattern"]], loss_only=True))
        elif op == "memory":
            reply["bytes"] = _peak_bytes(model, inputs[request["pattern"]])
        elif op == "output":
            out = model.predict_on_batch(inputs[request["pattern"]])
            np.save(request["path"], np.asarray(out[0] if isinstance(out, list | tuple) else out))
        elif op == "reset":
            program.reset_states(model)
        elif op == "quit":
            return 0
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
