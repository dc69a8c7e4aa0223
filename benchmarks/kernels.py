"""Why compiled Keras on JAX wins the GRU and SimpleRNN rows on CPU: the kernels underneath.

    python benchmarks/kernels.py             # one core, ~1 minute
    python benchmarks/kernels.py --reps 50

Everything runs in one process pinned to one core (torch with one thread, XLA's CPU client
with Eigen's threading off), each figure the median of `--reps` calls timed round-robin
against its rivals, so that the machine's load falls on all of them alike. Four tables:

- matrix products at the shapes a recurrent layer runs (64 rows): torch's `mm` (MKL BLAS on
  x86), oneDNN's linear through `torch.ops.mkldnn._linear_pointwise` (a private op, which
  torch's own compiler calls; shown only where the build has it) and `jax.jit(a @ b)`;
- elementwise activations on one step's gates: torch's `tanh` against its `sigmoid`, and XLA's;
- whole layers, 64 rows x 120 steps: torch's `nn.GRU`/`nn.RNN`/`nn.LSTM` against Keras's own
  layers on JAX (`predict_on_batch`: a jitted `lax.scan`), as the benchmark serves them;
- the fastest eager GRU/SimpleRNN step loop we found (oneDNN's linear, in-place gates): the
  most a generated program that runs eagerly could get from torch, and its distance to XLA.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

ROWS, STEPS, FEATURES = 64, 120, 64


def pin_one_core() -> None:
    if not hasattr(os, "sched_setaffinity"):
        raise SystemExit("kernels.py pins itself to one core with os.sched_setaffinity (Linux only)")
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:1])
    flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()


def round_robin(variants: dict, reps: int) -> dict[str, float]:
    """Median microseconds per call of each variant, timed in turn."""
    for run in variants.values():
        for _ in range(3):
            run()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(reps):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) * 1e6 for name, ts in times.items()}


def matmuls(reps: int) -> None:
    import jax
    import torch

    onednn = hasattr(torch.ops.mkldnn, "_linear_pointwise")
    jmm = jax.jit(lambda a, b: a @ b)
    print(
        "| product (rows x inner x out) | what | torch mm (MKL) | oneDNN linear | XLA | GFLOP/s torch / oneDNN / XLA |"
    )
    print("|---|---|---|---|---|---|")
    shapes = [
        (ROWS, 128, 384, "GRU 128 step"),
        (ROWS, 128, 128, "SimpleRNN 128 step"),
        (ROWS, 128, 512, "LSTM 128 step"),
        (ROWS * STEPS, FEATURES, 384, "GRU 128 input projection"),
        (ROWS, 16, 48, "GRU 16 step (masking example)"),
    ]
    for m, k, n, what in shapes:
        print(matmul_row(m, k, n, what, jmm, onednn, reps if m < 1000 else max(reps // 5, 5)))


def matmul_row(m: int, k: int, n: int, what: str, jmm, onednn: bool, reps: int) -> str:
    import jax
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    a, w = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((n, k), dtype=np.float32)
    ta, tw = torch.from_numpy(a), torch.from_numpy(w)
    ja, jw = jax.numpy.asarray(a), jax.numpy.asarray(w.T.copy())
    variants = {"torch": lambda: torch.mm(ta, tw.t()), "xla": lambda: jmm(ja, jw).block_until_ready()}
    if onednn:
        packed = torch.ops.mkldnn._reorder_linear_weight(tw, m)
        variants["onednn"] = lambda: torch.ops.mkldnn._linear_pointwise(ta, packed, None, "none", [], "")
        assert torch.equal(variants["onednn"](), variants["torch"]())
    t = round_robin(variants, reps)
    flops = 2 * m * k * n / 1e3  # per microsecond: GFLOP/s
    dnn = f"{t['onednn']:.1f} us" if onednn else "n/a"
    rates = " / ".join(f"{flops / t[v]:.0f}" if v in t else "n/a" for v in ("torch", "onednn", "xla"))
    return f"| {m} x {k} x {n} | {what} | {t['torch']:.1f} us | {dnn} | {t['xla']:.1f} us | {rates} |"


def activations(reps: int) -> None:
    import jax
    import torch

    x = torch.randn(ROWS, 128) * 2
    out = torch.empty_like(x)
    jx = jax.numpy.asarray(x.numpy())
    jtanh, jsig = jax.jit(jax.numpy.tanh), jax.jit(jax.nn.sigmoid)
    t = round_robin(
        {
            "torch tanh": lambda: torch.tanh(x, out=out),
            "torch sigmoid": lambda: torch.sigmoid(x, out=out),
            "xla tanh": lambda: jtanh(jx).block_until_ready(),
            "xla sigmoid": lambda: jsig(jx).block_until_ready(),
        },
        reps * 4,
    )
    print(f"\n| {ROWS} x 128 gates | torch | XLA (one jitted call, dispatch included) |")
    print("|---|---|---|")
    for op in ("tanh", "sigmoid"):
        print(f"| {op} | {t[f'torch {op}']:.1f} us | {t[f'xla {op}']:.1f} us |")


def keras_jax_layer(kind: str, hidden: int):
    """Keras's own layer on JAX, `predict_on_batch` (a jitted `lax.scan`), as the benchmark
    serves it; its own random weights (the work does not depend on their values)."""
    import keras

    layer = {"gru": keras.layers.GRU, "rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM}[kind]
    model = keras.Sequential([keras.Input((STEPS, FEATURES)), layer(hidden, return_sequences=True)])
    return model.predict_on_batch


def eager_fast(kind: str):
    """The fastest eager step loop we found for torch (inference only): oneDNN's linear for
    the products, gates updated in place, each step written into the output."""
    import torch

    linear = torch.ops.mkldnn._linear_pointwise

    def run(x, w_ih, w_hh, b_ih, b_hh):
        rows, steps, _ = x.shape
        hidden = w_hh.shape[1]
        bias = b_ih + b_hh if kind == "rnn" else b_ih
        packed_ih = torch.ops.mkldnn._reorder_linear_weight(w_ih, rows * steps)
        packed_hh = torch.ops.mkldnn._reorder_linear_weight(w_hh, rows)
        projected = linear(x.reshape(rows * steps, -1), packed_ih, bias, "none", [], "").view(rows, steps, -1)
        h = x.new_zeros(rows, hidden)
        out = x.new_empty(rows, steps, hidden)
        for t in range(steps):
            p = projected[:, t]
            if kind == "gru":
                r = linear(h, packed_hh, b_hh, "none", [], "")
                gates = r[:, : 2 * hidden].add_(p[:, : 2 * hidden]).sigmoid_()
                n = torch.addcmul(p[:, 2 * hidden :], gates[:, :hidden], r[:, 2 * hidden :]).tanh_()
                h = torch.lerp(n, h, gates[:, hidden:])
            else:
                h = linear(h, packed_hh, None, "none", [], "").add_(p).tanh_()
            out[:, t] = h
        return out

    return run


def layers(reps: int) -> None:
    import torch

    onednn = hasattr(torch.ops.mkldnn, "_linear_pointwise")
    print(
        f"\n| layer, {ROWS} x {STEPS} steps | torch nn module | fastest eager loop | Keras on JAX | JAX / torch | JAX / eager loop |"
    )
    print("|---|---|---|---|---|---|")
    x = torch.randn(ROWS, STEPS, FEATURES)
    for kind, hidden in (("gru", 128), ("rnn", 128), ("lstm", 128), ("gru", 16)):
        print(layer_row(kind, hidden, x, onednn, max(reps // 2, 5)))


def layer_row(kind: str, hidden: int, x, onednn: bool, reps: int) -> str:
    import torch

    torch.manual_seed(0)
    module = {"gru": torch.nn.GRU, "rnn": torch.nn.RNN, "lstm": torch.nn.LSTM}[kind](
        FEATURES, hidden, batch_first=True
    ).eval()
    weights = [
        p.detach() for p in (module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0)
    ]
    keras_call = keras_jax_layer(kind, hidden)
    xs = x.numpy()
    with torch.no_grad():
        expected = module(x)[0]
        variants = {"torch": lambda: module(x), "xla": lambda: keras_call(xs)}
        fast = eager_fast(kind) if onednn and kind != "lstm" else None
        if fast is not None:
            assert (fast(x, *weights) - expected).abs().max() < 1e-5
            variants["eager"] = lambda: fast(x, *weights)
        t = round_robin(variants, reps)
    name = {"gru": "GRU", "rnn": "SimpleRNN", "lstm": "LSTM (oneDNN)"}[kind]
    eager = f"{t['eager'] / 1e3:.2f} ms" if "eager" in t else "(the module is)"
    ratio = f"{t['xla'] / t['eager']:.2f}" if "eager" in t else ""
    return (
        f"| {name} {hidden} | {t['torch'] / 1e3:.2f} ms | {eager} | {t['xla'] / 1e3:.2f} ms | "
        f"{t['xla'] / t['torch']:.2f} | {ratio} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=30, help="timed calls per variant (default 30)")
    args = parser.parse_args()
    pin_one_core()
    os.environ["KERAS_BACKEND"] = "jax"
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    print(
        f"one core ({sorted(os.sched_getaffinity(0))}), torch {torch.__version__}, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}; median of {args.reps} round-robin calls\n"
    )
    matmuls(args.reps)
    activations(args.reps)
    layers(args.reps)


if __name__ == "__main__":
    main()
