"""The v1 graph language: statements -> nodes over named values, and every rule's exact message."""

import pytest

from rnnspec.check import load_models
from rnnspec.errors import SpecError


def model(*lines: str, header: str = "model m") -> str:
    body = "\n".join(f"    {line}" for line in lines)
    return f"{header} {{\n{body}\n}}\n"


def first_error(source: str) -> str:
    with pytest.raises(SpecError) as info:
        load_models(source)
    return info.value.render("m.rnn", None).splitlines()[0]


def warnings(source: str) -> list[str]:
    return [w.render("m.rnn", None) for m in load_models(source) for w in m.warnings]


A = "input a: float32[*, 4]"
B = "input b: float32[*, 4]"


def test_seq2seq_graph_values_nodes_and_outputs():
    (m,) = load_models(
        model(
            "input source: int32[*]",
            "input target: int32[*]",
            "x = embedding(50, 8, mask_zero=true)(source)",
            "_, h, c = lstm(16, return_state=true)(x) as encoder",
            "y = embedding(60, 8)(target)",
            "y = lstm(16, return_sequences=true)(y, initial_state=[h, c]) as decoder",
            "probs = dense(60, activation=softmax)(y)",
            "output probs",
        )
    )
    assert [v.name for v in m.inputs] == ["source", "target"]
    assert [layer.name for layer in m.layers] == [
        "embedding_1",
        "encoder",
        "embedding_2",
        "decoder",
        "dense_1",
    ]
    decoder = m.nodes[3]
    assert (decoder.inputs, decoder.initial_state, decoder.outputs) == (["y"], ["h", "c"], ["y#2"])
    assert m.nodes[1].outputs[1:] == ["h", "c"] and m.nodes[1].outputs[0].startswith("_#")
    assert m.outputs == ["probs"]
    assert (m.values["y#2"].shape, m.values["probs"].shape) == ((None, 16), (None, 60))
    assert m.values["x"].masked and not m.values["y"].masked and m.values["h"].shape == (16,)
    assert m.warnings == []


def test_a_layer_called_again_by_name_is_the_same_layer():
    (m,) = load_models(
        model(
            "input left: int32[*]",
            "input right: int32[*]",
            "a = embedding(50, 8, mask_zero=true)(left) as embed",
            "b = embed(right)",
            "a = gru(4)(a) as enc",
            "b = enc(b)",
            "d = subtract()(a, b)",
            "output d",
        )
    )
    assert [layer.name for layer in m.layers] == ["embed", "enc", "subtract_1"]
    assert m.nodes[1].layer is m.nodes[0].layer and m.nodes[1].call_index == 1
    assert m.layers[0].calls == 2 and m.nodes[3].inputs == ["b"] and m.nodes[3].outputs == ["b#2"]
    assert m.values["b"].masked and m.values["d"].shape == (4,)


def test_v0_forms_inside_a_graph_take_the_previous_value_and_the_last_statement_is_the_output():
    (m,) = load_models(model(A, B, "lstm(3, return_state=true)(b) as enc", "dense(2)"))
    assert [n.inputs for n in m.nodes] == [["b"], ["enc"]]
    assert m.outputs == ["dense_1"]
    assert warnings(model(A, B, "lstm(3, return_state=true)(b) as enc", "dense(2)")) == [
        "m.rnn:2:11: warning: input `a` is not used by any output of model `m`"
    ]
    (m,) = load_models(model(A, "lstm(3, return_state=true)(a) as enc"))
    assert m.outputs == ["enc", "enc.h", "enc.c"]


def test_merge_shapes_and_masks():
    (m,) = load_models(
        model(
            "input x: int32[*]",
            "input y: int32[*]",
            B,
            "e = embedding(9, 4, mask_zero=true)(x) as embed",
            "f = embed(y)",
            "both = add()(e, f)",
            "one = add()(e, b)",
            "along = concatenate()(e, b)",
            "time = concatenate(axis=1)(e, b, f)",
            "output both, one, along, time",
        )
    )
    shapes = {k: (m.values[k].shape, m.values[k].masked) for k in m.outputs}
    assert shapes == {
        "both": ((None, 4), True),  # OR of two masks
        "one": ((None, 4), False),  # one input unmasked: no mask (Keras 3)
        "along": ((None, 8), True),  # Concatenate: a mask if any input has one
        "time": ((None, 4), True),
    }
    (m,) = load_models(model("input p: float32[5, 4]", "input q: float32[1, 4]", "s = maximum()(p, q)"))
    assert m.values["s"].shape == (5, 4)


def test_explicit_mask_and_the_mask_dropped_next_to_initial_state():
    lines = [
        "input t: int32[*]",
        "input h: float32[3]",
        "x = embedding(9, 4, mask_zero=true)(t)",
        "y = gru(3, return_sequences=true)(x, initial_state=[h])",
    ]
    assert warnings(model(*lines)) == [
        "m.rnn:5:39: warning: `gru_1` runs unmasked: Keras ignores the mask of `x` when a layer is called with "
        "`initial_state` (the mask still flows on to later layers); to mask this layer, pass the mask "
        "explicitly: declare `input m: bool[*]` and call it with `mask=m`"
    ]
    (m,) = load_models(model(*lines))
    assert m.values["y"].masked  # the mask flows on
    explicit = [
        *lines[:3],
        "input m: bool[*]",
        "y = gru(3, return_sequences=true)(x, initial_state=[h], mask=m)",
    ]
    (m,) = load_models(model(*explicit))
    assert m.warnings == [] and m.nodes[1].mask == "m" and m.values["y"].masked
    (m,) = load_models(model(A, "input m: bool[*]", "y = lstm(3, return_sequences=true)(a, mask=m)"))
    assert m.values["y"].masked


def test_unused_values_are_warnings_and_dead_layers_are_left_out():
    source = model(A, "y, h, c = lstm(3, return_state=true)(a)", "z = dense(2)(y)", "output h")
    assert warnings(source) == [
        "m.rnn:4:5: warning: `dense_1` feeds no output of model `m`; it is left out of the model",
        "m.rnn:3:5: warning: `y` is never used (not an output, not an input of a later layer); write `_` to drop it",
        "m.rnn:3:11: warning: `c` is never used (not an output, not an input of a later layer); write `_` to drop it",
    ]
    (m,) = load_models(source)
    assert [layer.name for layer in m.layers] == ["lstm_1"]


def test_several_models_in_one_file_may_name_the_same_layers():
    source = model(A, "y = lstm(3)(a) as enc") + model(
        A, "y = lstm(3)(a) as enc", "output y", header="model n"
    )
    assert [m.layers[0].name for m in load_models(source)] == ["enc", "enc"]


@pytest.mark.parametrize(
    "lines, message",
    [
        (
            [A, "y = lstm(3)(x)"],
            "m.rnn:3:17: error: `x` is not defined here: a value is an `input` or a name bound "
            "by an earlier statement (`x = ...`, or the layer name of a statement without `x =`)",
        ),
        (
            ["lstm(3)(a)", A],  # was "`a` is not defined here"
            "m.rnn:2:13: error: input `a` is declared at line 3, below its first use: declare it above",
        ),
        (  # a cycle: each value would need the other first
            [A, "x = dense(4)(y)", "y = dense(4)(x)", "output y"],
            "m.rnn:3:18: error: `y` is used before it is defined (line 4): statements run top to bottom, so a "
            "graph has no cycles; define it above its first use",
        ),
        (
            [A, "x = dense(4)(x)", "output x"],
            "m.rnn:3:18: error: `x` is used by the statement that defines it: a graph has no cycles",
        ),
        (
            [A, "y = lstm(3)(a)", "output yy"],
            "m.rnn:4:12: error: `yy` is not defined here (did you mean `y`?): a "
            "value is an `input` or a name bound by an earlier statement (`x = ...`, or the layer name of a "
            "statement without `x =`)",
        ),
        (
            [A, "y, h = lstm(3, return_state=true)(a)"],
            "m.rnn:3:5: error: `lstm_1` returns 3 values (output, h, c), "
            "but 2 names are given: write `output, h, c = ...` (`_` drops one)",
        ),
        (
            [A, "y = lstm(3, return_state=true)(a)"],
            "m.rnn:3:5: error: `lstm_1` returns 3 values (output, h, c), but "
            "1 name is given: write `output, h, c = ...` (`_` drops one)",
        ),
        (
            [A, "y, fh, fc, bh = bidirectional(lstm(3, return_state=true))(a)"],
            "m.rnn:3:5: error: `bidirectional_1` "
            "returns 5 values (output, forward_h, forward_c, backward_h, backward_c), but 4 names are given: write "
            "`output, forward_h, forward_c, backward_h, backward_c = ...` (`_` drops one)",
        ),
        (
            [A, "f = bidirectional(gru(3), merge_mode=none)(a)"],
            "m.rnn:3:5: error: `bidirectional_1` returns 2 "
            "values (forward, backward), but 1 name is given: write `forward, backward = ...` (`_` drops one)",
        ),
        (
            [A, B, "y = lstm(3)(a, b)"],
            "m.rnn:4:20: error: `lstm_1` (lstm) takes one input value, got 2; merge "
            "values first, e.g. with `concatenate()(a, b)`",
        ),
        (
            [A, "y = add()(a)"],
            "m.rnn:3:5: error: `add` merges two or more values, got 1: write `add()(a, b)`",
        ),
        ([A, "add()"], "m.rnn:3:5: error: `add` merges two or more values, got 1: write `add()(a, b)`"),
        (
            [A, "input b: float32[*, 5]", "y = add()(a, b)"],
            "m.rnn:4:5: error: `add` needs shapes that are equal "
            "per axis (or 1, which broadcasts), as Keras's Add does; got `a` float32[*, 4], `b` float32[*, 5]",
        ),
        (
            [A, "input b: float32[4]", "y = maximum()(a, b)"],
            "m.rnn:4:5: error: `maximum` needs values with the same "
            "number of dimensions; got `a` float32[*, 4], `b` float32[4]",
        ),
        (
            [A, "input b: float32[*, 5]", "y = concatenate(axis=1)(a, b)"],
            "m.rnn:4:5: error: `concatenate` (axis=1) "
            "needs the same shape except along the axis, as Keras's Concatenate does; got `a` float32[*, 4], `b` "
            "float32[*, 5]",
        ),
        (
            [A, B, "y = concatenate(axis=0)(a, b)"],
            "m.rnn:4:21: error: `axis` of `concatenate_1` must be between 1 "
            "and 2 or -2 and -1 for these values (axis 0 is the batch); got 0",
        ),
        (
            [A, B, "input c: float32[*, 4]", "y = subtract()(a, b, c)"],
            "m.rnn:5:5: error: `subtract` takes exactly 2 values (a - b), got 3",
        ),
        (
            ["input t: int32[*]", B, "y = add()(t, b)"],
            "m.rnn:4:15: error: `add` merges float32 values; `t` is int32[*]",
        ),
        (
            [A, "input h: float32[3]", "y = lstm(3)(a, initial_state=[h])"],
            "m.rnn:4:35: error: `lstm_1` has 2 states (h, c), so `initial_state` lists 2 values, got 1",
        ),
        (
            [A, "input h: float32[3]", "y = bidirectional(gru(3))(a, initial_state=[h])"],
            "m.rnn:4:49: error: "
            "`bidirectional_1` has 2 states (forward_h, backward_h), so `initial_state` lists 2 values, got 1",
        ),
        (
            [A, "input h: float32[5]", "input c: float32[3]", "y = lstm(3)(a, initial_state=[h, c])"],
            "m.rnn:5:35: error: initial state h of `lstm_1` is float32[3]; `h` is float32[5]",
        ),
        (
            [A, "input h: float32[3]", "y = dense(3)(a, initial_state=[h])"],
            "m.rnn:4:36: error: `dense_1` (dense) has no state; `initial_state=` goes to a recurrent layer",
        ),
        (
            [A, "input m: bool[*]", "y = dense(3)(a, mask=m)"],
            "m.rnn:4:26: error: `dense_1` (dense) does not take a "
            "mask; `mask=` goes to a recurrent layer, `bidirectional` or a pooling layer",
        ),
        (
            [A, "input m: bool[*]", "y = lstm(3)(m)"],
            "m.rnn:4:17: error: `m` is a mask (bool): pass it as `mask=m` to a recurrent or pooling layer",
        ),
        (
            [A, B, "y = lstm(3)(a, mask=b)"],
            "m.rnn:4:25: error: `mask=` takes a `bool` input, such as `input m: "
            "bool[*]`; `b` is float32[*, 4]",
        ),
        (
            ["input m: bool[5]", "input c: float32[6, 4]", "y = lstm(3)(c, mask=m)"],
            "m.rnn:4:25: error: mask `m` has bool[5] but `c` has float32[6, 4]: their time axes differ",
        ),
        (  # was "computes nothing: its outputs are inputs", at the model's name
            [A, "y = dense(3)(a)", "_, _ = gru(3, return_state=true)(y)"],
            "m.rnn:4:5: error: model `m` has no output: the last statement drops every value it returns (`_`); "
            "name one, or list the outputs with `output`",
        ),
        (  # was accepted, and verify failed inside TensorFlow (it feeds `*` another length than 5)
            ["input m: bool[5]", A, "y = lstm(3)(a, mask=m)"],
            "m.rnn:4:25: error: mask `m` has bool[5] but `a` has float32[*, 4]: their time axes differ; a "
            "varying length (`*`) meets a fixed one (5): declare both `*` or both 5",
        ),
        (
            ["input m: bool[*, 2]", A, "y = lstm(3)(a)"],
            "m.rnn:2:14: error: a bool input is a mask over time and "
            "takes one dimension, the time axis (`bool[*]` or `bool[20]`), got [*, 2]",
        ),
        (
            [A, "y = lstm(3)(a, foo=a)"],
            "m.rnn:3:20: error: a layer call takes values and `mask=` or "
            "`initial_state=`, not `foo=`; a layer's own arguments go in its first parentheses",
        ),
        ([A, "y = lstm(3)(a, 3)"], "m.rnn:3:20: error: a layer's inputs are value names, got `3`"),
        (
            [A, "y = dense(3)(a) as d", "z = d(a) as e"],
            "m.rnn:4:17: error: `d(...)` applies the layer `d` again, which keeps its name; drop `as e`",
        ),
        (
            [A, "y = dense(3)(a) as d", "z = d(units=3)(a)"],
            "m.rnn:4:9: error: `d` is a layer of this model: call it with its inputs only, as `d(x)`",
        ),
        (
            [A, "input b: float32[*, 5]", "y = dense(3)(a) as d", "z = d(b)"],
            "m.rnn:5:11: error: `d` was first "
            "applied to float32[*, 4] (`a`, line 4); applied again it shares those weights, so it needs the same "
            "shape, but `b` is float32[*, 5]",
        ),
        (
            [A, "y = dense(3)(a) as d", "z = dense(3)(a) as d"],
            "m.rnn:4:24: error: name `d` is used twice (first at "
            "line 3); to apply that layer again write `d(x)`, or give this one another name with `as NAME`",
        ),
        (
            ["lstm(3)", A],
            "m.rnn:2:5: error: `lstm_1` takes the previous statement's value, but there is none here: "
            "name its input, as in `lstm(64)(x)`",
        ),
        (
            [A, "y = dense(3)(a)", "output a"],
            "m.rnn:4:5: error: model `m` computes nothing: its outputs are inputs; "
            "list a layer's value in `output`",
        ),
        ([A, "y = lstm(3)(a)", "output y, y"], "m.rnn:4:15: error: `y` is listed twice in `output`"),
        (
            [A, "y = lstm(3)(a)", "output y", "output y"],
            "m.rnn:5:5: error: a model has one `output` statement (the first is at line 4)",
        ),
        (
            [A, "class = lstm(3)(a)"],
            "m.rnn:3:5: error: value name `class` is a Python keyword; choose another name",
        ),
        (
            [A, "y, y, _ = lstm(3, return_state=true)(a)"],
            "m.rnn:3:5: error: `y` is named twice in one statement",
        ),
        (
            [A, "input a: float32[*, 4]", "y = lstm(3)(a)"],
            "m.rnn:3:11: error: input `a` is declared twice (first at line 2)",
        ),
        (
            [A, "y = lstm(3, stateful=true)(a) as l", "z = l(a)", "output y, z"],
            "m.rnn:3:17: error: `stateful=true` "
            "on `l` needs a fixed batch size: write `model m(batch_size=N) {`",
        ),
        (
            [A, "input h: float32[3]", "y = gru(3, stateful=true)(a, initial_state=[h])"],
            "m.rnn:4:49: error: "
            "`gru_1` is stateful, so it starts from the states it carries; `initial_state=` is refused",
        ),
        (
            [A, "y = dense(3)(a) as a"],
            "m.rnn:3:24: error: name `a` is used twice in model `m` (first at line 2); "
            "give one of them another name with `as NAME`",
        ),
        (
            ["input x: float16[*, 4]", "input y: float32[4]", "z = dense(3)(y)"],
            "m.rnn:2:14: error: unknown input "
            "type `float16`: use int32, int64, float32 or bool (a mask) (did you mean `float32`?)",
        ),
    ],
)
def test_graph_rule_messages(lines, message):
    assert first_error(model(*lines)) == message


def test_a_layer_named_after_its_kind_is_applied_again_by_that_name():
    """As Keras names layers (`dense`, `embedding`): `dense(x)` applies the layer `dense` again,
    `dense(4)` is a new dense layer."""
    (m,) = load_models(
        model(A, B, "y = dense(3)(a) as dense", "z = dense(b)", "w = dense(4)(b)", "output y, z, w")
    )
    assert [layer.name for layer in m.layers] == ["dense", "dense_2"]
    assert m.nodes[1].layer is m.nodes[0].layer and m.values["w"].shape == (None, 4)


def test_stateful_layer_applied_twice_is_refused():
    source = model(
        A, "y = lstm(3, stateful=true)(a) as l", "z = l(a)", "output y, z", header="model m(batch_size=2)"
    )
    assert first_error(source) == (
        "m.rnn:4:5: error: `l` is stateful and applied twice: which call's final states would the next batch "
        "start from? Use two layers"
    )


def test_inputs_with_more_dimensions():
    (m,) = load_models(
        model("input img: float32[20, *, 3]", "input v: float32[20, 7, 3]", "s = add()(img, v)")
    )
    assert m.values["s"].shape == (20, None, 3)


def test_every_bad_dimension_of_a_graph_input_is_reported():
    with pytest.raises(SpecError) as info:
        load_models(model("input img: float32[0, *, 2.5]", "y = dense(2)(img)", "output y"))
    assert [d.render("m.rnn", None) for d in info.value.diagnostics] == [
        "m.rnn:2:24: error: a dimension must be a positive integer (at most 2,147,483,647) or `*`, got `0`",
        "m.rnn:2:30: error: a dimension must be a positive integer (at most 2,147,483,647) or `*`, got `2.5`",
    ]


SIAMESE_SUMMARY = """\
model `siamese`
layer          kind                output shape      connected to                                    params (Keras)  params (PyTorch)
-------------  ------------------  ----------------  ----------------------------------------------  --------------  ----------------
left           input               (None, None)                                                                   0                 0
right          input               (None, None)                                                                   0                 0
embed          embedding           (None, None, 48)  left[0][0], right[0][0]                                384,000           384,000
encoder        bidirectional(gru)  (None, 64)        embed[0][0], embed[1][0]                                15,744            15,744
subtract_1     subtract            (None, 64)        encoder[0][0], encoder[1][0]                                 0                 0
concatenate_1  concatenate         (None, 192)       encoder[0][0], encoder[1][0], subtract_1[0][0]               0                 0
dense_1        dense               (None, 1)         concatenate_1[0][0]                                        193               193
-------------  ------------------  ----------------  ----------------------------------------------  --------------  ----------------
total                                                                                                       399,937           399,937
outputs: dense_1[0][0]
"""


def test_summary_of_a_graph_has_a_connected_to_column(capsys):
    """As Keras's summary: `layer[call][value]` per input of every call of a layer."""
    from rnnspec.cli import main
    from tests.golden import EXAMPLES

    assert main(["summary", str(EXAMPLES / "siamese.rnn")]) == 0
    assert capsys.readouterr().out == SIAMESE_SUMMARY


def test_a_second_activation_layer_after_one_named_activation_is_a_new_layer():
    """Keras names a Sequential's activation layers `activation`, `activation_1`; the stack `rnnspec
    import` writes for it, `activation(gelu) as activation` then `activation(relu6) as activation_1`,
    was read as applying the layer `activation` to a value `relu6` (and refused). A name that is no
    value is the layer's argument; a value still applies the layer, and a typo is still named."""
    (m,) = load_models(
        model(A, "dense(3) as dense", "activation(gelu) as activation", "activation(relu6) as activation_1")
    )
    assert not m.is_graph
    assert [(layer.name, layer.attrs["activation"]) for layer in m.layers[1:]] == [
        ("activation", "gelu"),
        ("activation_1", "relu6"),
    ]
    (g,) = load_models(
        model(
            A,
            "x = activation(tanh)(a) as activation",
            "y = activation(relu)",
            "z = activation(y)",
            "output z",
        )
    )
    assert [(layer.name, layer.attrs["activation"], layer.calls) for layer in g.layers] == [
        ("activation", "tanh", 2),
        ("activation_2", "relu", 1),
    ]
    assert first_error(model(A, B, "y = dense(3)(a) as dense", "z = dense(bb)", "output y, z")) == (
        "m.rnn:5:15: error: `bb` is not defined here (did you mean `b`?): a value is an `input` or a name "
        "bound by an earlier statement (`x = ...`, or the layer name of a statement without `x =`)"
    )


@pytest.mark.parametrize(
    "lines, message",
    [
        (  # Keras's `layers.add([a, b])`; was "`add` takes no positional arguments", twice
            [A, B, "y = add(a, b)"],
            "m.rnn:4:9: error: `add` takes the values it merges in a second pair of parentheses: write "
            "`add()(a, b)`",
        ),
        (
            [A, B, "y = concatenate(a, b, axis=1)"],
            "m.rnn:4:9: error: `concatenate` takes the values it merges in a second pair of parentheses: "
            "write `concatenate(axis=1)(a, b)`",
        ),
        (  # was "`units` of `lstm` must be a positive integer, got `a`"
            [A, "input m: bool[*]", "y = lstm(a, mask=m)"],
            "m.rnn:4:9: error: this model has no layer named `lstm` to apply again; a new `lstm` takes its "
            "own arguments first and its input second: `lstm(units)(a, mask=m)`",
        ),
        (
            [A, "y = dense(3)(a)", "z = flatten(y)"],
            "m.rnn:4:9: error: this model has no layer named `flatten` to apply again; a new `flatten` takes "
            "its own arguments first and its input second: `flatten()(y)`",
        ),
        (  # was "unknown layer kind `y`"
            [A, "y = dense(3)(a)", "z = y(a)"],
            "m.rnn:4:9: error: `y` is a value, not a layer: apply a layer to it, as in `dense(4)(y)`; a layer "
            "is applied again by its layer name (`... as NAME`, then `NAME(x)`)",
        ),
    ],
)
def test_values_where_a_new_layer_takes_its_arguments_are_told_in_words(lines, message):
    """Found by a new-user trial: each message was about a number or a kind, not what was meant."""
    assert first_error(model(*lines)) == message


def test_a_layer_name_used_as_a_value_says_which_values_it_returned():
    """Was "`enc` is not defined here", as if the name were a typo (found by a new-user trial)."""
    source = model(A, "_, h, c = lstm(3, return_state=true)(a) as enc", "y = dense(2)(enc)", "output y")
    assert first_error(source) == (
        "m.rnn:4:18: error: `enc` names a layer (line 3), not a value: what it returned there is `h`, `c`; "
        "`enc(x)` applies the layer again"
    )
