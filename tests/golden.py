"""Golden files: the generated programs of every example, byte for byte.

Regenerate with `python tests/golden.py`; `python tests/golden.py --check` exits 1 if any would change.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GOLDEN = ROOT / "tests" / "golden"
SUFFIX = {"keras": "keras.py", "pytorch": "pytorch.py"}


def example_models() -> list[tuple[Path, str]]:
    """Every (example file, model name): examples/seq2seq.rnn holds three models."""
    from rnnspec.check import load_models

    return [
        (spec, model.name)
        for spec in sorted(EXAMPLES.glob("*.rnn"))
        for model in load_models(spec.read_text(encoding="utf-8"))
    ]


def expected_files() -> dict[Path, str]:
    """One golden file per target per model: `STEM.SUFFIX`, or `STEM.MODEL.SUFFIX` for a file of
    several models (examples/seq2seq.rnn: the training graph and its two inference models)."""
    from rnnspec.compiler import generate, load_models

    files = {}
    for spec in sorted(EXAMPLES.glob("*.rnn")):
        models = load_models(spec.read_text(encoding="utf-8"))
        for model in models:
            stem = spec.stem if len(models) == 1 else f"{spec.stem}.{model.name}"
            for target, suffix in SUFFIX.items():
                files[GOLDEN / f"{stem}.{suffix}"] = generate(model, target, spec.name)
    return files


def unified_diff(path: Path, expected: str, actual: str) -> str:
    """What regenerating `path` would change: its golden bytes (a) against the generated program (b)."""
    name = path.relative_to(ROOT).as_posix()
    lines = difflib.unified_diff(
        expected.splitlines(keepends=True), actual.splitlines(keepends=True), f"a/{name}", f"b/{name}"
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    files = expected_files()
    for path, text in files.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(path)
            if not check:
                path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{'would change' if check else 'wrote'}: {path.relative_to(ROOT)}")
        if check:
            old = path.read_text(encoding="utf-8") if path.exists() else ""
            print(unified_diff(path, old, files[path]), end="")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
