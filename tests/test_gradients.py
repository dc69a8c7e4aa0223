"""`rnnspec verify --gradients`: every input's and weight's gradient, mapped as the weights map."""

import json

from rnnspec.cli import main
from rnnspec.compiler import compile_source
from tests.golden import EXAMPLES


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_gradients_of_a_stateful_model_with_its_input(capsys):
    code, out, err = run(capsys, "verify", "--gradients", str(EXAMPLES / "paragraphs.rnn"))
    assert (code, err) == (0, "")
    forward, gradients = out.splitlines()
    assert forward.startswith(f"{EXAMPLES / 'paragraphs.rnn'}: paragraphs: ok  max |diff| ")
    assert gradients.startswith("  gradients: ok  max |diff| ")
    assert gradients.endswith("6 weights and the input, 6 batches")  # 3 chunks, a reset, 3 more


def test_gradients_in_json(capsys):
    code, out, err = run(capsys, "verify", "--gradients", "--json", str(EXAMPLES / "masking.rnn"))
    assert (code, err) == (0, "")
    (report,) = json.loads(out)["models"]
    gradients = report["gradients"]
    assert gradients["passed"] and gradients["max_abs_diff"] < 1e-5
    assert gradients["compared"] == [
        "dense_1.bias",
        "dense_1.weight",
        "gru_1.bias_hh_l0",
        "gru_1.bias_ih_l0",
        "gru_1.weight_hh_l0",
        "gru_1.weight_ih_l0",
        "lstm_1.bias_hh_l0",
        "lstm_1.bias_ih_l0",
        "lstm_1.weight_hh_l0",
        "lstm_1.weight_ih_l0",
        "input x",
    ]
    assert gradients["cases"] == report["cases"]  # the forward proof's batches, every one


def test_without_gradients_no_gradient_report(capsys):
    code, out, _ = run(capsys, "verify", "--json", str(EXAMPLES / "sentiment.rnn"))
    assert code == 0 and "gradients" not in json.loads(out)["models"][0]


def test_a_second_trainable_bias_is_a_mismatch_named_by_weight(tmp_path, capsys):
    """The bug this proof exists for: torch's bias_hh training beside bias_ih moves the LSTM's
    one Keras bias twice per step. Outputs agree; gradients do not."""
    spec = EXAMPLES / "sentiment.rnn"
    code = compile_source(spec.read_text(), "pytorch", "sentiment.rnn")
    assert "param.requires_grad_(False)" in code
    edited = tmp_path / "edited.py"
    edited.write_text(code.replace("param.requires_grad_(False)", "pass"))
    status, out, err = run(capsys, "verify", "--gradients", str(spec), "--pytorch-code", str(edited))
    assert (status, err) == (1, "")
    forward, gradients = out.splitlines()
    assert ": sentiment: ok  " in forward
    assert gradients.startswith("  gradients: MISMATCH  max |diff| ")
    assert "(weight `lstm_1.bias_hh_l0` [" in gradients and "keras 0, pytorch " in gradients


def test_a_program_that_cannot_be_differentiated_is_an_error(tmp_path, capsys):
    spec = EXAMPLES / "gru_simple_rnn.rnn"
    code = compile_source(spec.read_text(), "pytorch", "gru_simple_rnn.rnn")
    edited = tmp_path / "edited.py"
    edited.write_text(code.replace("        return x\n", "        return x.detach()\n"))
    status, out, err = run(capsys, "verify", "--gradients", str(spec), "--pytorch-code", str(edited))
    assert (status, err) == (2, "")
    assert out.splitlines()[1] == (
        "  gradients: ERROR the gradients did not run: RuntimeError: element 0 of tensors does not "
        "require grad and does not have a grad_fn"
    )
