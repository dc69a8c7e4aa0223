"""Where the generated code's time and memory go, for one workload and padding pattern.

    python benchmarks/diagnose.py                           # lstm 128 (seq), every pattern
    python benchmarks/diagnose.py --workload "gru 128 (seq)" --pattern right holes

Three views:

- stages (synthetic workloads): the generated `keras_rnn`'s statements (as in
  templates/pytorch.py.j2, fused path) timed one by one on the workload's real tensors,
  round-robin, next to the hand-written code's `pad_packed_sequence`;
- ops: torch.profiler self CPU time per aten op per forward, generated vs hand-written, sorted by
  the difference;
- memory: each torch variant's peak allocation and which op was running when it was reached.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import measure  # noqa: E402
import workloads  # noqa: E402


def stage_calls(rnn, x, mask, zero_masked: bool):
    """The generated keras_rnn (templates/pytorch.py.j2), statement by statement, on `rnn` (fused)."""
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    # Intermediate values, computed once so that each stage can be timed on its own input.
    batch, steps = mask.shape
    lengths = mask.sum(dim=1)
    row_start = torch.arange(batch).unsqueeze(1) * steps
    reorder = bool((mask[:, 1:] > mask[:, :-1]).any())
    order = torch.argsort((~mask).to(torch.uint8), dim=1, stable=True)
    front = x.flatten(0, 1).index_select(0, (order + row_start).flatten()).view_as(x) if reorder else x
    index = mask.cumsum(dim=1) - 1
    packed = pack_padded_sequence(front, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    packed_out, final = rnn(packed)

    def rows_of():
        sizes = packed_out.batch_sizes.to(x.device)
        offsets = sizes.cumsum(0) - sizes
        return offsets[index.clamp(min=0)] + packed_out.unsorted_indices.unsqueeze(1)

    rows = rows_of()
    empty = (lengths == 0).view(1, -1, 1)
    finals = final if isinstance(final, tuple) else (final,)
    outputs = packed_out.data.index_select(0, rows.flatten())
    keep = mask if zero_masked else index >= 0

    calls = {
        "mask.all() check": lambda: bool(mask.all()),
        "lengths = mask.sum, row_start": lambda: (mask.sum(dim=1), torch.arange(batch).unsqueeze(1) * steps),
        "reorder check (mask[:, 1:] > mask[:, :-1])": lambda: bool((mask[:, 1:] > mask[:, :-1]).any()),
        "argsort(~mask, stable) [left/holes]": lambda: torch.argsort(
            (~mask).to(torch.uint8), dim=1, stable=True
        ),
        "x index_select to the front [left/holes]": lambda: (
            x.flatten(0, 1).index_select(0, (order + row_start).flatten()).view_as(x)
        ),
        "index = mask.cumsum - 1": lambda: mask.cumsum(dim=1) - 1,
        "pack_padded_sequence(enforce_sorted=False), .cpu()": lambda: pack_padded_sequence(
            front, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        ),
        "rnn(packed)": lambda: rnn(packed),
        "rows: offsets[index] + unsorted_indices": rows_of,
        "torch.where(empty, ...) on finals and last": lambda: (
            [torch.where(empty, 0.0, f) for f in finals],
            torch.where(empty, 0.0, finals[0]),
        ),
        "packed.data.index_select(0, rows)": lambda: packed_out.data.index_select(0, rows.flatten()),
        "index_fill_ masked rows": lambda: outputs.index_fill_(
            0, (~keep).flatten().nonzero().squeeze(1), 0.0
        ),
        "(hand-written: pad_packed_sequence)": lambda: pad_packed_sequence(
            packed_out, batch_first=True, total_length=steps
        ),
    }
    if not reorder:
        del calls["argsort(~mask, stable) [left/holes]"], calls["x index_select to the front [left/holes]"]
    return calls


def time_round_robin(calls, reps: int):
    import torch

    samples = {name: [] for name in calls}
    with torch.no_grad():
        for call in calls.values():
            call()
        for rep in range(reps):
            names = list(calls)
            shift = rep % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                calls[name]()
                samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) * 1e3 for name, values in samples.items()}


def op_profile(call, runs: int = 5):
    """Self CPU ms per aten op per forward (averaged over `runs` profiled calls)."""
    from torch.profiler import ProfilerActivity, profile

    call()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(runs):
            call()
    return {e.key: e.self_cpu_time_total / 1e3 / runs for e in prof.key_averages()}


def memory_peak(call):
    """(peak bytes, the innermost op running at the peak, bytes live there)."""
    events = measure.memory_trace(call)
    mem = [e for e in events if e.get("name") == "[memory]"]
    if not mem:
        return 0, "-"
    peak = max(mem, key=lambda e: e["args"]["Total Allocated"])
    ops = [
        e
        for e in events
        if e.get("ph") == "X" and e.get("cat") == "cpu_op" and e["ts"] <= peak["ts"] <= e["ts"] + e["dur"]
    ]
    stack = " > ".join(e["name"] for e in sorted(ops, key=lambda e: e["ts"]))
    return peak["args"]["Total Allocated"], stack


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workload", default="lstm 128 (seq)")
    parser.add_argument("--pattern", nargs="*", default=list(workloads.PATTERNS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=40)
    args = parser.parse_args(argv)
    measure.setup_threads(args.threads)
    import torch

    (workload,) = [w for w in workloads.all_workloads() if w.name == args.workload]
    built = measure.build(workload)
    inputs = workloads.make_inputs(workload)
    rnn_name = next(n for n, m in built.generated.named_children() if isinstance(m, torch.nn.RNNBase))
    rnn = getattr(built.generated, rnn_name)
    for pattern in args.pattern:
        if pattern not in workload.patterns:
            continue
        x_np, valid = inputs[pattern]
        hand = measure.handwritten_for(workload, built, pattern)
        calls = measure.callables(workload, built, hand, x_np)
        print(
            f"\n=== {workload.name}, {pattern} padding, {valid.mean():.0%} of steps valid, "
            f"{args.threads} thread(s)"
        )
        if workload.vocab is not None and workload.group == "synthetic" and not valid.all():
            ids = torch.from_numpy(x_np)
            with torch.no_grad():
                x = built.generated.embedding_1(ids)
            stages = time_round_robin(
                stage_calls(rnn, x, ids != 0, zero_masked="bi" in workload.name), args.reps
            )
            whole = time_round_robin({n: calls[n] for n in ("handwritten", "generated")}, args.reps)
            print("\nstage of the generated keras_rnn (median ms, round-robin)")
            for name, ms in stages.items():
                print(f"  {name:58s} {ms:8.3f}")
            around = sum(ms for n, ms in stages.items() if n != "rnn(packed)" and not n.startswith("("))
            print(f"  {'total around the kernel':58s} {around:8.3f}")
            print("whole forward (median ms): " + ", ".join(f"{n} {ms:.2f}" for n, ms in whole.items()))
        with torch.no_grad():
            gen, hw = op_profile(calls["generated"]), op_profile(calls["handwritten"])
        print("\nop self CPU ms per forward (profiled): generated, hand-written, difference")
        diffs = sorted(set(gen) | set(hw), key=lambda k: -(gen.get(k, 0) - hw.get(k, 0)))
        for key in diffs[:10]:
            print(
                f"  {key:40s} {gen.get(key, 0):8.3f} {hw.get(key, 0):8.3f} {gen.get(key, 0) - hw.get(key, 0):+8.3f}"
            )
        print(f"  {'total':40s} {sum(gen.values()):8.3f} {sum(hw.values()):8.3f}")
        print("\npeak memory: MB, op running at the peak")
        with torch.no_grad():
            for name in ("handwritten", "generated"):
                peak, stack = memory_peak(calls[name])
                print(f"  {name:12s} {peak / 2**20:7.2f}  {stack}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
