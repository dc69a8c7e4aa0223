"""How long `rnnspec verify` takes per model: each example, by default and with --thorough.

    python benchmarks/verify_time.py

The frameworks are imported (and TensorFlow warmed up on one model) before the clock starts, so
the figures are the per-model cost a run over many specs pays; a fresh `rnnspec verify` process
adds the import (about 3 s). Each figure is the median of three runs.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rnnspec.check import load_models  # noqa: E402
from rnnspec.options import VerifyOptions  # noqa: E402
from rnnspec.verify import import_frameworks, verify_one  # noqa: E402


def seconds(model, name: str, options: VerifyOptions) -> float:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        result, _ = verify_one(model, name, options)
        times.append(time.perf_counter() - start)
        assert result.passed, result
    return statistics.median(times)


def main() -> None:
    import_frameworks()
    examples = sorted((ROOT / "examples").glob("*.rnn"))
    warm = load_models(examples[0].read_text())[0]
    verify_one(warm, examples[0].name, VerifyOptions())
    print(f"{'model':<26} {'default':>8} {'--thorough':>11}")
    for path in examples:
        for model in load_models(path.read_text()):
            default = seconds(model, path.name, VerifyOptions())
            thorough = seconds(model, path.name, VerifyOptions(thorough=True))
            print(f"{model.name:<26} {default:>7.2f}s {thorough:>10.2f}s", flush=True)


if __name__ == "__main__":
    main()
