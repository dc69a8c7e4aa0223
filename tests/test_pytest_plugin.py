"""The pytest plugin (`pytest --rnnspec`), run with pytester in a temporary directory.

Runs that verify models go through a subprocess, which imports the plugin from its `pytest11`
entry point exactly as a user's pytest does; the mismatch report runs in this process (the same
entry point, loaded by this pytest), sparing a second start of TensorFlow and PyTorch.
"""

from __future__ import annotations

from rnnspec.frameworks import import_frameworks

GOOD = """\
model one {
    input tokens: int32[*]
    embedding(20, 4, mask_zero=true)
    lstm(3)
}

model two {
    input x: float32[*, 3]
    gru(2, return_sequences=true)
    dense(1)
}
"""

BAD = """\
model broken {
    input x: float32[*, 3]
    lstm(3, retrun_sequences=true)
}
"""

SWAPPED = """\
model swapped {
    input x: float32[*, 3]
    gru(2, activation=relu, return_sequences=true)
}
"""

# Breaks the generated PyTorch program of model `swapped` (GRU gate blocks swapped), as a
# compiler bug would.
SWAP_GATES_CONFTEST = """
import rnnspec.compiler
import rnnspec.verify

original = rnnspec.compiler.generate


def generate(model, target, source_name):
    code = original(model, target, source_name)
    if target == "pytorch" and model.name == "swapped":
        edited = code.replace("x_r, x_z, x_n = projected", "x_z, x_r, x_n = projected")
        assert edited != code
        return edited
    return code


rnnspec.compiler.generate = rnnspec.verify.generate = generate


def pytest_unconfigure(config):  # the run is in-process: later tests get the real compiler back
    rnnspec.compiler.generate = rnnspec.verify.generate = original
"""

FRAMEWORKS_CONFTEST = """
import sys


def pytest_terminal_summary(terminalreporter):
    loaded = [name for name in ("keras", "tensorflow", "torch") if name in sys.modules]
    terminalreporter.write_line(f"frameworks imported: {loaded}")
"""


def test_one_passing_item_per_model_and_a_failing_item_for_spec_errors(pytester):
    pytester.makefile(".rnn", good=GOOD, bad=BAD)
    result = pytester.runpytest_subprocess("--rnnspec", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines_random(
        [
            "*good.rnn::one PASSED*",
            "*good.rnn::two PASSED*",
            "*bad.rnn::spec FAILED*",
            "bad.rnn:3:13: error: `lstm` has no argument `retrun_sequences` (did you mean `return_sequences`?)",
            "*lstm(3, retrun_sequences=true)",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_a_mismatch_fails_with_the_verify_report(pytester):
    pytester.makefile(".rnn", swapped=SWAPPED)
    pytester.makeconftest(SWAP_GATES_CONFTEST)
    import_frameworks()  # before the run: pytester's in-process run unloads what it imported
    result = pytester.runpytest_inprocess("--rnnspec", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "swapped.rnn: swapped: MISMATCH  max |diff| *",
            "  first layer that diverges: `gru_1`",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_without_the_option_no_rnn_file_is_collected(pytester):
    pytester.makefile(".rnn", good=GOOD, bad=BAD)
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["test_plain.py::test_plain"])
    result.stdout.no_fnmatch_line("*.rnn*")
    assert result.ret == 0


def test_collecting_imports_no_framework(pytester):
    pytester.makefile(".rnn", good=GOOD, bad=BAD)
    pytester.makeconftest(FRAMEWORKS_CONFTEST)
    result = pytester.runpytest_subprocess("--rnnspec", "--collect-only", "-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines_random(
        ["good.rnn::one", "good.rnn::two", "bad.rnn::spec", "frameworks imported: []"]
    )


def test_option_is_documented(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--rnnspec*"])
