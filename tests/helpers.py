"""Helpers that take a spec and check every target at once: verified equal, or generating given code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import settings

from rnnspec.check import load_model
from rnnspec.compiler import compile_source, generate
from rnnspec.equivalence import inputs as inputs_mod
from rnnspec.equivalence.harness import Programs, Result, configure_frameworks, verify
from rnnspec.options import VerifyOptions


def verify_spec(source: str, batches: str = "all", **options) -> Result:
    """Compile `source` to both targets, verify them, and fail with the report if they differ.

    `batches`: "all" of verify's batches; "short" without the one longer than 255 steps; "long"
    that one only (the default tier's matrix runs "short", the `slow` tier "long" of the same case).
    """
    configure_frameworks()
    model = load_model(source)
    programs = Programs(generate(model, "keras", "spec.rnn"), generate(model, "pytorch", "spec.rnn"))
    with _only_batches(batches):
        result = verify(model, programs, VerifyOptions(**options))
    assert result.passed, f"{result}\n--- spec ---\n{source}\n--- pytorch ---\n{programs.torch_code}"
    return result


def has_long_batch(source: str) -> bool:
    """Whether verify runs a batch longer than 255 steps on this spec (a free time axis)."""
    timed, fixed = inputs_mod._time_axis(load_model(source))
    return timed and fixed is None


def split_long(param, batches: str = "short"):
    """A default-tier case as two: its `batches` here, and its long batch alone in the `slow` tier.
    A `slow` case stays as it is, with all its batches."""
    (source,) = param.values
    if any(mark.name == "slow" for mark in param.marks):
        yield pytest.param(source, "all", id=param.id, marks=param.marks)
        return
    yield pytest.param(source, batches, id=param.id)
    if has_long_batch(source):
        long_id = f"{param.id}|long" if param.id else None
        yield pytest.param(source, "long", id=long_id, marks=pytest.mark.slow)


@contextmanager
def _only_batches(batches: str) -> Iterator[None]:
    if batches == "all":
        yield
        return
    original = inputs_mod.cases
    long_name = f"{inputs_mod.LONG_STEPS} timesteps"

    def cases(*args, **kwargs):
        found = [c for c in original(*args, **kwargs) if (c.name == long_name) == (batches == "long")]
        assert found, f"no {batches} batches to verify"
        return found

    inputs_mod.cases = cases
    try:
        yield
    finally:
        inputs_mod.cases = original


def spec_text(spec: str) -> str:
    """A whole spec as given, or a model body (its lines, without `model m { ... }`) wrapped as `m`."""
    if spec.lstrip().startswith("model"):
        return spec
    body = "\n".join(f"    {line.strip()}" for line in spec.strip().splitlines())
    return f"model m {{\n{body}\n}}\n"


def assert_generates(spec: str, keras: str | list[str] = (), pytorch: str | list[str] = ()) -> dict[str, str]:
    """Compile `spec` (a whole spec or a model body) and check each snippet is in its target's program.

    As sqlglot's `validate_all`: a snippet is an exact substring of the generated code (one or
    more lines as the program writes them, inner lines with their indentation); a failure shows the
    snippet and the whole program. Returns the programs by target.
    """
    source = spec_text(spec)
    programs = {}
    for target, snippets in (("keras", keras), ("pytorch", pytorch)):
        code = compile_source(source, target, "spec.rnn")
        programs[target] = code
        for snippet in [snippets] if isinstance(snippets, str) else snippets:
            assert snippet, "an empty snippet proves nothing"
            assert snippet in code, (
                f"the {target} program lacks:\n{snippet}\n--- spec ---\n{source}--- {target} program ---\n{code}"
            )
    return programs


def examples(count: int) -> int:
    """`count` examples under the "ci" profile (the `slow` tier's), scaled to the loaded profile:
    a fifth in the default tier, ten times as many under "thorough"."""
    return max(1, count * settings().max_examples // 50)
