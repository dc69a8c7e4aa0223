"""Per kind: the lines each target writes for it (the equivalence tests prove what they compute)."""

import pytest

from tests.helpers import assert_generates

IDS = "input tokens: int32[*]\nembedding(20, 5, mask_zero=true)"


def test_masked_lstm_runs_over_each_rows_unmasked_steps():
    assert_generates(
        f"{IDS}\nlstm(3, return_sequences=true)",
        keras='    x = keras.layers.LSTM(3, return_sequences=True, name="lstm_1")(x)\n',
        pytorch=[
            "        self.lstm_1 = MaskedLSTM(5, 3, batch_first=True)\n",
            "        mask = tokens != 0\n",
            "        x, _, _ = self.lstm_1.masked(self.embedding_1(tokens), mask)\n",
        ],
    )


def test_unmasked_lstm_calls_the_fused_module_directly():
    programs = assert_generates(
        "input x: float32[*, 4]\nlstm(3)",
        keras='    h = keras.layers.LSTM(3, name="lstm_1")(x)\n',
        pytorch="        self.lstm_1 = FusedLSTM(4, 3, batch_first=True)\n",
    )
    assert "keras_rnn" not in programs["pytorch"]


@pytest.mark.parametrize(
    ("mode", "keras_layer", "merge"),
    [
        # concat is Keras's default, left unsaid
        (
            "concat",
            '        keras.layers.GRU(3, return_sequences=True, name="gru"), name="bidirectional_1"\n',
            "",
        ),
        *[
            (
                mode,
                f'        keras.layers.GRU(3, return_sequences=True, name="gru"),\n        merge_mode="{mode}",\n',
                merge,
            )
            for mode, merge in (
                ("sum", "        y = y[..., :3] + y[..., 3:]\n"),
                ("mul", "        y = y[..., :3] * y[..., 3:]\n"),
                ("ave", "        y = (y[..., :3] + y[..., 3:]) / 2\n"),
            )
        ],
    ],
    ids=["concat", "sum", "mul", "ave"],
)
def test_bidirectional_merge_modes(mode, keras_layer, merge):
    programs = assert_generates(
        f"input x: float32[*, 4]\nbidirectional(gru(3, return_sequences=true), merge_mode={mode})",
        keras="    h = keras.layers.Bidirectional(\n" + keras_layer,
        pytorch=[
            "        self.bidirectional_1 = FusedGRU(4, 3, batch_first=True, bidirectional=True)\n",
            "        y, _ = self.bidirectional_1(x)\n" + merge + "        return y\n",
        ],
    )
    if mode == "concat":
        assert "y[..., :3]" not in programs["pytorch"]


def test_bidirectional_without_merging_returns_each_direction_and_its_states():
    assert_generates(
        "input x: float32[*, 4]\nbidirectional(lstm(3, return_state=true), merge_mode=none)",
        keras=["        merge_mode=None,\n", '    return keras.Model(inputs=x, outputs=outputs, name="m")\n'],
        pytorch=[
            "        _, (h_n, c_n) = self.bidirectional_1(x)\n",
            "        return h_n[0], h_n[1], h_n[0], c_n[0], h_n[1], c_n[1]\n",
        ],
    )


def test_stateful_lstm_carries_its_state_in_buffers():
    assert_generates(
        "model m(batch_size=6) {\n    input tokens: int32[*]\n    embedding(20, 5, mask_zero=true)\n"
        "    lstm(3, stateful=true, return_sequences=true, return_state=true)\n}\n",
        keras=[
            '    tokens = keras.Input(shape=(None,), dtype="int32", batch_size=6, name="tokens")\n',
            '        3, return_sequences=True, return_state=True, stateful=True, name="lstm_1"\n',
            "def reset_states(model: keras.Model) -> None:\n",
        ],
        pytorch=[
            '        self.register_buffer("_lstm_1_h", torch.zeros(1, 6, 3), persistent=False)\n',
            '        self.register_buffer("_lstm_1_c", torch.zeros(1, 6, 3), persistent=False)\n',
            "            (self._lstm_1_h, self._lstm_1_c),\n",
            "        self._lstm_1_h = h_n.detach()\n        self._lstm_1_c = c_n.detach()\n",
            "        self._lstm_1_h = torch.zeros_like(self._lstm_1_h)\n",
        ],
    )


def test_a_missing_snippet_fails_showing_the_program():
    with pytest.raises(AssertionError) as failure:
        assert_generates("input x: float32[*, 4]\nlstm(3)", pytorch="nn.GRU(")
    message = str(failure.value)
    assert (
        "the pytorch program lacks:\nnn.GRU(\n--- spec ---\nmodel m {\n    input x: float32[*, 4]\n"
        in message
    )
    assert (
        "--- pytorch program ---\n" in message
        and "self.lstm_1 = FusedLSTM(4, 3, batch_first=True)" in message
    )
