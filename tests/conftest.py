"""Shared test configuration: hypothesis profiles, the pytester fixture, and a clean $TMPDIR.

The suite runs with TMPDIR pointed at a fresh, empty directory (subprocesses inherit it), and each
test fails at teardown if it leaves anything there: no test and no command it runs may leave a
temporary file behind. Tests that need files use pytest's `tmp_path`, whose base directory stays in
the original temp directory (PYTEST_DEBUG_TEMPROOT, unless --basetemp is given).
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["pytester"]

# "ci" (the default) is quick and reproducible; "thorough" searches ten times longer:
#   RNNSPEC_HYPOTHESIS_PROFILE=thorough python -m pytest tests/test_fuzz_equivalence.py
settings.register_profile(
    "ci", max_examples=50, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("RNNSPEC_HYPOTHESIS_PROFILE", "ci"))


_TEMP: dict[str, Path] = {}
_PREVIOUS_TMPDIR: list[str | None] = []


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    original = tempfile.gettempdir()
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
