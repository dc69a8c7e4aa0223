"""v1's one-input layers: the checker's rules (exact messages at FILE:LINE:COL), `check`'s warning
where Keras drops a mask, and the shortest sequences `verify` feeds."""

import pytest

from rnnspec.check import load_model, load_models
from rnnspec.cli import main
from rnnspec.equivalence.inputs import cases, min_steps
from rnnspec.errors import SpecError


def errors(source: str) -> str:
    with pytest.raises(SpecError) as info:
        load_models(source)
    return info.value.render("m.rnn", source)


def model(*lines: str) -> str:
    body = "\n".join(f"    {line}" for line in lines)
    return f"model m {{\n{body}\n}}\n"


SEQ = "input x: float32[*, 4]"
FIXED = "input x: float32[6, 4]"
VECTOR = "input x: float32[4]"


@pytest.mark.parametrize(
    "source, message",
    [
        (
            model(FIXED, "reshape(5, -1)"),
            "m.rnn:3:13: error: `reshape(5, -1)` cannot hold the 24 values per sample of float32[6, 4]",
        ),
        (
            model(FIXED, "reshape(3, 9)"),
            "m.rnn:3:13: error: `reshape(3, 9)` cannot hold the 24 values per sample of float32[6, 4]",
        ),
        (
            model(FIXED, "reshape(-1, -1)"),
            "m.rnn:3:13: error: `reshape` takes at most one -1 among its sizes, got 2",
        ),
        (
            model(FIXED, "reshape(0, 24)"),
            "m.rnn:3:13: error: the sizes of `reshape` are positive integers (one may be -1), got `0`",
        ),
        (
            model(SEQ, "reshape(-1, 2)"),
            "m.rnn:3:13: error: `reshape(-1, 2)` of float32[*, 4], whose length varies: keep the length first, "
            "as `reshape(-1, ...)` with sizes holding the 4 values of each timestep",
        ),
        (
            model(SEQ, "reshape(2, -1)"),
            "m.rnn:3:13: error: `reshape(2, -1)` of float32[*, 4], whose length varies: keep the length first, "
            "as `reshape(-1, ...)` with sizes holding the 4 values of each timestep",
        ),
        (
            model(SEQ, "flatten()"),
            "m.rnn:3:5: error: `flatten` needs fixed sizes; `flatten_1` receives float32[*, 4], whose length varies",
        ),
        (
            model(SEQ, "repeat_vector(3)"),
            "m.rnn:3:5: error: `repeat_vector` repeats a vector [features]; `repeat_vector_1` receives float32[*, 4]",
        ),
        (
            model(SEQ, "conv1d(2, 3, strides=2, dilation_rate=2)"),
            "m.rnn:3:29: error: `conv1d` cannot take strides > 1 with dilation_rate > 1 (Keras refuses it)",
        ),
        (
            model(FIXED, "conv1d(2, 7)"),
            "m.rnn:3:5: error: `conv1d_1` needs at least 7 timesteps with padding=valid; it receives float32[6, 4]",
        ),
        (
            model(FIXED, "conv1d(2, 3, padding=full)"),
            "m.rnn:3:26: error: `padding` of `conv1d` must be one of valid, same, causal; got `full`",
        ),
        (
            model(SEQ, "max_pooling1d(2, padding=causal)"),
            "m.rnn:3:30: error: `padding` of `max_pooling1d` must be one of valid, same; got `causal`",
        ),
        (
            model(SEQ, "average_pooling1d()"),
            "m.rnn:3:5: error: `average_pooling1d` needs the argument `pool_size`",
        ),
        (
            model(VECTOR, "conv1d(2, 1)"),
            "m.rnn:3:5: error: `conv1d` needs a sequence [timesteps, features]; `conv1d_1` receives float32[4] from input `x`",
        ),
        (
            model(SEQ, "gaussian_noise(1.5)"),
            "m.rnn:3:20: error: `stddev` of `gaussian_noise` must be in [0, 1] (Keras), got `1.5`",
        ),
        (
            model(SEQ, "relu(threshold=-1.0)"),
            "m.rnn:3:10: error: `threshold` of `relu` cannot be negative (Keras), got `-1.0`",
        ),
        (
            model(SEQ, "leaky_relu(-0.1)"),
            "m.rnn:3:16: error: `negative_slope` of `leaky_relu` cannot be negative (Keras), got `-0.1`",
        ),
        (
            model(SEQ, "time_distributed(lstm(3))"),
            "m.rnn:3:22: error: `time_distributed` wraps one `dense(...)` layer, got `lstm`",
        ),
        (
            model(SEQ, "time_distributed(dense(0))"),
            "m.rnn:3:28: error: `units` of `dense` must be a positive integer, got `0`",
        ),
        (
            model(SEQ, "activation(swishy)"),
            "m.rnn:3:16: error: unknown activation `swishy` for `activation` of `activation` (did you mean `swish`?)",
        ),
        (
            model(SEQ, "conv2d(2, 3)"),
            "m.rnn:3:5: error: `conv2d` takes [height, width, channels] (channels last, as Keras; the height may "
            "vary); `conv2d_1` receives float32[*, 4]: reshape to it first, e.g. `reshape(-1, F, 1)`",
        ),
        (
            model(FIXED, "reshape(6, 4, 1)", "max_pooling2d(5)"),
            "m.rnn:4:5: error: `max_pooling2d_1` needs at least 5 cells per axis with padding=valid; it receives float32[6, 4, 1]",
        ),
    ],
)
def test_rules_of_the_one_input_layers(source, message):
    assert errors(source).splitlines()[0] == message


def test_check_warns_where_keras_drops_the_mask(tmp_path, capsys):
    spec = tmp_path / "m.rnn"
    spec.write_text(
        model(
            "input tokens: int32[*]",
            "embedding(20, 4, mask_zero=true)",
            "batch_normalization()",
            "conv1d(4, 2, padding=causal)",
            "max_pooling1d()",
            "lstm(3)",
        )
    )
    assert main(["check", str(spec)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:5] == [
        f"{spec}: model `m`: ok",
        "  conv1d_1 (conv1d)",
        "    Keras: Conv1D does not support masking: the mask ends here",
        "    PyTorch: the same; later layers see no mask",
        f'{spec}:5:5: warning: `conv1d_1` drops the mask it receives (Keras warns that Conv1D "will therefore '
        'destroy the mask information"): the layers after it see every timestep, padding included',
    ]
    assert not any("max_pooling1d_1" in line for line in out)  # no mask reaches it
    assert main(["check", str(spec), "--strict"]) == 1


@pytest.mark.parametrize(
    "layers, shortest",
    [
        (["conv1d(2, 3)"], 3),
        (["conv1d(2, 3, padding=same)"], 1),
        (["conv1d(2, 2, padding=causal, dilation_rate=4)"], 1),
        (["conv1d(2, 3, dilation_rate=2)"], 5),
        (["conv1d(2, 3, strides=2)", "max_pooling1d(2)"], 5),
        (["average_pooling1d(3, strides=2, padding=same)", "max_pooling1d(3)"], 5),
        (["lstm(2, return_sequences=true)", "max_pooling1d(4, strides=1)"], 4),
        (["reshape(-1, 2, 2)", "conv2d(2, 2)", "reshape(-1, 2)"], 2),
        (
            [
                "reshape(-1, 4, 1)",
                "conv2d(2, 2, strides=2, padding=same)",
                "max_pooling2d(2)",
                "reshape(-1, 2)",
            ],
            3,
        ),
    ],
)
def test_verify_feeds_no_sequence_shorter_than_every_layer_takes(layers, shortest):
    spec = load_model(model(SEQ, *layers, "gru(2)"))
    assert min_steps(spec) == shortest
    lengths = {case.array.shape[1] for case in cases(spec, batch=4, steps=2, seed=0)}
    assert min(lengths) == shortest


def test_gradients_agree_through_the_new_layers(tmp_path, capsys):
    """verify --gradients: every torch parameter's gradient against Keras's (the moving statistics
    are buffers in torch, non-trainable in Keras: neither has a gradient)."""
    spec = tmp_path / "m.rnn"
    spec.write_text(
        model(
            "input tokens: int32[*]",
            "embedding(20, 4, mask_zero=true)",
            "batch_normalization()",
            "time_distributed(dense(5, activation=mish))",
            "conv1d(4, 3, padding=same)",
            "average_pooling1d(2, padding=same)",
            "lstm(3)",
            "relu(negative_slope=0.2, max_value=2.0)",
        )
    )
    assert main(["verify", str(spec), "--gradients"]) == 0
    out = capsys.readouterr().out
    assert "\n  gradients: ok  max |diff| " in out
    assert "11 weights, " in out  # embedding 1, normalisation 2, dense 2, convolution 2, LSTM 4
