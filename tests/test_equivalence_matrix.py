"""Every layer kind and option: the Keras and PyTorch programs agree within 1e-5 at every position.

Specs end at the layer under test so that its full output sequence and states are compared, on
batches with right padding, left padding, holes and a fully padded row (and over stateful chunks,
a reset, and more chunks). Weights, biases included, are random.
"""

import pytest

from tests.helpers import verify_spec

MASKED_IDS = "input tokens: int32[*]\n    embedding(20, 5, mask_zero=true)"
PLAIN_FEATURES = "input x: float32[*, 4]"
MASKED_FEATURES = "input x: float32[*, 4]\n    masking(mask_value=0.5)"
FIXED_FEATURES = "input x: float32[6, 4]"

ACTIVATIONS = [
    "linear", "tanh", "sigmoid", "hard_sigmoid", "relu", "elu", "selu", "gelu",
    "softplus", "softsign", "swish", "softmax", "exponential",
]  # fmt: skip

RECURRENT_OPTIONS = [
    "",
    "return_sequences=true",
    "return_sequences=true, return_state=true",
    "return_state=true",
    "go_backwards=true, return_sequences=true",
    "go_backwards=true, return_state=true",
    "use_bias=false, return_sequences=true",
    "dropout=0.3, recurrent_dropout=0.2, return_sequences=true",
    *[f"activation={a}, return_sequences=true" for a in ACTIVATIONS],
]
GATED_OPTIONS = [
    *[f"recurrent_activation={a}, return_sequences=true" for a in ("hard_sigmoid", "tanh", "relu")],
    "unit_forget_bias=false, return_sequences=true",
]


def spec(head: str, body: str, options: str = "") -> str:
    opts = f"({options})" if options else ""
    return f"model m{opts} {{\n    {head}\n    {body}\n}}\n"


def recurrent_cases():
    for kind in ("simple_rnn", "lstm", "gru"):
        extra = GATED_OPTIONS if kind != "simple_rnn" else []
        if kind == "gru":
            extra = [
                *extra,
                "reset_after=false, return_sequences=true",
                "reset_after=false, return_state=true",
            ]
        for options in RECURRENT_OPTIONS + extra:
            args = f"3, {options}" if options else "3"
            if kind != "lstm" and "unit_forget" in options:
                continue
            for head in (MASKED_IDS, PLAIN_FEATURES):
                yield pytest.param(spec(head, f"{kind}({args})"), id=f"{kind}({args})|{head.split()[2]}")


@pytest.mark.parametrize("source", list(recurrent_cases()))
def test_recurrent_layer(source):
    # `exponential` grows without bound through the recurrence, and exp(c) turns a one-ulp
    # difference in c into a relative difference of c * 2**-23 (c ~ 20 here): compare it relatively.
    verify_spec(source, rtol=1e-3 if "exponential" in source else 0.0)


def bidirectional_cases():
    for kind, extra in (("lstm", ""), ("gru", ""), ("simple_rnn", ""), ("gru", ", reset_after=false"),
                        ("lstm", ", activation=relu"), ("simple_rnn", ", activation=relu")):  # fmt: skip
        for mode in ("concat", "sum", "mul", "ave", "none"):
            for seq in ("true", "false"):
                for state in ("false", "true"):
                    inner = f"{kind}(3, return_sequences={seq}, return_state={state}{extra})"
                    body = f"bidirectional({inner}, merge_mode={mode})"
                    for head in (MASKED_IDS, PLAIN_FEATURES):
                        yield pytest.param(spec(head, body), id=f"{body}|{head.split()[2]}")


@pytest.mark.parametrize("source", list(bidirectional_cases()))
def test_bidirectional(source):
    verify_spec(source)


STATEFUL = [
    spec(MASKED_IDS, "lstm(3, stateful=true, return_sequences=true, return_state=true)", "batch_size=6"),
    spec(MASKED_IDS, "gru(3, stateful=true, return_state=true)", "batch_size=6"),
    spec(MASKED_IDS, "gru(3, stateful=true, reset_after=false, return_sequences=true)", "batch_size=6"),
    spec(
        MASKED_IDS, "simple_rnn(3, stateful=true, go_backwards=true, return_sequences=true)", "batch_size=6"
    ),
    spec(MASKED_IDS, "lstm(3, stateful=true, activation=relu, return_state=true)", "batch_size=6"),
    spec(MASKED_IDS, "bidirectional(lstm(3, stateful=true, return_sequences=true))", "batch_size=6"),
    spec(MASKED_IDS, "bidirectional(gru(3, stateful=true), merge_mode=none)", "batch_size=6"),
    spec(
        MASKED_IDS, "bidirectional(gru(3, stateful=true, reset_after=false), merge_mode=ave)", "batch_size=6"
    ),
    spec(PLAIN_FEATURES, "lstm(3, stateful=true, return_sequences=true, return_state=true)", "batch_size=4"),
    spec(
        PLAIN_FEATURES, "bidirectional(simple_rnn(3, stateful=true, return_sequences=true))", "batch_size=4"
    ),
    spec(MASKED_FEATURES, "gru(3, stateful=true, return_sequences=true, return_state=true)", "batch_size=6"),
]


# Stacked stateful layers, the packed outputs passed between them.
STACKED_STATEFUL = [
    spec(
        MASKED_IDS,
        "lstm(3, stateful=true, return_sequences=true)\n    gru(2, stateful=true, return_sequences=true)",
        "batch_size=6",
    ),
]


@pytest.mark.parametrize("source", STATEFUL + STACKED_STATEFUL)
def test_stateful_chunks_reset_and_more_chunks(source):
    result = verify_spec(source, chunks=3)
    assert result.cases == [
        "chunk 1", "chunk 2", "chunk 3", "reset",
        "after reset, chunk 1", "after reset, chunk 2", "after reset, chunk 3",
    ]  # fmt: skip


STACKS = [
    spec(MASKED_FEATURES, "lstm(3, return_sequences=true)\n    gru(4, return_sequences=true)"),
    spec(MASKED_FEATURES, "dense(5, activation=tanh)\n    dropout(0.5)\n    lstm(3, return_sequences=true)"),
    spec(MASKED_IDS, "dense(4, activation=relu, use_bias=false)\n    global_average_pooling()"),
    spec(MASKED_IDS, "lstm(3, return_sequences=true)\n    global_average_pooling()"),
    spec(PLAIN_FEATURES, "global_average_pooling()\n    dense(2)"),
    spec(MASKED_IDS, "attention_pooling()"),
    spec(PLAIN_FEATURES, "attention_pooling()"),
    spec(
        MASKED_IDS,
        "bidirectional(gru(3, return_sequences=true))\n    attention_pooling()\n    dense(2, activation=softmax)",
    ),
    spec(MASKED_IDS, "lstm(3, return_sequences=true, go_backwards=true)\n    lstm(2, return_sequences=true)"),
    spec(FIXED_FEATURES, "lstm(3, unroll=true, return_sequences=true)\n    gru(3, unroll=true)"),
    spec(FIXED_FEATURES, "masking(mask_value=0.5)\n    simple_rnn(3, unroll=true, return_sequences=true)"),
    spec(FIXED_FEATURES, "bidirectional(lstm(3, unroll=true, return_sequences=true))"),
    spec("input x: float32[7]", "dense(3, activation=selu)\n    dropout(0.1)\n    dense(2)"),
    spec("input tokens: int64[5]", "embedding(9, 4)\n    gru(3)"),
    spec(MASKED_IDS, "masking(mask_value=0.0)\n    lstm(3, return_sequences=true)"),
    # Stacked masked layers: the packed outputs go straight to the next fused layer, or not.
    spec(
        MASKED_IDS,
        "bidirectional(lstm(3, return_sequences=true))\n    gru(3, return_sequences=true)\n    lstm(2)",
    ),
    spec(
        MASKED_IDS,
        "bidirectional(gru(3, return_sequences=true), merge_mode=sum)\n    lstm(2, return_sequences=true)",
    ),
    spec(
        MASKED_IDS,
        "gru(3, return_sequences=true)\n    bidirectional(lstm(2, return_sequences=true), merge_mode=mul)",
    ),
    spec(
        MASKED_IDS,
        "lstm(3, return_sequences=true)\n    lstm(3, activation=relu, return_sequences=true)\n    gru(2)",
    ),
    spec(
        MASKED_IDS,
        "simple_rnn(3, return_sequences=true)\n    gru(2, go_backwards=true, return_sequences=true)",
    ),
    spec(MASKED_FEATURES, "gru(3, return_sequences=true)\n    simple_rnn(2, return_state=true)"),
]


@pytest.mark.parametrize("source", STACKS)
def test_stacks_and_other_layers(source):
    verify_spec(source)
