"""The wheel ships the grammar and templates: install it into a fresh venv and compile elsewhere."""

import subprocess
import sys
import venv
from pathlib import Path

import jinja2
import lark
import markupsafe

from tests.golden import EXAMPLES, GOLDEN, ROOT


def test_wheel_installs_and_compiles_from_another_directory(tmp_path):
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = dist.glob("rnnspec-*.whl")

    env = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env)
    python = env / "bin" / "python"
    site = Path(subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                        text=True).strip())  # fmt: skip
    # No downloads at test time: install the wheel alone, and let the venv see the
    # dependencies this interpreter already has.
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    deps = {str(Path(m.__file__).resolve().parent.parent) for m in (lark, jinja2, markupsafe)}
    (site / "deps.pth").write_text("\n".join(sorted(deps)) + "\n")

    work = tmp_path / "elsewhere"
    work.mkdir()
    spec = work / "sentiment.rnn"
    spec.write_text((EXAMPLES / "sentiment.rnn").read_text())
    done = subprocess.run(
        [str(env / "bin" / "rnnspec"), "compile", "sentiment.rnn", "--target", "pytorch"],
        capture_output=True,
        text=True,
        cwd=work,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (GOLDEN / "sentiment.pytorch.py").read_text()
    where = subprocess.check_output(
        [str(python), "-c", "import rnnspec.resources as r; print(r.resource_dir('grammars'))"],
        text=True,
        cwd=work,
    )
    assert Path(where.strip()).is_relative_to(site)
