"""One helper that takes a spec and checks every target at once."""

from __future__ import annotations

from rnnspec.check import load_model
from rnnspec.compiler import generate
from rnnspec.equivalence.harness import Programs, Result, configure_frameworks, verify
from rnnspec.options import VerifyOptions


def verify_spec(source: str, **options) -> Result:
    """Compile `source` to both targets, verify them, and fail with the report if they differ."""
    configure_frameworks()
    model = load_model(source)
    programs = Programs(generate(model, "keras", "spec.rnn"), generate(model, "pytorch", "spec.rnn"))
    result = verify(model, programs, VerifyOptions(**options))
    assert result.passed, f"{result}\n--- spec ---\n{source}\n--- pytorch ---\n{programs.torch_code}"
    return result
