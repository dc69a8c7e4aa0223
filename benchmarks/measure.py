"""Building the variants of one workload, checking they agree, and measuring them.

Variants of a workload:

- ``generated``: the PyTorch program rnnspec generates (``build_model()``, eval, ``torch.no_grad``).
- ``handwritten``: ``handwritten.py``'s idiomatic module for the padding pattern, same weights.
- ``loop``: the generated module with each fused ``nn.LSTM``/``nn.GRU``/``nn.RNN`` swapped for the
  generated per-timestep ``KerasLSTM``/``KerasGRU``/``KerasSimpleRNN`` (tanh/sigmoid, same weights):
  what the target would cost if it stepped in Python instead of calling torch's fused kernels.
- ``keras``: the generated Keras program, ``model(x, training=False)``, same weights (eager).
- ``keras_tf``: the same Keras model compiled as a user serves it: ``predict_on_batch`` (a
  ``tf.function``), TensorFlow backend.
- ``keras_jax``: the same program and weights on Keras's JAX backend, ``predict_on_batch``
  (jit-compiled), in a worker process (keras_worker.py): Keras fixes its backend per process.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnspec.check import load_model
from rnnspec.compiler import compile_source
from rnnspec.equivalence import weights as weights_mod
from rnnspec.equivalence.harness import configure_frameworks, load_program

# A spec whose every recurrent layer needs the stepped modules, so that the generated program
# defines all three classes; only the classes are used.
STEPPED_SPEC = """
model stepped_classes {
    input x: float32[*, 4]
    lstm(4, activation=relu, return_sequences=true)
    gru(4, activation=relu, return_sequences=true)
    simple_rnn(4, activation=elu)
}
"""

VARIANTS = ("handwritten", "generated", "loop", "keras", "keras_tf", "keras_jax")
SLOW = ("loop", "keras")  # timed in the first `slow_reps` repetitions only


def setup_threads(threads: int) -> None:
    """One thread count for torch and TensorFlow, set before either does any work."""
    configure_frameworks()
    import tensorflow as tf
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(threads)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


_stepped = None


def stepped_classes():
    global _stepped
    if _stepped is None:
        module = load_program(compile_source(STEPPED_SPEC, "pytorch", "stepped.rnn"), "stepped_classes")
        _stepped = {"lstm": module.KerasLSTM, "gru": module.KerasGRU, "simple_rnn": module.KerasSimpleRNN}
    return _stepped


def to_loop(module) -> int:
    """Swap every fused recurrent submodule of `module` for the generated stepped one; return how many."""
    import torch
    from torch import nn

    classes = stepped_classes()
    swapped = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.RNNBase):
            if isinstance(child, nn.LSTM | nn.GRU):
                kind = "lstm" if isinstance(child, nn.LSTM) else "gru"
                activations = {"activation": torch.tanh, "recurrent_activation": torch.sigmoid}
            else:
                kind = "simple_rnn"
                activations = {"activation": torch.relu if child.nonlinearity == "relu" else torch.tanh}
            new = classes[kind](
                child.input_size,
                child.hidden_size,
                bias=child.bias,
                bidirectional=child.bidirectional,
                **activations,
            )
            new.load_state_dict(child.state_dict(), strict=True)
            setattr(module, name, new.eval())
            swapped += 1
    return swapped


class JaxWorker:
    """The generated Keras program on the JAX backend, in its own process (see keras_worker.py)."""

    def __init__(self, source: str, keras_weights: dict[str, list[np.ndarray]], inputs, threads: int):
        self.tmp = tempfile.TemporaryDirectory(prefix="rnnspec-bench-")
        weights_path = os.path.join(self.tmp.name, "weights.npz")
        np.savez(weights_path, **{f"{k}/{i}": w for k, ws in keras_weights.items() for i, w in enumerate(ws)})
        inputs_path = os.path.join(self.tmp.name, "inputs.npz")
        np.savez(inputs_path, **{pattern: x for pattern, (x, _valid) in inputs.items()})
        env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("keras_worker.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        reply = self.ask(op="load", source=source, weights=weights_path, inputs=inputs_path, threads=threads)
        if reply.get("backend") != "jax":
            raise AssertionError(f"the JAX worker runs Keras on {reply.get('backend')}")

    def ask(self, **request) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the JAX worker stopped (exit {self.proc.wait()})")
        return json.loads(line)

    def seconds(self, pattern: str) -> float:
        return self.ask(op="time", pattern=pattern)["seconds"]

    def grad_seconds(self, pattern: str) -> float:
        return self.ask(op="grad_time", pattern=pattern)["seconds"]

    def grad_loss(self, pattern: str) -> float:
        return self.ask(op="grad_loss", pattern=pattern)["loss"]

    def peak_bytes(self, pattern: str) -> int:
        """XLA's own figure for one jitted forward on the pattern's input (see keras_worker.py)."""
        return self.ask(op="memory", pattern=pattern)["bytes"]

    def output(self, pattern: str) -> np.ndarray:
        path = os.path.join(self.tmp.name, "out.npy")
        self.ask(op="output", pattern=pattern, path=path)
        return np.load(path)

    def reset(self) -> None:
        self.ask(op="reset")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.ask_quit()
        self.tmp.cleanup()

    def ask_quit(self) -> None:
        self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=30)


class Timed:
    """A call whose duration is measured elsewhere (in the JAX worker): it returns its seconds."""

    def __init__(self, call: Callable[[], float]):
        self.call = call

    def __call__(self) -> float:
        return self.call()


@dataclass
class Built:
    """The four programs of one workload (the hand-written one is made per pattern)."""

    ir: Any
    generated: Any
    loop: Any
    keras_program: Any
    keras_model: Any
    state: dict[str, Any]
    generated_code: str
    keras_weights: dict[str, list[np.ndarray]] = field(default_factory=dict)
    jax: JaxWorker | None = None


def build(workload, seed: int = 0) -> Built:
    import torch

    ir = load_model(workload.source, None)
    torch_code = compile_source(workload.source, "pytorch", f"{ir.name}.rnn")
    keras_code = compile_source(workload.source, "keras", f"{ir.name}.rnn")
    keras_weights = weights_mod.random_keras_weights(ir, seed)
    state = weights_mod.keras_to_torch(ir, keras_weights)

    generated = load_program(torch_code, f"{ir.name}_pytorch").build_model()
    weights_mod.load_torch_state(generated, state)
    loop = load_program(torch_code, f"{ir.name}_pytorch_loop").build_model()
    weights_mod.load_torch_state(loop, state)
    if not to_loop(loop):
        raise AssertionError(f"{workload.name}: no recurrent layer to step")
    keras_program = load_program(keras_code, f"{ir.name}_keras")
    keras_model = keras_program.build_model()
    weights_mod.set_keras_weights(ir, keras_model, keras_weights)
    return Built(
        ir,
        generated.eval(),
        loop.eval(),
        keras_program,
        keras_model,
        {k: torch.from_numpy(v.copy()) for k, v in state.items()},
        torch_code,
        keras_weights,
    )


def start_jax(workload, built: Built, inputs, threads: int) -> None:
    built.jax = JaxWorker(workload.source, built.keras_weights, inputs, threads)


def handwritten_for(workload, built: Built, pattern: str):
    module = workload.handwritten(pattern)
    module.load_state_dict(built.state, strict=True)
    return module.eval()


def reset(workload, built: Built, modules: dict[str, Any]) -> None:
    if not workload.stateful:
        return
    for module in modules.values():
        module.reset_states()
    built.keras_program.reset_states(built.keras_model)
    if built.jax is not None:
        built.jax.reset()


def callables(workload, built: Built, hand, x: np.ndarray, pattern: str) -> dict[str, Callable[[], Any]]:
    """One zero-argument call per variant, on inputs converted once, outside the timed region."""
    import tensorflow as tf
    import torch

    xt = torch.from_numpy(x)
    xk = tf.constant(x.astype(np.int32) if workload.vocab is not None else x)

    def torch_call(module):
        def call():
            with torch.no_grad():
                return module(xt)

        return call

    return {
        "handwritten": torch_call(hand),
        "generated": torch_call(built.generated),
        "loop": torch_call(built.loop),
        "keras": lambda: built.keras_model(xk, training=False),
        "keras_tf": lambda: built.keras_model.predict_on_batch(xk),
        "keras_jax": Timed(lambda: built.jax.seconds(pattern)),
    }


@dataclass
class Check:
    hand: float  # max |generated - handwritten| at valid positions
    loop: float  # max |generated - loop|, everywhere
    keras: float  # max |generated - keras|, everywhere
    keras_tf: float  # max |generated - keras predict_on_batch|, everywhere
    keras_jax: float  # max |generated - keras on JAX|, everywhere


def check(
    workload,
    built: Built,
    hand,
    calls: dict[str, Callable[[], Any]],
    valid: np.ndarray,
    pattern: str,
    atol: float = 1e-5,
    keras_atol: float = 1e-4,
) -> Check:
    """Assert that the variants compute the same outputs before any of them is timed."""
    outs, firsts = {}, {}
    for name, call in calls.items():
        reset(workload, built, torch_modules(built, hand))
        if isinstance(call, Timed):
            call = lambda: built.jax.output(pattern)  # noqa: E731
        value = first = call()
        if workload.stateful:  # a second chunk, so that carried state is compared too
            value = call()
        outs[name] = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
        firsts[name] = np.asarray(first.numpy() if hasattr(first, "numpy") else first)
    reset(workload, built, torch_modules(built, hand))
    if workload.stateful:
        # Keras on JAX: `predict_on_batch` does not carry a stateful layer's state from one call
        # to the next (`model(x)` does; tests/test_keras_facts.py), so only its first chunk,
        # from the reset state, is compared.
        outs["keras_jax"], outs["generated_first"] = firsts["keras_jax"], firsts["generated"]
    gen = outs["generated"]
    if workload.sequences:
        d_hand = np.abs(gen[valid] - outs["handwritten"][valid]).max()
    else:
        d_hand = np.abs(gen - outs["handwritten"]).max()
    d_loop = np.abs(gen - outs["loop"]).max()
    d_keras = np.abs(gen - outs["keras"]).max()
    d_tf = np.abs(gen - outs["keras_tf"]).max()
    d_jax = np.abs(outs.get("generated_first", gen) - outs["keras_jax"]).max()
    label = f"{workload.name}: generated vs"
    assert d_hand <= atol, f"{label} hand-written: max |diff| {d_hand:.3g} at valid positions"
    assert d_loop <= atol, f"{label} loop: max |diff| {d_loop:.3g}"
    assert d_keras <= keras_atol, f"{label} keras: max |diff| {d_keras:.3g}"
    assert d_tf <= keras_atol, f"{label} keras predict_on_batch: max |diff| {d_tf:.3g}"
    assert d_jax <= keras_atol, f"{label} keras on JAX: max |diff| {d_jax:.3g}"
    return Check(float(d_hand), float(d_loop), float(d_keras), float(d_tf), float(d_jax))


def torch_modules(built: Built, hand) -> dict[str, Any]:
    return {"generated": built.generated, "loop": built.loop, "handwritten": hand}


@dataclass
class Timing:
    samples: dict[str, list[float]] = field(default_factory=dict)  # seconds per call, per repetition

    def median_ms(self, name: str) -> float:
        return statistics.median(self.samples[name]) * 1e3

    def paired(self, a: str, b: str) -> list[float]:
        """a/b within each repetition that timed both (paired, so drift in machine load cancels)."""
        return sorted(x / y for x, y in zip(self.samples[a], self.samples[b]))

    def ratio(self, a: str, b: str) -> float:
        return statistics.median(self.paired(a, b))

    def spread(self, a: str, b: str) -> tuple[float, float]:
        """Quartiles of the paired ratio a/b."""
        ratios = self.paired(a, b)
        if len(ratios) < 2:
            return ratios[0], ratios[0]
        q = statistics.quantiles(ratios, n=4)
        return q[0], q[2]


def interleaved(calls: dict[str, Callable[[], Any]], reps: int, warmup: int, slow_reps: int) -> Timing:
    """Round-robin over the variants in each repetition, rotating who goes first.

    The slow variants (SLOW) take part in the first `slow_reps` repetitions only.
    """
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    timing = Timing({name: [] for name in names})
    gc.collect()
    gc.disable()
    try:
        for rep in range(reps):
            active = [n for n in names if rep < slow_reps or n not in SLOW]
            shift = rep % len(active)
            for name in active[shift:] + active[:shift]:
                call = calls[name]
                if isinstance(call, Timed):
                    timing.samples[name].append(call())
                    continue
                start = time.perf_counter()
                call()
                timing.samples[name].append(time.perf_counter() - start)
    finally:
        gc.enable()
    return timing


def memory_trace(call: Callable[[], Any]) -> list[dict[str, Any]]:
    """The chrome-trace events of one warmed-up call profiled with profile_memory=True."""
    from torch.profiler import ProfilerActivity, profile

    call()  # warm
    gc.collect()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        call()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "trace.json")
        prof.export_chrome_trace(path)
        return json.loads(Path(path).read_text())["traceEvents"]


def peak_bytes(call: Callable[[], Any]) -> int:
    """Peak bytes held by torch's CPU allocator during one call, above the level at its start.

    torch.profiler with profile_memory=True reports every allocation and free of the CPU allocator
    with a running total of the bytes allocated while profiling; its maximum is the peak of
    activations, temporaries, workspace and output (parameters and the input exist before the call
    and are not counted). Allocations oneDNN makes outside torch's allocator are not seen.
    """
    events = memory_trace(call)
    totals = [
        e["args"]["Total Allocated"]
        for e in events
        if e.get("name") == "[memory]" and e["args"].get("Device Type", 0) == 0
    ]
    return max(totals, default=0)


def keras_tf_peak_bytes(built: Built, x: np.ndarray, workload) -> int:
    """Peak bytes in use by TensorFlow's CPU allocator during one warmed-up `predict_on_batch`,
    above the level at its start: the figure TensorFlow reports itself
    (`tf.config.experimental.get_memory_info("CPU:0")`, its allocator's bytes-in-use peak, reset
    with `reset_memory_stats` just before the call). Like `peak_bytes` for torch: the weights
    and the input exist before the call and are not counted; activations, temporaries and the
    output are.
    """
    import tensorflow as tf

    xk = tf.constant(x.astype(np.int32) if workload.vocab is not None else x)
    built.keras_model.predict_on_batch(xk)  # warm (traced and compiled before)
    gc.collect()
    tf.config.experimental.reset_memory_stats("CPU:0")
    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    out = built.keras_model.predict_on_batch(xk)
    info = tf.config.experimental.get_memory_info("CPU:0")
    del out
    return int(info["peak"] - before)


# ---------------------------------------------------------------------------------------------
# compile latency


def rnnspec_command() -> list[str]:
    script = Path(sys.executable).with_name("rnnspec")
    return [str(script)] if script.exists() else [sys.executable, "-m", "rnnspec"]


def compile_latency(runs: int, root: Path) -> dict[str, Any]:
    """Cold `rnnspec compile` in a fresh process vs `python -c "import lark, jinja2"`, interleaved."""
    commands = {
        "rnnspec compile": rnnspec_command() + ["compile", "examples/sentiment.rnn", "--target", "pytorch"],
        "import lark, jinja2": [sys.executable, "-c", "import lark, jinja2"],
        "python -c pass": [sys.executable, "-c", "pass"],
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    for command in commands.values():  # pyc, Lark and Jinja cache files written; page cache warm
        subprocess.run(command, cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)
            samples[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) * 1e3 for name, values in samples.items()}

    def ratio(name: str) -> float:
        return statistics.median(
            a / b for a, b in zip(samples[name], samples["import lark, jinja2"], strict=True)
        )

    return {
        "median_ms": medians,
        "ratio": ratio("rnnspec compile"),
        "runs": runs,
        "command": "rnnspec " + " ".join(commands["rnnspec compile"][-4:]),
    }


BREAKDOWN = r"""
import json, sys, time
t = [time.perf_counter()]
import lark, jinja2
t.append(time.perf_counter())
import rnnspec.cli
t.append(time.perf_counter())
from rnnspec import parse
parse._parser()
t.append(time.perf_counter())
from rnnspec.targets.common import environment
environment().get_template("pytorch.py.j2")
t.append(time.perf_counter())
from rnnspec.compiler import compile_source
compile_source(open("examples/sentiment.rnn").read(), "pytorch", "sentiment.rnn")
t.append(time.perf_counter())
names = ["import lark, jinja2", "import rnnspec.cli (rest)", "Lark parser (tables from its cache file)",
         "Jinja template load (bytecode cache)", "parse+check+render"]
print(json.dumps({n: (b - a) * 1e3 for n, a, b in zip(names, t, t[1:])}))
"""


def compile_breakdown(runs: int, root: Path) -> dict[str, float]:
    """Where a cold compile's time goes: median ms per phase, each run in a fresh process (after
    compile_latency's warm-up has written rnnspec's Lark and Jinja cache files)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    phases: dict[str, list[float]] = {}
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", BREAKDOWN],
            cwd=root,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for name, ms in json.loads(out).items():
            phases.setdefault(name, []).append(ms)
    return {name: statistics.median(values) for name, values in phases.items()}


# ---------------------------------------------------------------------------------------------
# training step: forward + backward

TRAIN_VARIANTS = ("handwritten", "generated", "keras_tf", "keras_jax")


def train_callables(
    workload, built: Built, hand, x: np.ndarray, pattern: str
) -> dict[str, Callable[[], Any]]:
    """One forward + backward per variant: the gradient of sum(output) w.r.t. every weight.

    Inference mode everywhere (no dropout noise), so that the four compute the same thing; the
    optimizer step, a few element-wise updates, is left out of all four.
    """
    import tensorflow as tf
    import torch

    xt = torch.from_numpy(x)
    xk = tf.constant(x.astype(np.int32) if workload.vocab is not None else x)

    def torch_step(module):
        def call():
            module.zero_grad(set_to_none=True)
            out = module(xt)
            loss = (out[0] if isinstance(out, tuple) else out).sum()
            loss.backward()
            return loss.detach()

        return call

    model = built.keras_model

    @tf.function(reduce_retracing=True)
    def tf_step(x):
        with tf.GradientTape() as tape:
            out = model(x, training=False)
            loss = tf.reduce_sum(out[0] if isinstance(out, list | tuple) else out)
        grads = tape.gradient(loss, model.trainable_variables)
        return loss, grads

    return {
        "handwritten": torch_step(hand),
        "generated": torch_step(built.generated),
        "keras_tf": lambda: tf_step(xk)[0],
        "keras_jax": Timed(lambda: built.jax.grad_seconds(pattern)),
    }


def check_train(workload, built: Built, calls: dict[str, Callable[[], Any]], pattern: str) -> float:
    """The generated, TF and JAX losses agree (the same function is differentiated); their largest
    relative difference."""
    losses = {
        "generated": float(calls["generated"]()),
        "keras_tf": float(calls["keras_tf"]()),
        "keras_jax": built.jax.grad_loss(pattern),
    }
    scale = max(abs(losses["generated"]), 1.0)
    worst = max(abs(v - losses["generated"]) / scale for v in losses.values())
    assert worst <= 1e-4, f"{workload.name}/{pattern}: training losses differ: {losses}"
    return worst
