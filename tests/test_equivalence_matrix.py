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

from tests.helpers import verify_spec
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


@pytest.mark.parametrize("source", list(recurrent_cases()))
def test_recurrent_layer(source):
    # `exponential` grows without bound through the recurrence, and exp(c) turns a one-ulp
    # difference in c into a relative difference of c * 2**-23 (c ~ 20 here): compare it relatively.
    verify_spec(source, rtol=1e-3 if "exponential" in source else 0.0)


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
@pytest.mark.parametrize("source", default_tier(STACKS, {0, 1, 2, 4, 6, 7, 8, 9, 12, 13, 14, 15, 17}))
def test_stacks_and_other_layers(source):
    verify_spec(source)
