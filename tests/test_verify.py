"""`rnnspec verify` itself: its options, its batches, the modes it proves, its float64
judgement of a float32 difference, its JSON, and the files it leaves (none)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from rnnspec.check import load_model
from rnnspec.cli import main
from rnnspec.compiler import compile_source, generate
from rnnspec.equivalence import inputs
from rnnspec.equivalence.harness import Programs, verify
from rnnspec.options import VerifyOptions

SMALL = "model small {\n    input tokens: int32[*]\n    embedding(20, 4, mask_zero=true)\n    gru(3)\n}\n"

# Three linear recurrences in a row: outputs grow to 1e10 over the 260-step batch, and float32
# round-off with them (1.5e4 apart), while in float64 the programs agree to 1e-12.
GROWING = """model growing {
    input x: float32[*, 4]
    simple_rnn(32, activation=linear, return_sequences=true)
    simple_rnn(32, activation=linear, return_sequences=true)
    simple_rnn(32, activation=linear, return_sequences=true)
    dense(2)
}
"""


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def spec_file(tmp_path, text: str) -> str:
    path = tmp_path / "spec.rnn"
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- options ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--atol", "nan"], "argument --atol: must be a finite number >= 0, got `nan`"),
        (["--rtol", "nan"], "argument --rtol: must be a finite number >= 0, got `nan`"),
        (["--atol", "-1"], "argument --atol: must be a finite number >= 0, got `-1`"),
        (["--rtol", "inf"], "argument --rtol: must be a finite number >= 0, got `inf`"),
        (["--atol", "tiny"], "argument --atol: expected a number such as 1e-5, got `tiny`"),
        (["--chunks", "0"], "argument --chunks: the number of chunks must be in [1, 1000], got 0"),
        (["--batch", "0"], "argument --batch: the batch size must be in [1, 4096], got 0"),
        (["--batch", "-3"], "argument --batch: the batch size must be in [1, 4096], got -3"),
        (["--time", "0"], "argument --time: the number of timesteps must be in [1, 100000], got 0"),
        (["--time", "inf"], "argument --time: expected a whole number, got `inf`"),
        (["--seed", "-1"], "argument --seed: the seed must be in [0, 4294967295], got -1"),
        (["--seed", "4294967296"], "argument --seed: the seed must be in [0, 4294967295], got 4294967296"),
        (["--seed", "1.5"], "argument --seed: expected a whole number, got `1.5`"),
    ],
)
def test_bad_option_exits_2_with_the_reason(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", spec_file(tmp_path, SMALL), *argv])
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2
    assert out == ""
    assert err.endswith(f"rnnspec verify: error: {message}\n")


def test_options_reach_verify_through_the_dataclass():
    from rnnspec.cli import build_parser

    args = build_parser().parse_args(["verify", "x.rnn", "--seed", "7", "--atol", "1e-4", "--thorough"])
    assert VerifyOptions.from_args(args) == VerifyOptions(seed=7, atol=1e-4, thorough=True)
    defaults = build_parser().parse_args(["verify", "x.rnn"])
    assert VerifyOptions.from_args(defaults) == VerifyOptions()


# --- batches ---------------------------------------------------------------------------------


def padding_of(model, case) -> np.ndarray:
    """Per row and step, whether the step is padding (token id 0)."""
    return case.array == 0


def test_default_batches_cover_what_edits_break():
    model = load_model(SMALL)
    found = {case.name: case for case in inputs.cases(model, 6, 7, seed=0)}
    pad = {name: padding_of(model, case) for name, case in found.items()}
    assert list(found) == [
        "mixed padding",
        "no padding",
        "right padding",
        "interior holes",
        "one step valid",
        "one row",
        "one timestep",
        "260 timesteps",
    ]
    # Holes only inside the rows: every row's first and last steps valid, every row with a hole.
    holes = pad["interior holes"]
    assert not holes[:, 0].any() and not holes[:, -1].any() and holes.any(axis=1).all()
    # Only the first, or only the last, step valid.
    one = ~pad["one step valid"]
    assert (one.sum(axis=1) == 1).all() and one[0, 0] and one[1, -1]
    assert found["one row"].array.shape[0] == 1
    # One timestep, with a padded row among valid ones.
    single = pad["one timestep"]
    assert single.shape[1] == 1 and single.any() and not single.all()
    # Longer than 255 valid steps in a row, in a batch that is not all valid.
    long = ~pad["260 timesteps"]
    assert long.sum(axis=1).max() > 255 and not long.all()
    assert all(case.every_mode for name, case in found.items() if name != "260 timesteps")


def test_a_sixteen_bit_program_gets_a_batch_past_65536_steps():
    model = load_model(SMALL)
    names = [case.name for case in inputs.cases(model, 6, 7, seed=0, sixteen_bit=True)]
    assert names[-1] == "65600 timesteps"
    (long,) = [c for c in inputs.cases(model, 6, 7, seed=0, sixteen_bit=True) if c.name == names[-1]]
    assert (long.array != 0).sum(axis=1).max() > 65_536


def test_stateful_chunks_differ_in_length():
    model = load_model("model s(batch_size=4) {\n    input x: float32[*, 3]\n    gru(2, stateful=true)\n}\n")
    lengths = [case.array.shape[1] for case in inputs.chunks(model, 6, 7, seed=0)]
    assert lengths == [7, 9, 1, 7, 9, 1]


def test_thorough_runs_more_seeds_rows_and_lengths():
    from rnnspec.equivalence.harness import plans

    model = load_model(SMALL)
    default = plans(model, VerifyOptions(), "")
    thorough = plans(model, VerifyOptions(seed=4294967295, thorough=True), "")
    assert [seed for seed, _ in default] == [0]
    assert [seed for seed, _ in thorough] == [4294967295, 0, 1]  # seeds wrap, stay in range
    (mixed,) = [case for label, case in thorough[2][1] if label == "seed 1, mixed padding"]
    assert mixed.array.shape == (13, 23)


def test_thorough_passes_on_a_generated_program(tmp_path, capsys):
    code, out, _ = run(capsys, "verify", spec_file(tmp_path, SMALL), "--thorough")
    assert code == 0
    assert out.rstrip().endswith("after .eval() and .train(), 45 runs")


# --- what is proved --------------------------------------------------------------------------


def test_report_names_the_modes_proved(tmp_path, capsys):
    code, out, _ = run(capsys, "verify", spec_file(tmp_path, SMALL))
    assert code == 0
    assert "after .eval() and .train(), " in out


def test_dropout_is_proved_in_eval_mode_only_and_says_so(tmp_path, capsys):
    spec = SMALL.replace("gru(3)\n", "gru(3)\n    dropout(0.5)\n")
    code, out, _ = run(capsys, "verify", spec_file(tmp_path, spec))
    assert code == 0
    assert "after .eval() (.train() not compared: dropout is random)" in out


def test_the_module_is_proved_as_build_model_returns_it(tmp_path, capsys):
    """build_model() returns the module in training mode (as a fresh torch module is); it is
    proved after `.eval()` and `.train()`, and the report says which mode it came in, also for an
    edited program that returns it in eval mode."""
    status, out, _ = run(capsys, "verify", spec_file(tmp_path, SMALL))
    assert status == 0
    assert "proved build_model() (returned in train mode) after .eval() and .train()" in out
    code = compile_source(SMALL, "pytorch", "spec.rnn")
    name = code.split("def build_model() -> ")[1].split(":")[0]
    edited, count = (
        code.replace(f"    return {name}()\n", f"    return {name}().eval()\n"),
        code.count(f"return {name}()\n"),
    )
    assert count == 1
    (tmp_path / "edited.py").write_text(edited, encoding="utf-8")
    status, out, _ = run(
        capsys, "verify", spec_file(tmp_path, SMALL), "--pytorch-code", str(tmp_path / "edited.py")
    )
    assert status == 0
    assert "proved build_model() (returned in eval mode) after .eval() and .train()" in out


def test_an_edited_program_with_a_syntax_error_is_told_at_its_line_on_stderr(tmp_path, capsys):
    code = compile_source(SMALL, "pytorch", "spec.rnn").replace("mask = tokens != 0", "mask = (tokens != 0")
    assert "mask = (tokens != 0" in code
    line = code.splitlines().index(next(li for li in code.splitlines() if "mask = (tokens != 0" in li)) + 1
    edited = tmp_path / "edited.py"
    edited.write_text(code, encoding="utf-8")
    status, out, err = run(capsys, "verify", spec_file(tmp_path, SMALL), "--pytorch-code", str(edited))
    assert (status, out) == (2, "")
    column = code.splitlines()[line - 1].index("(") + 1
    assert err == f"{edited}:{line}:{column}: error: the program is not valid Python: '(' was never closed\n"


# --- float32 round-off, judged in float64 ---------------------------------------------------


def test_float32_roundoff_that_float64_resolves_passes_with_a_warning(tmp_path, capsys):
    code, out, err = run(capsys, "verify", spec_file(tmp_path, GROWING))
    assert code == 0
    assert ": growing: ok (agree in float64)  max |diff| " in out
    assert ": growing: warning: agree in float64 (float32 round-off grows to " in err


def test_without_the_float64_judgement_the_growing_spec_fails():
    model = load_model(GROWING)
    programs = Programs(generate(model, "keras", "s.rnn"), generate(model, "pytorch", "s.rnn"))
    assert not verify(model, programs, float64_judgement=False).passed
    result = verify(model, programs)
    assert result.passed and result.roundoff and result.float64_diff < 1e-9


def test_a_real_mismatch_is_real_in_float64_too(tmp_path, capsys):
    code = compile_source(SMALL, "pytorch", "spec.rnn").replace("mask = tokens != 0", "mask = tokens >= 0")
    (tmp_path / "edited.py").write_text(code, encoding="utf-8")
    status, out, _ = run(
        capsys, "verify", spec_file(tmp_path, SMALL), "--pytorch-code", str(tmp_path / "edited.py")
    )
    assert status == 1
    assert ": small: MISMATCH  max |diff| " in out
    assert "\n  in float64 too: relative difference " in out and "so not float32 round-off" in out


def test_inf_against_nan_is_a_difference_and_equal_infinities_are_not():
    from rnnspec.equivalence.harness import differences

    keras = np.array([np.inf, np.inf, np.nan, -np.inf, 1.0], dtype=np.float32)
    torch = np.array([np.nan, np.inf, np.nan, -np.inf, 1.5], dtype=np.float32)
    assert differences(keras, torch).tolist() == [np.inf, 0.0, 0.0, 0.0, 0.5]


def refuse_constant(name: str):
    raise ValueError(f"not JSON: {name}")


def test_json_has_no_infinity_or_nan(tmp_path, capsys):
    """A program that outputs NaN: the differences are infinite, the values NaN; JSON has
    neither, so they are null with their text beside them."""
    code = compile_source(SMALL, "pytorch", "spec.rnn")
    runtime, forward, body = code.rpartition("    def forward(")  # the model's (not the runtime's)
    body, count = re.subn(r"\n        return (\w+)\n", r"\n        return \1 * torch.nan\n", body)
    assert count == 1
    edited = runtime + forward + body
    (tmp_path / "edited.py").write_text(edited, encoding="utf-8")
    argv = ["verify", spec_file(tmp_path, SMALL), "--pytorch-code", str(tmp_path / "edited.py"), "--json"]
    status, out, _ = run(capsys, *argv)
    assert status == 1
    (report,) = json.loads(out, parse_constant=refuse_constant)["models"]
    assert report["passed"] is False
    assert (report["max_abs_diff"], report["max_abs_diff_text"]) == (None, "inf")
    assert (report["float64_diff"], report["float64_diff_text"]) == (None, "inf")
    assert (report["worst"]["torch"], report["worst"]["torch_text"]) == (None, "nan")
    assert isinstance(report["worst"]["keras"], float)


def test_json_of_a_round_off_pass(tmp_path, capsys):
    code, out, _ = run(capsys, "verify", spec_file(tmp_path, GROWING), "--json")
    assert code == 0
    (report,) = json.loads(out, parse_constant=refuse_constant)["models"]
    assert report["passed"] is True and report["roundoff"] is True
    assert report["max_abs_diff"] > 1e-5
    assert report["modes"] == ["eval", "train"]


# --- input the checker refuses ---------------------------------------------------------------


def test_a_mask_value_beyond_float32_is_refused(tmp_path, capsys):
    spec = "model m {\n    input x: float32[*, 3]\n    masking(mask_value=1e39)\n    lstm(2)\n}\n"
    code, out, err = run(capsys, "verify", spec_file(tmp_path, spec))
    assert (code, out) == (2, "")
    assert err.startswith(
        f"{tmp_path / 'spec.rnn'}:3:24: error: `mask_value` of `masking` must be a number that float32 can "
        "hold (at most 3.4028235e+38 in magnitude), got `1e39`, which overflows float32 to infinity\n"
    )


def test_masking_before_a_dense_layer_zeroes_with_where(tmp_path, capsys):
    spec = "model m {\n    input x: float32[*, 3]\n    masking(mask_value=2.5)\n    dense(2)\n}\n"
    assert "y = torch.where(mask.unsqueeze(-1), x, 0.0)\n" in compile_source(spec, "pytorch", "m.rnn")
    assert run(capsys, "verify", spec_file(tmp_path, spec))[0] == 0


# --- nothing left behind ---------------------------------------------------------------------


@pytest.mark.slow  # the default tier's guard (tests/conftest.py) checks every verify run for this
def test_verify_leaves_nothing_in_the_temp_directory(tmp_path):
    """The compile caches (Lark's tables, Jinja's bytecode) are what `compile` leaves; verify
    adds nothing to them, where it used to leave one `rnnspec-*` directory per program."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    spec = spec_file(tmp_path, SMALL)
    env = {**os.environ, "TMPDIR": str(temp)}
    command = [sys.executable, "-m", "rnnspec"]
    subprocess.run(
        [*command, "compile", spec, "--target", "pytorch"], env=env, check=True, capture_output=True
    )
    cached = sorted(p.name for p in temp.iterdir())
    done = subprocess.run([*command, "verify", spec], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in temp.iterdir()) == cached
