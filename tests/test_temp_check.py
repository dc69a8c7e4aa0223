"""The suite's own guard (tests/conftest.py): a test that leaves a temp file fails, named."""

from pathlib import Path

CONFTEST = (Path(__file__).parent / "conftest.py").read_text(encoding="utf-8")


def test_a_test_that_leaves_a_temp_directory_fails_by_name(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_leaks="""
        import os
        import subprocess
        import sys
        import tempfile


        def test_clean(tmp_path):
            (tmp_path / "kept.txt").write_text("tmp_path is not the temp directory")
            with tempfile.TemporaryDirectory():
                pass


        def test_leaks_a_directory():
            tempfile.mkdtemp(prefix="leaked-")


        def test_a_subprocess_leaks_a_file():
            code = "import tempfile; tempfile.mkstemp(prefix='child-')"
            subprocess.run([sys.executable, "-c", code], check=True)


        def test_after_them_is_judged_on_its_own():
            assert os.listdir(tempfile.gettempdir()) == []
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks_a_directory*",
            "*test_leaks.py::test_leaks_a_directory left in the temp directory ($TMPDIR): leaked-*",
            "*test_leaks.py::test_a_subprocess_leaks_a_file left in the temp directory ($TMPDIR): child-*",
        ]
    )
    # The inner run's fresh directory sat in this test's: this run's guard saw it removed.
