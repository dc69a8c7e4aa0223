"""Shared test configuration: hypothesis profiles, the pytester fixture, and a clean $TMPDIR.

The suite runs with TMPDIR pointed at a fresh, empty directory (subprocesses inherit it), and each
test fails at teardown if it leaves anything there: no test and no command it runs may leave a
temporary file behind. Tests that need files use pytest's `tmp_path`, whose base directory stays in
the original temp directory (PYTEST_DEBUG_TEMPROOT, unless --basetemp is given).
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

# One torch thread (set before torch is imported, and inherited by the commands tests run): the
# suite's tensors are tiny, and on 2 cores shared with TensorFlow (or another process) torch's
# spinning thread pool made the runtime tests 4x slower (4 s against 18 s).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["pytester"]

# Hypothesis profiles. Tests give their example counts relative to the profile's (`examples(n)`
# in tests/helpers.py: n under "ci"). The default tier draws a fifth ("quick"); every property
# test also runs in the `slow` tier, which draws the full count ("ci", also the profile of a run
# of both tiers); "thorough" searches ten times longer:
#   RNNSPEC_HYPOTHESIS_PROFILE=thorough python -m pytest -m slow tests/test_fuzz_equivalence.py
PROFILE_EXAMPLES = {"quick": 10, "ci": 50, "thorough": 500}
for _name, _count in PROFILE_EXAMPLES.items():
    settings.register_profile(
        _name,
        max_examples=_count,
        deadline=None,
        derandomize=_name != "thorough",
        suppress_health_check=[HealthCheck.too_slow],
    )


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (pyproject's addopts): a worker per core, at most four. Each worker imports
    TensorFlow, Keras and torch (about 7 s of CPU and 1 GiB), which more workers would not win
    back on ~1,000 tests; `-n 0` runs in one process (a single file, a debugger)."""
    return max(
        1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    )


_TEMP: dict[str, Path] = {}
_PREVIOUS_TMPDIR: list[str | None] = []


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # (a pytest-xdist worker inherits the fresh TMPDIR of the run that started it: it takes its own
    # beside that one, so that each directory is judged by the process that made it)
    original = os.environ.get("PYTEST_DEBUG_TEMPROOT") or tempfile.gettempdir()
    os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", original)  # tmp_path's base stays out of it
    fresh = Path(tempfile.mkdtemp(prefix="rnnspec-tests-tmp-", dir=original))
    # torch.optim's first step creates torch inductor's cache, $TMPDIR/torchinductor_$USER, and
    # keeps it: a cache of torch's own, by design, which the tests put beside the fresh directory
    # and remove (unless one is set).
    inductor = Path(tempfile.mkdtemp(prefix="rnnspec-tests-torchinductor-", dir=original))
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(inductor)
    _TEMP.update(fresh=fresh, inductor=inductor)
    _PREVIOUS_TMPDIR.append(os.environ.get("TMPDIR"))
    os.environ["TMPDIR"] = str(fresh)
    tempfile.tempdir = None  # gettempdir() reads TMPDIR again
    # Before the test modules are imported: their @settings read the profile then.
    default_tier = config.getoption("markexpr", "") == "not slow"
    settings.load_profile(os.environ.get("RNNSPEC_HYPOTHESIS_PROFILE", "quick" if default_tier else "ci"))
    if "torch" in sys.modules:  # imported before this file (by another plugin): too late for the variable
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def _left_in_temp() -> list[str]:
    fresh = _TEMP["fresh"]
    return sorted(os.listdir(fresh)) if fresh.exists() else []


@pytest.fixture(autouse=True)
def _nothing_left_in_the_temp_directory(request: pytest.FixtureRequest):
    before = set(_left_in_temp())
    yield
    left = [name for name in _left_in_temp() if name not in before]
    for name in left:  # so that the next test is judged on its own
        path = _TEMP["fresh"] / name
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    if left:
        pytest.fail(f"{request.node.nodeid} left in the temp directory ($TMPDIR): {', '.join(left)}")


def pytest_sessionfinish(session: pytest.Session) -> None:
    left = _left_in_temp()  # from collection, or a session-wide fixture
    shutil.rmtree(_TEMP["fresh"], ignore_errors=True)
    shutil.rmtree(_TEMP["inductor"], ignore_errors=True)
    previous = _PREVIOUS_TMPDIR.pop()
    if previous is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = previous
    tempfile.tempdir = None
    if left:
        print(f"\nleft in the temp directory ($TMPDIR) outside any test: {', '.join(left)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# --- the default tier ---------------------------------------------------------------------------
# `python -m pytest` runs the default tier (addopts: -m 'not slow'); `-m slow` runs the rest, and CI
# runs both. A test written once per example runs, in the default tier, on these: a stack with a
# mask, a masked float input, the stateful example, and the seq2seq graph (three models); every other
# example runs in the slow tier. Tests marked `slow` in their files are the other half of the rule.
DEFAULT_TIER_EXAMPLES = frozenset({"sentiment", "masking", "paragraphs", "seq2seq"})
EXAMPLE_STEMS = frozenset(p.stem for p in (Path(__file__).resolve().parent.parent / "examples").glob("*.rnn"))

# Single tests too slow for the default tier, each with what keeps its subject covered there.
SLOW_TESTS = {
    # a fresh pytest process loading the plugin through its entry point; the plugin's items and
    # reports are tested in process (test_a_compiler_bug_fails_the_item_with_the_report)
    "tests/test_pytest_plugin.py::test_one_passing_item_per_model_and_a_failing_item_for_spec_errors",
    # a `rnnspec verify` subprocess; the same file name is compiled and checked in process
    "tests/test_hardening.py::test_verify_on_a_spec_named_to_inject_code_runs_nothing",
    # exports: the default tier exports seq2seq (torch.export, trained weights, a free length per
    # input), a graph with mask and state inputs (ONNX), and paragraphs' carried state (ONNX)
    "tests/test_export.py::test_torch_export_artefact_equals_keras[masking]",
    "tests/test_export.py::test_torch_export_artefact_equals_keras[stepped]",
    "tests/test_export.py::test_onnx_artefact_equals_keras[stateful_masked]",
    "tests/test_export.py::test_the_artefact_holds_the_trained_weights_given",
    # gradients: proved in the default tier by test_gradients' other cases; these add the JSON
    # report and the new layers
    "tests/test_gradients.py::test_gradients_in_json",
    "tests/test_one_input_layers.py::test_gradients_agree_through_the_new_layers",
    # trained user layers: ported and verified in test_extern's default cases without training
    "tests/test_extern.py::test_trained_weights_of_user_layers_port_and_verify",
    # import: the conv2d front (default) covers convolutions over a varying length; a script's
    # class is named (a subprocess) where the default tier names a module's
    "tests/test_import_layers.py::test_a_speech_front_over_a_varying_length_imports_and_verifies",
    "tests/test_import_layers.py::test_a_layer_class_written_in_a_script_is_named",
}


@pytest.fixture(autouse=True)
def hypothesis_tier(request: pytest.FixtureRequest) -> str | None:
    """Which tier a property test's copy belongs to (None for any other test): pytest_generate_tests
    gives each property test a copy in each tier, so that the `slow` tier draws the full count."""
    return getattr(request, "param", None)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if getattr(metafunc.function, "is_hypothesis_test", False) and not metafunc.definition.get_closest_marker(
        "slow"
    ):
        tiers = ["default-tier", pytest.param("slow-tier", marks=pytest.mark.slow)]
        metafunc.parametrize("hypothesis_tier", tiers, indirect=True)


def _example(item: pytest.Item) -> str | None:
    """The example a parametrized test runs on, if any."""
    callspec = getattr(item, "callspec", None)
    for value in callspec.params.values() if callspec else ():
        if isinstance(value, str | os.PathLike):
            stem = Path(value).name.split(".")[0]
            if stem in EXAMPLE_STEMS:
                return stem
    return None


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        example = _example(item)
        if item.nodeid in SLOW_TESTS or (example is not None and example not in DEFAULT_TIER_EXAMPLES):
            item.add_marker(pytest.mark.slow)
