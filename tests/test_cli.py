"""The command line as a user meets it: output, exit codes, files written and files kept."""

import subprocess
import sys
from pathlib import Path

import pytest

from rnnspec import __version__
from rnnspec.cli import main
from tests.golden import EXAMPLES, GOLDEN

SPEC = "model m {\n    input x: float32[*, 4]\n    lstm(3)\n}\n"
TWO = SPEC + "model n {\n    input x: float32[*, 4]\n    gru(3)\n}\n"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_compile_prints_the_program(capsys):
    code, out, err = run(capsys, "compile", str(EXAMPLES / "sentiment.rnn"), "--target", "pytorch")
    assert (code, err) == (0, "")
    assert out == (GOLDEN / "sentiment.pytorch.py").read_text()


def test_compile_writes_output_atomically(tmp_path, capsys):
    out_file = tmp_path / "model.py"
    out_file.write_text("old")
    code, out, err = run(
        capsys, "compile", str(EXAMPLES / "sentiment.rnn"), "--target", "keras", "-o", str(out_file)
    )
    assert (code, out, err) == (0, "", "")
    assert out_file.read_text() == (GOLDEN / "sentiment.keras.py").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.py"]  # no temporary left behind


def test_compile_refuses_to_overwrite_the_spec(tmp_path, capsys):
    spec = tmp_path / "m.rnn"
    spec.write_text(SPEC)
    code, out, err = run(capsys, "compile", str(spec), "--target", "keras", "-o", str(spec))
    assert code == 2 and out == ""
    assert err == f"{spec}: error: refusing to overwrite an input file ({spec})\n"
    assert spec.read_text() == SPEC


def test_spec_error_exits_2_with_nothing_on_stdout_and_no_output_file(tmp_path, capsys):
    spec = tmp_path / "bad.rnn"
    spec.write_text("model m {\n    input x: float32[*, 4]\n    lstm(3, retrun_sequences=true)\n}\n")
    target = tmp_path / "out.py"
    code, out, err = run(capsys, "compile", str(spec), "--target", "pytorch", "-o", str(target))
    assert (code, out) == (2, "")
    assert err == (
        f"{spec}:3:13: error: `lstm` has no argument `retrun_sequences` (did you mean `return_sequences`?)\n"
        "        lstm(3, retrun_sequences=true)\n"
        "                ^\n"
    )
    assert not target.exists()


def test_several_models_need_model_option(tmp_path, capsys):
    spec = tmp_path / "two.rnn"
    spec.write_text(TWO)
    code, out, err = run(capsys, "compile", str(spec), "--target", "keras")
    assert (code, out) == (2, "")
    assert err == f"{spec}: error: this file defines 2 models (m, n); choose one with --model NAME\n"
    code, out, _ = run(capsys, "compile", str(spec), "--target", "keras", "--model", "n")
    assert code == 0 and 'name="n"' in out
    code, _, err = run(capsys, "compile", str(spec), "--target", "keras", "--model", "q")
    assert code == 2 and err == f"{spec}: error: no model `q` in this file; it defines: m, n\n"
    # verify said only "no model `q` in this file" (found by a new-user trial)
    assert run(capsys, "verify", str(spec), "--model", "q") == (
        2,
        "",
        f"{spec}: error: no model `q` in this file; it defines: m, n\n",
    )


def test_missing_file_and_non_utf8(tmp_path, capsys):
    code, out, err = run(capsys, "compile", str(tmp_path / "nope.rnn"), "--target", "keras")
    assert (code, out) == (2, "")
    assert err.startswith(f"{tmp_path / 'nope.rnn'}: error: cannot read the file: ")
    bad = tmp_path / "latin1.rnn"
    bad.write_bytes(b"model m {\n  # caf\xe9\n}\n")
    code, out, err = run(capsys, "compile", str(bad), "--target", "keras")
    assert (code, out) == (2, "")
    assert err == f"{bad}:2:8: error: the file is not UTF-8 text (byte 0xe9)\n"


def test_version_and_help():
    done = subprocess.run([sys.executable, "-m", "rnnspec", "--version"], capture_output=True, text=True)
    assert done.stdout == f"rnnspec {__version__}\n"
    done = subprocess.run([sys.executable, "-m", "rnnspec", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert "rnnspec compile examples/sentiment.rnn --target keras" in done.stdout


def test_unknown_target_is_a_usage_error():
    done = subprocess.run(
        [sys.executable, "-m", "rnnspec", "compile", "x.rnn", "--target", "jax"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "invalid choice: 'jax'" in done.stderr


def test_compile_imports_no_framework():
    code = (
        "import sys\n"
        "from rnnspec.cli import main\n"
        f"main(['compile', {str(EXAMPLES / 'attention.rnn')!r}, '--target', 'pytorch'])\n"
        "loaded = sorted(m for m in ('torch', 'tensorflow', 'keras', 'numpy') if m in sys.modules)\n"
        "print(loaded, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stderr.strip() == "[]"


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.rnn")))
def test_verify_examples_exit_0(example, capsys):
    code, out, err = run(capsys, "verify", str(EXAMPLES / example))
    assert code == 0, out + err
    assert ": ok  max |diff| " in out


def test_verify_reports_spec_errors_with_exit_2(tmp_path, capsys):
    spec = tmp_path / "bad.rnn"
    spec.write_text("model m {\n    input x: float32[*, 4]\n    lstm(0)\n}\n")
    code, out, err = run(capsys, "verify", str(spec))
    assert (code, out) == (2, "")
    assert err.startswith(f"{spec}:3:10: error: `units` of `lstm` must be a positive integer, got `0`")


def test_installed_console_script():
    exe = Path(sys.executable).with_name("rnnspec")
    done = subprocess.run([str(exe), "compile", str(EXAMPLES / "masking.rnn"), "--target", "keras"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0
    assert done.stdout == (GOLDEN / "masking.keras.py").read_text()
