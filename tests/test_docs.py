"""docs/language.md stays in step with the schemas and the grammar."""

import re

from rnnspec.ir import ACTIVATIONS, MERGE_MODES
from rnnspec.kinds import LAYER_SCHEMAS
from tests.golden import ROOT

DOC = (ROOT / "docs" / "language.md").read_text()


def table_row(kind: str) -> str:
    (row,) = [line for line in DOC.splitlines() if line.startswith(f"| `{kind}` |")]
    return row


def test_every_layer_and_argument_is_documented():
    for kind, schema in LAYER_SCHEMAS.items():
        row = table_row(kind)
        for name in schema.attrs:
            if kind in ("lstm", "gru") and name not in (
                "recurrent_activation",
                "unit_forget_bias",
                "reset_after",
            ):
                continue  # "as `simple_rnn`, plus ..."
            assert re.search(rf"\b{name}\b", row), (kind, name)


def test_every_activation_and_merge_mode_is_documented():
    for name in ACTIVATIONS + MERGE_MODES:
        assert re.search(rf"\b{name}\b", DOC), name


def test_keywords_match_the_grammar():
    grammar = (ROOT / "grammars" / "rnnspec.lark").read_text()
    keywords = set(re.findall(r'"([a-z]+)"', grammar))
    assert keywords == {"model", "input", "output", "as", "true", "false", "extern", "layer"}
    assert "Keywords: `model input output as true false extern layer`" in DOC


def test_ci_runs_the_readme_test_command_both_tiers():
    readme = (ROOT / "README.md").read_text()
    (command,) = [
        line for line in readme.splitlines() if line.startswith("python3 -m venv") and "test]" in line
    ]
    tests = command.split("-e '.[torch,test]' && ", 1)[1]
    assert tests == "python -m pytest -q && python -m pytest -q -m slow"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == tests
    assert "-m 'not slow'" in (ROOT / "pyproject.toml").read_text()  # the default tier
