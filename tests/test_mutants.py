"""`rnnspec verify --pytorch-code` must catch deliberately broken PyTorch programs.

Each mutant is the generated program with one precise textual edit, the kind of slip a person
porting a Keras RNN by hand makes: GRU gate blocks swapped, a bias left out, zeros at masked
timesteps where Keras carries the last output forward, state not carried between stateful
chunks, the backward half of a bidirectional layer not flipped back. Every mutant must make
verify exit 1; every unedited program must exit 0.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest

from rnnspec.cli import main
from rnnspec.compiler import compile_source


@dataclass(frozen=True)
class Mutant:
    spec: str
    old: str  # a regular expression matched against the generated PyTorch program
    new: str
    why: str
    batch: str | None = None  # the one batch that exercises the edit, where only one does


GRU_RELU = """
model gates {
    input tokens: int32[*]
    embedding(20, 4, mask_zero=true)
    gru(3, activation=relu, return_sequences=true)
}
"""

LSTM_DENSE = """
model tagger {
    input features: float32[*, 4]
    lstm(3, return_sequences=true)
    dense(2)
}
"""

MASKED_LSTM = """
model padded {
    input tokens: int32[*]
    embedding(20, 4, mask_zero=true)
    lstm(3, return_sequences=true)
}
"""

STATEFUL_GRU = """
model streaming(batch_size=2) {
    input x: float32[*, 3]
    gru(4, stateful=true)
}
"""

BIDIRECTIONAL_STEPPED = """
model both_ways {
    input x: float32[*, 3]
    bidirectional(simple_rnn(3, activation=softsign, return_sequences=true))
}
"""

CLASSIFIER = """
model classifier {
    input tokens: int32[*]
    embedding(20, 4, mask_zero=true)
    lstm(3)
    dense(2, activation=softmax)
}
"""

DROPPED = """
model dropped {
    input tokens: int32[*]
    embedding(20, 4, mask_zero=true)
    lstm(3)
    dropout(0.5)
    dense(2)
}
"""

POOLED = """
model pooled {
    input tokens: int32[*]
    embedding(20, 4, mask_zero=true)
    lstm(3, return_sequences=true)
    global_average_pooling()
    dense(2)
}
"""

ATTENDED = """
model attended {
    input tokens: int32[*]
    embedding(20, 4, mask_zero=true)
    gru(3, return_sequences=true)
    attention_pooling()
}
"""

BACKWARDS = """
model backwards {
    input x: float32[*, 3]
    masking(mask_value=0.5)
    lstm(3, go_backwards=true, return_sequences=true)
}
"""

STATEFUL_LSTM = """
model carried(batch_size=3) {
    input x: float32[*, 3]
    lstm(4, stateful=true)
}
"""

MASKED_BIDIRECTIONAL_STEPPED = """
model both_masked {
    input tokens: int32[*]
    embedding(20, 4, mask_zero=true)
    bidirectional(lstm(3, activation=relu, return_sequences=true))
}
"""

STEPPED_CLASSIFIER = """
model stepped_classifier {
    input tokens: int32[*]
    embedding(20, 4, mask_zero=true)
    lstm(3, activation=relu)
}
"""

FAST_PATH = r"elif eager and bool\(mask\.all\(\)\):"

MUTANTS = {
    "swapped_gru_gates": Mutant(
        GRU_RELU,
        r"x_r, x_z, x_n = projected\.chunk",
        "x_z, x_r, x_n = projected.chunk",
        "the update and reset gates read each other's input projection",
    ),
    "dense_without_bias": Mutant(
        LSTM_DENSE,
        r"= self\.dense_1\((\w+)\)",
        r"= torch.nn.functional.linear(\1, self.dense_1.weight)",
        "the dense bias is loaded but never added",
    ),
    "gru_without_recurrent_bias": Mutant(
        GRU_RELU,
        r"h_r, h_z, h_n = gate_linear\(h, w_hh, b_hh, masks\)",
        "h_r, h_z, h_n = gate_linear(h, w_hh, None, masks)",
        "reset_after=true GRU: Keras's recurrent bias (torch's bias_hh) is dropped",
    ),
    "zeros_at_masked_steps": Mutant(
        MASKED_LSTM,
        r"zero_steps\(shown, ~mask if zero_masked else index < 0\)",
        "zero_steps(shown, ~mask)",
        "masked timesteps output zeros instead of repeating the last unmasked output",
    ),
    "state_not_carried": Mutant(
        STATEFUL_GRU,
        r"\n[ \t]+self\.\w+ = \w+\.detach\(\)(?=\n)",
        "",
        "a stateful layer starts every chunk from zeros",
    ),
    "backward_half_not_flipped": Mutant(
        BIDIRECTIONAL_STEPPED,
        r"outputs\.append\(y if direction == 0 else reverse_valid\(y, lengths\)\)",
        "outputs.append(y)",
        "the backward outputs stay in reversed time order",
    ),
    # The hand edits of issue 16 that the earlier batches let through, each with the batch
    # that now catches it.
    "fast_path_when_ends_valid": Mutant(
        MASKED_LSTM,
        FAST_PATH,
        "elif bool(mask[:, 0].all()) and bool(mask[:, -1].all()):",
        "the unmasked kernel whenever every row's first and last steps are valid "
        "(caught by 'interior holes')",
        batch="interior holes",
    ),
    "fast_path_for_one_timestep": Mutant(
        MASKED_LSTM,
        FAST_PATH,
        "elif bool(mask.all()) or mask.shape[1] == 1:",
        "a one-timestep batch runs unmasked (caught by 'one timestep', which has a padded row)",
        batch="one timestep",
    ),
    "lengths_in_uint8": Mutant(
        MASKED_LSTM,
        r"lengths = mask\.sum\(dim=1\)",
        "lengths = mask.sum(dim=1, dtype=torch.uint8).long()",
        "a row's length wraps around past 255 steps (caught by '260 timesteps')",
        batch="260 timesteps",
    ),
    "squeeze_instead_of_index": Mutant(
        CLASSIFIER,
        r"= last\[0\]",
        "= last.squeeze()",
        "`last.squeeze()` also drops the batch axis of a batch of one (caught by 'one row')",
        batch="one row",
    ),
    # Issue 16's "build_model() left in training mode" is the design now: build_model() returns
    # the module in training mode and users call .eval(). These two edits defeat that instead.
    "eval_overridden": Mutant(
        DROPPED,
        r"\n(?=    def forward\()",
        "\n    def train(self, mode=True):\n        return super().train(True)\n\n",
        "`.eval()` leaves dropout on: verify proves the module after the `.eval()` users call",
    ),
    "fast_path_in_training_mode": Mutant(
        MASKED_LSTM,
        FAST_PATH,
        "if bool(mask.all()) or rnn.training:",
        "the mask is ignored in training mode only (caught by comparing `.train()` with training=True)",
        batch="training: [a-z ]+",
    ),
    "dropout_hard_coded": Mutant(
        DROPPED,
        r"= self\.dropout_1\((\w+)\)",
        r"= torch.nn.functional.dropout(\1, 0.5, training=True)",
        "dropout applied whatever the module's mode",
    ),
    "sixteen_bit_lengths": Mutant(
        MASKED_LSTM,
        r"lengths = mask\.sum\(dim=1\)",
        "lengths = mask.sum(dim=1, dtype=torch.int16).long()",
        "lengths held in 16 bits wrap past 32,767 steps (the program's int16 adds a 65,600-step batch)",
        batch="65600 timesteps",
    ),
    # More slips of a hand port.
    "pooling_over_padding": Mutant(
        POOLED,
        r"\((\w+) \* mask\.unsqueeze\(-1\)\)\.sum\(dim=1\) / mask\.sum\(dim=1, keepdim=True\)",
        r"\1.mean(dim=1)",
        "global average pooling counts the padded steps",
    ),
    "attention_over_padding": Mutant(
        ATTENDED,
        r"scores = scores\.masked_fill\(~mask, -1e9\)",
        "scores = scores",
        "attention weights padded steps",
    ),
    "mask_needs_every_feature": Mutant(
        BACKWARDS,
        r"\.any\(dim=-1\)",
        ".all(dim=-1)",
        "a step is masked when any feature equals the mask value (caught by the near-miss row)",
    ),
    "backwards_mask_not_flipped": Mutant(
        BACKWARDS,
        r"mask\.flip\(1\)\)",
        "mask)",
        "go_backwards reverses the inputs but not the mask",
    ),
    "padded_row_not_zeroed": Mutant(
        CLASSIFIER,
        r"end = lengths - 1\n",
        "end = (lengths - 1).clamp(min=0)\n",
        "a fully padded row outputs one step of its padding instead of zeros",
    ),
    "reset_keeps_cell_state": Mutant(
        STATEFUL_LSTM,
        r"\n +self\._lstm_1_c = torch\.zeros_like\(self\._lstm_1_c\)",
        "",
        "reset_states() zeroes h but not c",
    ),
    "backward_half_reads_padding": Mutant(
        MASKED_BIDIRECTIONAL_STEPPED,
        r"steps = x if direction == 0 else reverse_valid\(x, lengths\)",
        "steps = x if direction == 0 else x.flip(1)",
        "the backward direction starts at the padding instead of each row's last valid step",
    ),
    "one_step_too_many": Mutant(
        STEPPED_CLASSIFIER,
        r"valid = steps < lengths\.unsqueeze\(-1\)",
        "valid = steps <= lengths.unsqueeze(-1)",
        "a stepped layer updates its state one step past each row's length",
    ),
}
SPECS = {
    "gru_relu": GRU_RELU,
    "lstm_dense": LSTM_DENSE,
    "masked_lstm": MASKED_LSTM,
    "stateful_gru": STATEFUL_GRU,
    "bidirectional_stepped": BIDIRECTIONAL_STEPPED,
    "classifier": CLASSIFIER,
    "dropped": DROPPED,
    "pooled": POOLED,
    "attended": ATTENDED,
    "backwards": BACKWARDS,
    "stateful_lstm": STATEFUL_LSTM,
    "masked_bidirectional_stepped": MASKED_BIDIRECTIONAL_STEPPED,
    "stepped_classifier": STEPPED_CLASSIFIER,
}


def mutate(mutant: Mutant) -> str:
    original = compile_source(mutant.spec, "pytorch", "spec.rnn")
    edited, count = re.subn(mutant.old, mutant.new, original)
    assert count >= 1 and edited != original, f"the edit `{mutant.old}` did not apply:\n{original}"
    return edited


def write(tmp_path, spec: str, code: str | None = None) -> list[str]:
    spec_path = tmp_path / "spec.rnn"
    spec_path.write_text(spec, encoding="utf-8")
    args = ["verify", str(spec_path)]
    if code is not None:
        code_path = tmp_path / "edited_torch.py"
        code_path.write_text(code, encoding="utf-8")
        args += ["--pytorch-code", str(code_path)]
    return args


# The default tier runs a masked, a stateful and a stepped program, and one mutant of each family
# (gates, masks, carried state, direction, lengths); `slow` runs every spec and every mutant.
DEFAULT_TIER_SPECS = {"masked_lstm", "stateful_gru", "stepped_classifier"}
DEFAULT_TIER_MUTANTS = {
    "swapped_gru_gates",
    "zeros_at_masked_steps",
    "state_not_carried",
    "backward_half_not_flipped",
    "one_step_too_many",
}


def tiered(names, fast: set[str]) -> list:
    return [name if name in fast else pytest.param(name, marks=pytest.mark.slow) for name in names]


@pytest.mark.parametrize("name", tiered(SPECS, DEFAULT_TIER_SPECS))
def test_generated_program_passes(name, tmp_path, capsys):
    code = compile_source(SPECS[name], "pytorch", "spec.rnn")
    assert main(write(tmp_path, SPECS[name], code)) == 0, capsys.readouterr()
    assert ": ok " in capsys.readouterr().out


@pytest.mark.parametrize("name", tiered(MUTANTS, DEFAULT_TIER_MUTANTS))
def test_mutant_is_caught(name, tmp_path, capsys):
    mutant = MUTANTS[name]
    status = main(write(tmp_path, mutant.spec, mutate(mutant)))
    out, err = capsys.readouterr()
    assert status == 1, f"{mutant.why}: verify did not notice\n{out}{err}"
    assert "MISMATCH" in out
    assert "Traceback" not in out + err
    if mutant.batch is not None:  # without that batch in verify's defaults, the edit goes unseen
        assert re.search(f"batch '(training: )?{mutant.batch}'", out), out


def test_state_mutant_differs_only_after_the_first_chunk(tmp_path, capsys):
    """Chunk 1 starts from zeros either way; the lost state shows from chunk 2 on."""
    main([*write(tmp_path, STATEFUL_GRU, mutate(MUTANTS["state_not_carried"])), "--json"])
    report = json.loads(capsys.readouterr().out)["models"][0]
    assert report["passed"] is False
    assert report["worst"]["case"] != "chunk 1"


def test_json_report_of_a_mutant(tmp_path, capsys):
    status = main([*write(tmp_path, GRU_RELU, mutate(MUTANTS["swapped_gru_gates"])), "--json"])
    out = capsys.readouterr().out
    assert status == 1
    (model,) = json.loads(out)["models"]
    assert {"name", "passed", "max_abs_diff", "max_rel_diff"} <= model.keys()
    assert model["name"] == "gates"
    assert model["passed"] is False
    assert model["max_abs_diff"] > 1e-5
    assert model["max_rel_diff"] > 0


def test_json_report_of_the_generated_program(tmp_path, capsys):
    assert main([*write(tmp_path, GRU_RELU), "--json"]) == 0
    (model,) = json.loads(capsys.readouterr().out)["models"]
    assert model["name"] == "gates"
    assert model["passed"] is True
    assert model["max_abs_diff"] <= 1e-5


def test_program_that_does_not_load_exits_2(tmp_path, capsys):
    broken = compile_source(LSTM_DENSE, "pytorch", "spec.rnn").replace(
        "def build_model()", "def build_model(:", 1
    )
    status = main(write(tmp_path, LSTM_DENSE, broken))
    out, err = capsys.readouterr()
    line = next(n for n, text in enumerate(broken.splitlines(), 1) if text.startswith("def build_model(:"))
    assert (status, out) == (2, "")
    assert (
        err
        == f"{tmp_path / 'edited_torch.py'}:{line}:17: error: the program is not valid Python: invalid syntax\n"
    )
