"""rnnspec benchmark suite: the generated PyTorch forward pass against hand-written PyTorch.

    python benchmarks/run.py            # full run (a few minutes), 1 thread
    python benchmarks/run.py --quick    # smoke run: every workload, few repetitions

For every workload and padding pattern it builds four variants with the same weights (see
measure.py), asserts that they compute the same outputs, times them round-robin in one process
(medians; the ratio is the median of the per-repetition ratios), measures the peak memory of the
torch variants, and times a cold `rnnspec compile`. Prints the table and writes
benchmarks/results.md, benchmarks/results.json and benchmarks/results.png (results-quick.* with
--quick).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import measure  # noqa: E402
import workloads  # noqa: E402

TIME_TARGET = {"none": 1.05, "right": 1.05, "left": 1.3, "holes": 1.3}
MEMORY_TARGET = 1.2
COMPILE_TARGET = 1.5


def machine(threads: int) -> dict[str, str]:
    import keras
    import tensorflow as tf
    import torch

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "threads": str(threads),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": __import__("numpy").__version__,
        "platform": platform.platform(),
    }


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def run(args) -> dict:
    measure.setup_threads(args.threads)
    load_before = loadavg()
    rows = []
    train_rows = []
    for workload in workloads.all_workloads():
        if args.only and not any(s in workload.name for s in args.only):
            continue
        built = measure.build(workload)
        inputs = workloads.make_inputs(workload)
        measure.start_jax(workload, built, inputs, args.threads)
        for pattern in workload.patterns:
            x, valid = inputs[pattern]
            hand = measure.handwritten_for(workload, built, pattern)
            calls = measure.callables(workload, built, hand, x, pattern)
            diffs = measure.check(workload, built, hand, calls, valid, pattern)
            timing = measure.interleaved(calls, args.reps, args.warmup, args.slow_reps)
            memory = {name: measure.peak_bytes(calls[name]) for name in ("handwritten", "generated", "loop")}
            memory["keras_tf"] = measure.keras_tf_peak_bytes(built, x, workload)
            memory["keras_jax"] = built.jax.peak_bytes(pattern)
            row = {
                "workload": workload.name,
                "group": workload.group,
                "pattern": pattern,
                "shape": f"{workload.batch}x{workload.steps}",
                "valid_fraction": float(valid.mean()),
                "ms": {name: timing.median_ms(name) for name in measure.VARIANTS},
                "ratio": timing.ratio("generated", "handwritten"),
                "ratio_iqr": timing.spread("generated", "handwritten"),
                "loop_ratio": timing.ratio("loop", "handwritten"),
                "keras_ratio": timing.ratio("keras", "handwritten"),
                # above 1: the generated PyTorch is faster than compiled Keras
                "tf_speedup": timing.ratio("keras_tf", "generated"),
                "jax_speedup": timing.ratio("keras_jax", "generated"),
                "target": TIME_TARGET[pattern],
                "memory": memory,
                "memory_ratio": memory["generated"] / max(memory["handwritten"], 1),
                # at most 1: the generated PyTorch holds no more than compiled Keras (None: TF saw
                # nothing, every allocation below its allocator's 256 KiB threshold)
                "tf_memory_ratio": memory["generated"] / memory["keras_tf"] if memory["keras_tf"] else None,
                "jax_memory_ratio": memory["generated"] / max(memory["keras_jax"], 1),
                "max_abs_diff": vars(diffs),
            }
            row["time_ok"] = row["ratio"] <= row["target"]
            row["memory_ok"] = row["memory_ratio"] <= MEMORY_TARGET
            rows.append(row)
            print(format_row(row), flush=True)
            if args.train and not workload.stateful:
                train_calls = measure.train_callables(workload, built, hand.train(False), x, pattern)
                loss_diff = measure.check_train(workload, built, train_calls, pattern)
                timing = measure.interleaved(train_calls, args.reps, args.warmup, args.slow_reps)
                train_row = {
                    "workload": workload.name,
                    "pattern": pattern,
                    "ms": {name: timing.median_ms(name) for name in measure.TRAIN_VARIANTS},
                    "hand_ratio": timing.ratio("generated", "handwritten"),
                    "tf_speedup": timing.ratio("keras_tf", "generated"),
                    "jax_speedup": timing.ratio("keras_jax", "generated"),
                    "loss_rel_diff": loss_diff,
                }
                train_rows.append(train_row)
                print(format_train_row(train_row), flush=True)
            hand.eval()
        built.jax.close()
    compile_result = measure.compile_latency(args.compile_runs, workloads.ROOT)
    compile_result["breakdown_ms"] = measure.compile_breakdown(args.compile_runs, workloads.ROOT)
    compile_result["ok"] = compile_result["ratio"] <= COMPILE_TARGET
    info = machine(args.threads)
    info["load average (1, 5, 15 min) before / after"] = f"{load_before} / {loadavg()}"
    return {
        "machine": info,
        "settings": {
            "reps": args.reps,
            "slow_reps": args.slow_reps,
            "warmup": args.warmup,
            "compile_runs": args.compile_runs,
            "quick": args.quick,
            "threads": args.threads,
        },
        "rows": rows,
        "train_rows": train_rows,
        "compile": compile_result,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def mb(value: int) -> str:
    return f"{value / 2**20:.2f}"


HEADER = (
    "| workload | padding | hand-written ms | generated ms | gen/hand (IQR) | target | met | "
    "loop ms | keras ms | keras TF ms | keras JAX ms | TF/gen | JAX/gen | "
    "mem hand MiB | mem gen MiB | mem gen/hand | met | mem TF MiB | mem JAX MiB | mem gen/TF | mem gen/JAX |"
)
RULE = "|" + "---|" * 21


def format_row(row: dict) -> str:
    ms = row["ms"]
    lo, hi = row["ratio_iqr"]
    return (
        f"| {row['workload']} | {row['pattern']} | {ms['handwritten']:.2f} | {ms['generated']:.2f} | "
        f"{row['ratio']:.3f} ({lo:.2f}-{hi:.2f}) | <= {row['target']:.2f} | {'yes' if row['time_ok'] else '**no**'} | "
        f"{ms['loop']:.1f} | {ms['keras']:.1f} | {ms['keras_tf']:.2f} | {ms['keras_jax']:.2f} | "
        f"{row['tf_speedup']:.2f} | {row['jax_speedup']:.2f} | "
        f"{mb(row['memory']['handwritten'])} | {mb(row['memory']['generated'])} | {row['memory_ratio']:.2f} | "
        f"{'yes' if row['memory_ok'] else '**no**'} | {mb(row['memory']['keras_tf'])} | "
        f"{mb(row['memory']['keras_jax'])} | "
        f"{'n/a' if row['tf_memory_ratio'] is None else format(row['tf_memory_ratio'], '.2f')} | "
        f"{row['jax_memory_ratio']:.2f} |"
    )


TRAIN_HEADER = (
    "| workload | padding | hand-written ms | generated ms | gen/hand | keras TF ms | keras JAX ms | "
    "TF/gen | JAX/gen |"
)


def format_train_row(row: dict) -> str:
    ms = row["ms"]
    return (
        f"| {row['workload']} | {row['pattern']} | {ms['handwritten']:.2f} | {ms['generated']:.2f} | "
        f"{row['hand_ratio']:.3f} | {ms['keras_tf']:.2f} | {ms['keras_jax']:.2f} | "
        f"{row['tf_speedup']:.2f} | {row['jax_speedup']:.2f} |"
    )


def train_markdown(results: dict) -> list[str]:
    if not results["train_rows"]:
        return []
    return [
        "## Training step (forward + backward)",
        "",
        "The gradient of sum(output) w.r.t. every weight, inference mode (no dropout) in all four, no "
        "optimizer step: torch `backward()`; TF a `tf.function` with a `GradientTape`; JAX "
        "`jax.jit(jax.grad(...))` over `model.stateless_call`. Ratios as above (TF/gen, JAX/gen above 1: "
        "the generated PyTorch is faster).",
        "",
        TRAIN_HEADER,
        "|" + "---|" * 9,
        *[format_train_row(row) for row in results["train_rows"]],
        "",
    ]


def markdown(results: dict) -> str:
    m, s, c = results["machine"], results["settings"], results["compile"]
    lines = [
        "# rnnspec benchmark results",
        "",
        f"{results['date']}; {m['cpu']}, {m['cores']} cores, {m['threads']} thread(s) for torch and TF; "
        f"torch {m['torch']}, TensorFlow {m['tensorflow']}, Keras {m['keras']}, Python {m['python']}. "
        f"{s['reps']} interleaved repetitions after {s['warmup']} warm-up (loop and keras: the first "
        f"{s['slow_reps']}){' (--quick)' if s['quick'] else ''}. "
        f"Load average before / after: {m['load average (1, 5, 15 min) before / after']}.",
        "",
        "Forward pass, inference (`torch.no_grad()`, eval; Keras `model(x, training=False)`). "
        "ms = median per call; gen/hand = median of per-repetition ratios (interquartile range). "
        "Memory = peak bytes held during one forward above the level at its start, MiB, each "
        "framework's own figure: torch's CPU allocator (torch.profiler), TensorFlow's CPU allocator "
        "(`tf.config.experimental.get_memory_info`), XLA's temporaries and outputs of the compiled "
        "forward (`memory_analysis()`). TensorFlow's figure leaves out allocations under 256 KiB "
        "(its oneDNN small-size allocator keeps no peak): n/a where it saw none.",
        "",
        HEADER,
        RULE,
        *[format_row(row) for row in results["rows"]],
        "",
        *train_markdown(results),
        "## Compile latency",
        "",
        f'Cold `{c["command"]}` in a fresh process vs `python -c "import lark, jinja2"`, '
        f"median of {c['runs']} interleaved runs:",
        "",
        "| command | median ms |",
        "|---|---|",
        *[f"| {name} | {ms:.1f} |" for name, ms in c["median_ms"].items()],
        "",
        f"Ratio compile / import: **{c['ratio']:.2f}** (target <= {COMPILE_TARGET}): "
        f"{'met' if c['ok'] else '**not met**'}.",
        "",
        "Where a cold compile's time goes (median ms, fresh processes):",
        "",
        "| phase | ms |",
        "|---|---|",
        *[f"| {name} | {ms:.1f} |" for name, ms in c["breakdown_ms"].items()],
        "",
    ]
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = results["rows"]
    labels = [f"{r['workload']}\n{r['pattern']}" for r in rows]
    x = np.arange(len(rows))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(12, 0.6 * len(rows)), 10), sharex=True)
    width = 0.8 / len(measure.VARIANTS)
    colors = {
        "handwritten": "tab:gray",
        "generated": "tab:blue",
        "loop": "tab:orange",
        "keras": "tab:red",
        "keras_tf": "tab:brown",
        "keras_jax": "tab:pink",
    }
    for i, name in enumerate(measure.VARIANTS):
        top.bar(
            x + (i - (len(measure.VARIANTS) - 1) / 2) * width,
            [r["ms"][name] for r in rows],
            width,
            label=name,
            color=colors[name],
        )
    top.set_yscale("log")
    top.set_ylabel("ms per forward (median)")
    top.legend(ncol=len(measure.VARIANTS))
    top.set_title(
        f"rnnspec forward pass, {results['machine']['cpu']}, {results['machine']['threads']} thread(s), "
        f"torch {results['machine']['torch']}"
    )
    ratios = [r["ratio"] for r in rows]
    lo = [r["ratio"] - r["ratio_iqr"][0] for r in rows]
    hi = [r["ratio_iqr"][1] - r["ratio"] for r in rows]
    bar_colors = ["tab:green" if r["time_ok"] else "tab:red" for r in rows]
    bottom.bar(x - 0.18, ratios, 0.34, yerr=[lo, hi], color=bar_colors, label="time generated/hand (IQR)")
    bottom.bar(
        x + 0.18,
        [r["memory_ratio"] for r in rows],
        0.34,
        color="tab:purple",
        alpha=0.6,
        label="peak memory generated/hand",
    )
    for xi, r in zip(x, rows):
        bottom.hlines(r["target"], xi - 0.36, xi, colors="black", linestyles="--")
        bottom.hlines(MEMORY_TARGET, xi, xi + 0.36, colors="purple", linestyles=":")
    bottom.axhline(1.0, color="gray", linewidth=0.8)
    highest = max(max(r["ratio_iqr"][1], r["memory_ratio"]) for r in rows)
    bottom.set_ylim(0.6, max(1.6, highest + 0.05))
    bottom.set_ylabel("generated / hand-written")
    bottom.legend(loc="upper left", ncol=2, fontsize=8)
    bottom.set_title(
        "bars: ratios; dashed: time target (1.05 unmasked/right, 1.3 left/holes); dotted: memory target 1.2",
        fontsize=9,
    )
    bottom.set_xticks(x)
    bottom.set_xticklabels(labels, rotation=60, ha="right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 repetitions, 3 compile runs")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch and TF intra/inter-op threads (default 1)"
    )
    parser.add_argument("--reps", type=int, help="timed repetitions per variant (default 60, quick 3)")
    parser.add_argument("--warmup", type=int, help="untimed calls per variant first (default 3, quick 1)")
    parser.add_argument(
        "--slow-reps", type=int, help="repetitions that also time loop and keras (default 10)"
    )
    parser.add_argument("--compile-runs", type=int, help="runs of each compile-latency command (default 15)")
    parser.add_argument("--only", nargs="*", help="workloads whose name contains one of these")
    parser.add_argument(
        "--no-train",
        dest="train",
        action="store_false",
        help="skip the training-step (forward+backward) rows",
    )
    parser.add_argument(
        "--out", type=Path, default=HERE, help="directory for the results files (default benchmarks/)"
    )
    args = parser.parse_args(argv)
    args.reps = args.reps or (3 if args.quick else 60)
    args.warmup = args.warmup or (1 if args.quick else 3)
    args.slow_reps = min(args.reps, args.slow_reps or 10)
    args.compile_runs = args.compile_runs or (3 if args.quick else 15)

    print(HEADER + "\n" + RULE, flush=True)
    results = run(args)
    text = markdown(results)
    print(text[text.index("## Compile latency") :])
    # A smoke run does not overwrite the recorded results.
    stem = "results-quick" if args.quick else "results"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.md").write_text(text, encoding="utf-8")
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(f"wrote {args.out / stem}.md, .json, .png")
    try:
        plot(results, args.out / f"{stem}.png")
    except ImportError:
        print("matplotlib is not installed: no results.png (pip install matplotlib)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
