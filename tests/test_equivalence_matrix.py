"""Every layer kind and option: the Keras and PyTorch programs agree within 1e-5 at every position.

Specs end at the layer under test so that its full output sequence and states are compared, on
batches with right padding, left padding, holes and a fully padded row (and over stateful chunks,
a reset, and more chunks). Weights, biases included, are random.

The matrices are products of independent choices. The default tier runs an all-pairs covering set
of each (every two values of any two dimensions meet in some case, tests/pairwise.py); the `slow`
tier runs the rest of the product (`python -m pytest -m slow`).
"""

import itertools

import pytest

from tests.helpers import split_long, verify_spec
from tests.pairwise import all_pairs

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


def tiered(dimensions, valid, case, strength=2):
    """Every valid row of the product as a param, those outside an all-pairs covering set `slow`
    (with `strength=1`, outside a set showing every value once)."""
    covering = set(all_pairs(dimensions, valid, strength))
    for row in itertools.product(*dimensions):
        if valid(row):
            source, case_id = case(*row)
            marks = () if row in covering else (pytest.mark.slow,)
            yield pytest.param(source, id=case_id, marks=marks)


RECURRENT_KINDS = ("simple_rnn", "lstm", "gru")
GRU_OPTIONS = ["reset_after=false, return_sequences=true", "reset_after=false, return_state=true"]


def recurrent_option_allowed(row) -> bool:
    kind, options, _ = row
    if options in GATED_OPTIONS:
        return kind != "simple_rnn" and (kind == "lstm" or "unit_forget" not in options)
    return options not in GRU_OPTIONS or kind == "gru"


def recurrent_case(kind, options, head):
    args = f"3, {options}" if options else "3"
    return spec(head, f"{kind}({args})"), f"{kind}({args})|{head.split()[2]}"


def recurrent_cases():
    dimensions = [
        RECURRENT_KINDS,
        RECURRENT_OPTIONS + GATED_OPTIONS + GRU_OPTIONS,
        (MASKED_IDS, PLAIN_FEATURES),
    ]
    # Every option, kind and input once in the default tier (26 cases); all 140 in `slow`.
    return tiered(dimensions, recurrent_option_allowed, recurrent_case, strength=1)


def batches(params):
    """Each default-tier case without verify's batch of 260 steps, which runs alone in the `slow`
    tier (half of a case's time: `python -m pytest -m slow`); every other verify of the default
    tier (the examples, test_verify, the graphs) runs it."""
    return [split for param in params for split in split_long(param)]


@pytest.mark.parametrize("source, batches", batches(recurrent_cases()))
def test_recurrent_layer(source, batches):
    # `exponential` grows without bound through the recurrence, and exp(c) turns a one-ulp
    # difference in c into a relative difference of c * 2**-23 (c ~ 20 here): compare it relatively.
    verify_spec(source, batches, rtol=1e-3 if "exponential" in source else 0.0)


def bidirectional_case(layer, mode, seq, state, head):
    kind, extra = layer
    inner = f"{kind}(3, return_sequences={seq}, return_state={state}{extra})"
    body = f"bidirectional({inner}, merge_mode={mode})"
    return spec(head, body), f"{body}|{head.split()[2]}"


def bidirectional_cases():
    layers = (("lstm", ""), ("gru", ""), ("simple_rnn", ""), ("gru", ", reset_after=false"),
              ("lstm", ", activation=relu"), ("simple_rnn", ", activation=relu"))  # fmt: skip
    dimensions = [layers, ("concat", "sum", "mul", "ave", "none"), ("true", "false"), ("false", "true"),
                  (MASKED_IDS, PLAIN_FEATURES)]  # fmt: skip
    return tiered(dimensions, lambda row: True, bidirectional_case)


@pytest.mark.parametrize("source, batches", batches(bidirectional_cases()))
def test_bidirectional(source, batches):
    verify_spec(source, batches)


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


def default_tier(sources, fast):
    """The cases at the indices `fast` in the default tier, the others `slow`."""
    return [pytest.param(s, marks=() if i in fast else (pytest.mark.slow,)) for i, s in enumerate(sources)]


# Default tier: an LSTM's two states under a mask, a bidirectional GRU without merging, Masking
# before a GRU, and the stacked pair.
@pytest.mark.parametrize("source", default_tier(STATEFUL + STACKED_STATEFUL, {0, 6, 10, 11}))
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


# Default tier: one of each layer and way of stacking; `slow` adds the variations.
@pytest.mark.parametrize(
    "source, batches", batches(default_tier(STACKS, {0, 1, 2, 4, 6, 7, 8, 9, 12, 13, 14, 15, 17}))
)
def test_stacks_and_other_layers(source, batches):
    verify_spec(source, batches)


# v1's one-input layers, each option, masked and not; each followed by a layer that reads what it
# passes on (a recurrent layer reads the mask; training mode checks batch statistics).
NEW_ACTIVATIONS = ["leaky_relu", "relu6", "silu", "mish", "log_softmax"]
BATCH_NORMS = [
    "batch_normalization()",
    "batch_normalization(center=false)",
    "batch_normalization(scale=false)",
    "batch_normalization(center=false, scale=false)",
    "batch_normalization(epsilon=0.5, momentum=0.9)",
]
RELUS = [
    "relu()",
    "relu(negative_slope=0.1)",
    "relu(max_value=6.0)",
    "relu(max_value=0.5, threshold=0.2)",
    "relu(negative_slope=0.3, max_value=1.0, threshold=0.5)",
    "leaky_relu()",
    "leaky_relu(0.0)",
    "leaky_relu(negative_slope=1.5)",
]
CONVOLUTIONS = [
    "conv1d(3, 1)",
    "conv1d(3, 2, padding=same)",
    "conv1d(3, 4, padding=same)",
    "conv1d(3, 3, strides=2, padding=same)",
    "conv1d(3, 4, strides=3, padding=same)",
    "conv1d(3, 3, padding=causal)",
    "conv1d(3, 2, padding=causal, dilation_rate=3)",
    "conv1d(3, 3, strides=2, padding=causal)",
    "conv1d(3, 3, padding=same, dilation_rate=2, activation=relu)",
    "conv1d(3, 2, strides=2, use_bias=false)",
    "conv1d(3, 3, activation=tanh)",
]
POOLINGS = [
    f"{kind}({args})"
    for kind in ("max_pooling1d", "average_pooling1d")
    for args in ("2", "3, strides=1", "2, strides=3", "2, padding=same", "3, padding=same",
                 "4, strides=1, padding=same", "3, strides=2, padding=same")
] + ["max_pooling1d()"]  # fmt: skip


def one_input_cases():
    for body in BATCH_NORMS + RELUS + ["spatial_dropout1d(0.3)", "gaussian_noise(0.2)"]:
        for head in (MASKED_IDS, PLAIN_FEATURES, MASKED_FEATURES):
            yield pytest.param(
                spec(head, f"{body}\n    lstm(3, return_sequences=true)"), id=f"{body}|{head.split()[2]}"
            )
    for name in ACTIVATIONS + NEW_ACTIVATIONS:
        yield pytest.param(
            spec(MASKED_FEATURES, f"activation({name})\n    gru(2, return_sequences=true)"), id=name
        )
    for name in NEW_ACTIVATIONS:
        for layer in (f"dense(3, activation={name})", f"lstm(3, activation={name}, return_sequences=true)",
                      f"gru(3, recurrent_activation={name}, return_sequences=true)",
                      f"simple_rnn(3, activation={name}, return_sequences=true)"):  # fmt: skip
            yield pytest.param(spec(MASKED_IDS, layer), id=layer)
    for body in CONVOLUTIONS + POOLINGS + ["global_max_pooling()"]:
        for head in (MASKED_IDS, PLAIN_FEATURES, FIXED_FEATURES):
            follow = "" if body == "global_max_pooling()" else "\n    gru(2, return_sequences=true)"
            yield pytest.param(spec(head, body + follow), id=f"{body}|{head.split()[2]}")
    for dense in ("dense(3)", "dense(3, activation=relu, use_bias=false)"):
        for head in (MASKED_IDS, PLAIN_FEATURES):
            body = f"time_distributed({dense})\n    lstm(2, return_sequences=true)"
            yield pytest.param(spec(head, body), id=f"time_distributed({dense})|{head.split()[2]}")
    shapes = [
        (FIXED_FEATURES, "reshape(8, 3)\n    lstm(2)"),
        (FIXED_FEATURES, "reshape(-1, 2)"),
        (FIXED_FEATURES, "reshape(2, 3, 4)\n    dense(2)"),
        (FIXED_FEATURES, "flatten()\n    dense(3)\n    repeat_vector(2)\n    lstm(2, return_sequences=true)"),
        (MASKED_IDS, "lstm(3)\n    repeat_vector(4)\n    gru(2, return_sequences=true)"),
        ("input x: float32[7]", "repeat_vector(3)\n    flatten()\n    batch_normalization()\n    relu()"),
        (MASKED_IDS, "global_max_pooling()\n    batch_normalization(momentum=0.5)\n    activation(softmax)"),
        (
            MASKED_IDS,
            "conv1d(4, 3, padding=same)\n    batch_normalization()\n    max_pooling1d(2)\n    lstm(2)",
        ),
        # The convolutional front of a speech or OCR model.
        (
            "input x: float32[12, 10]",
            "reshape(12, 10, 1)\n    conv2d(4, 3, padding=same, activation=relu)\n    max_pooling2d()\n"
            "    conv2d(3, 2, strides=2, padding=same, use_bias=false)\n"
            "    max_pooling2d(2, strides=1, padding=same)\n    reshape(3, -1)\n    gru(3, return_sequences=true)",
        ),
        (
            "input x: float32[9, 8]",
            "reshape(9, 8, 1)\n    conv2d(2, 3)\n    conv2d(2, 2, dilation_rate=2)\n"
            "    max_pooling2d(3, strides=2)\n    batch_normalization()\n    flatten()\n    dense(2)",
        ),
        (
            "input x: float32[6, 6]",
            "reshape(6, 6, 1)\n    conv2d(3, 4, strides=3, padding=same)\n    reshape(2, -1)",
        ),
        # A speech front over a varying length: each timestep reshaped, the height of the image varying.
        (
            "input x: float32[*, 12]",
            "reshape(-1, 12, 1)\n    conv2d(4, 3, strides=2, padding=same, activation=relu)\n"
            "    batch_normalization()\n    conv2d(3, 2, padding=same)\n    max_pooling2d(2, padding=same)\n"
            "    reshape(-1, 9)\n    bidirectional(gru(4, return_sequences=true))",
        ),
        (
            "input x: float32[*, 6]",
            "reshape(-1, 3, 2)\n    conv2d(2, 2, dilation_rate=2)\n    max_pooling2d(1, strides=2)\n    reshape(-1, 2)",
        ),
    ]
    for head, body in shapes:
        yield pytest.param(spec(head, body), id=body.replace("\n    ", " > ") + f"|{head.split()[2]}")


def first_of_each_kind(params):
    """The first case of each layer kind in the default tier, the variations `slow`."""
    seen: set[str] = set()
    for param in params:
        kind = param.id.split("(", 1)[0]
        marks = () if kind not in seen else (pytest.mark.slow,)
        seen.add(kind)
        yield pytest.param(*param.values, id=param.id, marks=marks)


@pytest.mark.parametrize("source, batches", batches(first_of_each_kind(one_input_cases())))
def test_one_input_layers(source, batches):
    verify_spec(source, batches)


def test_the_default_tier_leaves_out_only_the_long_batch_which_the_slow_tier_runs():
    source = spec(MASKED_IDS, "lstm(3)")
    every = verify_spec(source).cases
    assert verify_spec(source, "long").cases == ["260 timesteps"]
    assert verify_spec(source, "short").cases == [case for case in every if case != "260 timesteps"]
    assert len(every) == 8
