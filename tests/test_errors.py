"""Every rule of the language: the exact message, at the right FILE:LINE:COL."""

import pytest

from rnnspec.check import load_models
from rnnspec.errors import SpecError


def errors(source: str) -> str:
    with pytest.raises(SpecError) as info:
        load_models(source)
    return info.value.render("m.rnn", source)


def first_line(source: str) -> str:
    return errors(source).splitlines()[0]


def model(*lines: str, header: str = "model m") -> str:
    body = "\n".join(f"    {line}" for line in lines)
    return f"{header} {{\n{body}\n}}\n"


IDS = "input tokens: int32[*]"
FEATURES = "input x: float32[*, 4]"


def test_syntax_error_shows_line_caret_and_expectation():
    source = "model m {\n    input x: float32[*, 4]\n    lstm(3\n}\n"
    assert errors(source) == (
        "m.rnn:4:1: error: expected `,` or `)`, found `}`: is a `)` missing?\n    }\n    ^"
    )


@pytest.mark.parametrize(
    "source, message",
    [
        (
            model(FEATURES, "lstm(3 4)"),
            "m.rnn:3:12: error: expected `,` or `)` before `4`: is a comma missing between arguments?",
        ),
        (
            model(FEATURES, "lstm(units: 3)"),
            "m.rnn:3:15: error: expected `=` between an argument name and its value, found `:`",
        ),
        (
            "lstm(3)\n",
            "m.rnn:1:1: error: expected `model NAME { ... }`, found `lstm`: every layer and input belongs inside a model block",
        ),
        (
            model(FEATURES, 'lstm("3")'),
            "m.rnn:3:10: error: strings are not part of the language: write names and numbers without quotes",
        ),
    ],
)
def test_common_syntax_mistakes_are_named(source, message):
    assert first_line(source) == message


@pytest.mark.parametrize(
    "lines, message",
    [
        ([FEATURES, "lstn(3)"], "m.rnn:3:5: error: unknown layer kind `lstn` (did you mean `lstm`?)"),
        (
            [FEATURES, "lstm(3, retrun_sequences=true)"],
            "m.rnn:3:13: error: `lstm` has no argument `retrun_sequences` (did you mean `return_sequences`?)",
        ),
        (
            [FEATURES, "lstm(3, activation=tanhh)"],
            "m.rnn:3:24: error: unknown activation `tanhh` for `activation` of `lstm` (did you mean `tanh`?)",
        ),
        (
            [FEATURES, "bidirectional(lstm(3), merge_mode=concatenate)"],
            "m.rnn:3:39: error: unknown merge mode `concatenate` for `merge_mode` of `bidirectional` (did you mean `concat`?)",
        ),
        ([FEATURES, "lstm(3, units=4)"], "m.rnn:3:13: error: argument `units` of `lstm` is given twice"),
        (
            [FEATURES, "lstm(3, use_bias=true, use_bias=false)"],
            "m.rnn:3:28: error: argument `use_bias` of `lstm` is given twice",
        ),
        ([FEATURES, "lstm(0)"], "m.rnn:3:10: error: `units` of `lstm` must be a positive integer, got `0`"),
        (
            [FEATURES, "lstm(2.5)"],
            "m.rnn:3:10: error: `units` of `lstm` must be a positive integer, got `2.5`",
        ),
        (
            [FEATURES, "lstm(3, dropout=1.0)"],
            "m.rnn:3:21: error: `dropout` of `lstm` must be a rate in [0, 1), got `1.0`",
        ),
        (
            [FEATURES, "dropout(-0.1)"],
            "m.rnn:3:13: error: `rate` of `dropout` must be a rate in [0, 1), got `-0.1`",
        ),
        (
            [FEATURES, "lstm(3, stateful=1)"],
            "m.rnn:3:22: error: `stateful` of `lstm` must be `true` or `false`, got `1`",
        ),
        ([FEATURES, "lstm()"], "m.rnn:3:5: error: `lstm` needs the argument `units`"),
        (
            [FEATURES, "bidirectional(dense(3))"],
            "m.rnn:3:19: error: `bidirectional` wraps one recurrent layer (simple_rnn, lstm or gru), got `dense`",
        ),
        (
            [FEATURES, "lstm(3, stateful=true)"],
            "m.rnn:3:13: error: `stateful=true` on `lstm_1` needs a fixed batch size: write `model m(batch_size=N) {`",
        ),
        (
            [FEATURES, "lstm(3, unroll=true)"],
            "m.rnn:3:13: error: `unroll=true` on `lstm_1` needs a fixed number of timesteps, but the time axis is `*`; "
            "give the input a fixed length such as `float32[20, 8]`",
        ),
        (
            [FEATURES, "embedding(10, 3)"],
            "m.rnn:3:5: error: `embedding` needs an int32 or int64 input of token ids; `embedding_1` receives "
            "float32[*, 4] from `x`",
        ),
        (
            [IDS, "lstm(3)"],
            "m.rnn:3:5: error: input `tokens` holds token ids (int32[*]) and must be followed by `embedding(...)`, not `lstm`",
        ),
        (
            [FEATURES, "lstm(3, return_state=true)", "dense(2)"],
            "m.rnn:3:13: error: `return_state=true` is only allowed on the last layer of a model; `lstm_1` is followed by `dense_1`",
        ),
        (
            [FEATURES, "bidirectional(lstm(3), merge_mode=none)", "dense(2)"],
            "m.rnn:3:28: error: `merge_mode=none` returns two tensors, so `bidirectional_1` must be the last layer; "
            "it is followed by `dense_1`",
        ),
        (
            [FEATURES, "lstm(3) as enc", "gru(3)"],
            "m.rnn:4:5: error: a recurrent layer needs a sequence [timesteps, features], but `enc` returns only its last "
            "output (float32[3]); set `return_sequences=true` on `enc` so that `gru_1` gets one",
        ),
        (
            [FEATURES, "lstm(3) as a", "dense(2) as a"],
            "m.rnn:4:17: error: name `a` is used twice in model `m` (first at line 3); give one of them another name with `as NAME`",
        ),
        (
            [FEATURES, "lstm(3) as class"],
            "m.rnn:3:16: error: layer name `class` is a Python keyword; choose another with `as NAME`",
        ),
        (
            [FEATURES, "lstm(3) as __x"],
            "m.rnn:3:16: error: layer name `__x` starts with `__`, which Python reserves; choose another with `as NAME`",
        ),
        (
            [FEATURES, "bidirectional(lstm(3, go_backwards=true))"],
            "m.rnn:3:27: error: `go_backwards=true` inside `bidirectional` is not supported: the wrapper already runs one "
            "half backwards; drop the argument",
        ),
        (
            ["input x: float32[*, *]", "lstm(3)"],
            "m.rnn:2:25: error: the feature dimension must be a fixed size, not `*`",
        ),
        (
            ["input x: float16[*, 4]", "lstm(3)"],
            "m.rnn:2:14: error: unknown input type `float16`: use int32, int64 or float32 (did you mean `float32`?)",
        ),
        (
            ["input x: float32[0, 4]", "lstm(3)"],
            "m.rnn:2:22: error: a dimension must be a positive integer (at most 2,147,483,647) or `*`, got `0`",
        ),
        (
            ["lstm(3)"],
            "m.rnn:2:5: error: model `m` has no `input` declaration: start it with e.g. `input x: float32[*, 8]`",
        ),
        ([FEATURES], "m.rnn:3:1: error: model `m` has no layers"),
        (
            [FEATURES, FEATURES, "lstm(3)"],
            "m.rnn:3:11: error: input `x` is declared twice (first at line 2)",
        ),
        (
            ["input x: float32[4]", "lstm(3)"],
            "m.rnn:3:5: error: a recurrent layer needs a sequence [timesteps, features]; `lstm_1` receives float32[4] from input `x`",
        ),
        (
            [
                IDS,
                "embedding(10, 3, mask_zero=true)",
                "bidirectional(lstm(3, unroll=true, return_sequences=true))",
            ],
            None,
        ),
    ],
)
def test_rule_messages(lines, message):
    source = model(*lines)
    if message is None:  # a rule that depends on the fixed length: see the next test
        with pytest.raises(SpecError):
            load_models(source)
        return
    assert first_line(source) == message


def test_unroll_in_bidirectional_over_a_mask_is_refused_with_the_keras_reason():
    source = model(
        "input tokens: int32[6]",
        "embedding(10, 3, mask_zero=true)",
        "bidirectional(lstm(3, unroll=true, return_sequences=true))",
    )
    assert first_line(source) == (
        "m.rnn:4:27: error: `unroll=true` inside `bidirectional` on a masked sequence is refused: Keras 3's unrolled "
        "loop zeroes the backward half at the wrong timesteps (it applies the unflipped mask); drop `unroll` on "
        "`bidirectional_1`"
    )


def test_stateful_return_state_in_bidirectional_is_refused_with_the_keras_reason():
    source = model(
        FEATURES, "bidirectional(gru(3, stateful=true, return_state=true))", header="model m(batch_size=2)"
    )
    assert first_line(source) == (
        "m.rnn:3:41: error: `return_state=true` with `stateful=true` inside `bidirectional` is refused: Keras 3's "
        "Bidirectional.compute_mask fails on that combination; drop one of them on `bidirectional_1`"
    )


def test_independent_errors_are_all_reported():
    source = model(FEATURES, "lstn(3)", "lstm(3, retrun_sequences=true)", "dense(0)")
    rendered = errors(source)
    heads = [line for line in rendered.splitlines() if line.startswith("m.rnn:")]
    assert heads == [
        "m.rnn:3:5: error: unknown layer kind `lstn` (did you mean `lstm`?)",
        "m.rnn:4:13: error: `lstm` has no argument `retrun_sequences` (did you mean `return_sequences`?)",
        "m.rnn:5:11: error: `units` of `dense` must be a positive integer, got `0`",
    ]


def test_duplicate_model_names():
    source = model(FEATURES, "lstm(3)") + model(FEATURES, "gru(3)")
    assert first_line(source) == "m.rnn:5:7: error: model `m` is defined twice (first at line 1)"


def test_model_name_that_is_a_keyword():
    assert first_line(model(FEATURES, "lstm(3)", header="model def")) == (
        "m.rnn:1:7: error: model name `def` is a Python keyword; choose another name"
    )


def test_empty_file():
    """The hint has no `;` (was `model NAME { input ...; layers }`, and a `;` is a syntax error)."""
    assert first_line("# nothing here\n") == (
        "m.rnn:1:1: error: the file holds no model: write `model NAME {`, then an `input` and one layer per "
        "line, then `}`"
    )


@pytest.mark.parametrize(
    "lines, header, message",
    [
        (
            ["input torch: float32[*, 4]", "lstm(3)"],
            "model m",
            "m.rnn:2:11: error: input name `torch` would shadow a name the generated PyTorch program uses; choose another",
        ),
        (
            [FEATURES, "lstm(3) as forward"],
            "model m",
            "m.rnn:3:16: error: layer name `forward` would clash with an attribute of torch.nn.Module in the generated "
            "PyTorch program; choose another with `as NAME`",
        ),
        (
            [FEATURES, "lstm(3) as _modules"],
            "model m",
            "m.rnn:3:16: error: layer name `_modules` would clash with an attribute of torch.nn.Module in the generated "
            "PyTorch program; choose another with `as NAME`",
        ),
        (
            [FEATURES, "lstm(3)"],
            "model attention_pooling",
            "m.rnn:1:7: error: model name `attention_pooling` would become the class `AttentionPooling`, which the "
            "generated PyTorch program already defines; choose another",
        ),
    ],
)
def test_names_that_would_clash_in_generated_code(lines, header, message):
    assert first_line(model(*lines, header=header)) == message


def test_a_semicolon_is_named():
    """As a C or JavaScript habit writes it (was "expected `}` or a name, found `;`")."""
    assert first_line(model("input x: float32[*, 3];", "lstm(3)")) == (
        "m.rnn:2:27: error: a statement ends at the end of its line: drop the `;`"
    )


@pytest.mark.parametrize(
    "line, message",
    [
        ("LSTM(3)", "m.rnn:3:5: error: unknown layer kind `LSTM` (Keras's `LSTM` is `lstm` here)"),
        (  # was no suggestion at all
            "GlobalAveragePooling1D()",
            "m.rnn:3:5: error: unknown layer kind `GlobalAveragePooling1D` (Keras's `GlobalAveragePooling1D` is "
            "`global_average_pooling` here)",
        ),
        (  # was "did you mean `elu`?"
            "dense(3, activation=Relu)",
            "m.rnn:3:25: error: unknown activation `Relu` for `activation` of `dense` (did you mean `relu`?)",
        ),
    ],
)
def test_keras_spellings_are_pointed_to_the_kind(line, message):
    """A Keras user writes the class names and the capitalised activations (found by a new-user trial)."""
    assert first_line(model("input x: float32[*, 3]", line)) == message


def test_none_for_a_varying_length_is_named():
    assert first_line(model("input x: float32[None, 3]", "lstm(3)")) == (
        "m.rnn:2:22: error: expected `*` or a number, found `None`: a length that varies (Keras's None) is "
        "written `*`"
    )
