"""No input ever produces a traceback or a program that does not load; no spec injects code."""

import ast
import contextlib
import io
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from rnnspec.cli import main
from rnnspec.compiler import GENERATORS
from rnnspec.targets.pytorch import camel_case
from tests.golden import EXAMPLES
from tests.helpers import examples

SPECS = [p.read_text() for p in sorted(EXAMPLES.glob("*.rnn"))]
TOKEN = re.compile(r"#[^\n]*|[A-Za-z_][A-Za-z0-9_]*|[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\S|\s+")


def run_cli(tmp_path, data: bytes, target: str) -> tuple[int, str, str]:
    spec = tmp_path / "fuzz.rnn"
    spec.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["compile", str(spec), "--target", target, "--model", "m"] if b"model m " in data else
                    ["compile", str(spec), "--target", target])  # fmt: skip
    return code, out.getvalue(), err.getvalue()


def assert_clean(code: int, out: str, err: str) -> None:
    assert "Traceback" not in err
    if code == 0:
        ast.parse(out)  # the program loads as Python
        assert err == ""
    else:
        assert code == 2 and out == ""
        assert re.match(r"^\S*fuzz\.rnn(:\d+:\d+)?: error: ", err), err


@settings(max_examples=examples(150))
@given(data=st.binary(max_size=300), target=st.sampled_from(sorted(GENERATORS)))
def test_random_bytes(tmp_path_factory, data, target):
    assert_clean(*run_cli(tmp_path_factory.mktemp("b"), data, target))


@settings(max_examples=examples(300))
@given(
    spec=st.sampled_from(SPECS),
    edits=st.lists(
        st.tuples(st.sampled_from(["delete", "duplicate", "swap"]), st.integers(0, 10_000)),
        min_size=1,
        max_size=3,
    ),
    target=st.sampled_from(sorted(GENERATORS)),
)
def test_mutated_specs(tmp_path_factory, spec, edits, target):
    tokens = TOKEN.findall(spec)
    for op, where in edits:
        i = where % len(tokens)
        if op == "delete":
            del tokens[i]
        elif op == "duplicate":
            tokens.insert(i, tokens[i])
        elif i + 1 < len(tokens):
            tokens[i], tokens[i + 1] = tokens[i + 1], tokens[i]
    assert_clean(*run_cli(tmp_path_factory.mktemp("m"), "".join(tokens).encode(), target))


IDENT = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)


@settings(max_examples=examples(200))
@given(model=IDENT, inp=IDENT, layer=IDENT, target=st.sampled_from(sorted(GENERATORS)))
def test_names_cannot_inject_code(tmp_path_factory, model, inp, layer, target):
    source = f"model {model} {{\n    input {inp}: float32[*, 3]\n    lstm(2, return_sequences=true) as {layer}\n    dense(1)\n}}\n"
    code, out, err = run_cli(tmp_path_factory.mktemp("n"), source.encode(), target)
    assert_clean(code, out, err)
    if code:
        return
    tree = ast.parse(out)
    # Spec names appear only as identifiers and as string constants equal to themselves.
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert re.fullmatch(r"[\w.` ,()'-:;=]*", node.value) or "\n" in node.value, node.value
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    allowed = {"AttentionPooling", camel_case(model)}  # the generated classes are meant to be called
    assert not calls & {"eval", "exec", "__import__", "compile", "open", model, inp, layer} - allowed
