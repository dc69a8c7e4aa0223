"""Hypothesis strategies for random *valid* `.rnn` specs over the whole v0 language and v1's
one-input layers, as text.

`specs()` draws one model: an input (`int32[*]`, `int64[N]`, `float32[*, F]`, `float32[T, F]` or
`float32[F]`), then layers that respect every rule the checker enforces: embedding right after an
int input; recurrent stacks of depth 1-4 fed sequences; `return_state` and `merge_mode=none` only
on the last layer; `stateful` only with a model `batch_size`; `unroll` only on a fixed time axis,
and not inside a `bidirectional` over a masked sequence that returns sequences; inside
`bidirectional`, no `go_backwards` and not `stateful` with `return_state`. Every option is drawn,
sometimes spelled out at its default value, sometimes as a keyword where a positional would do.
Sizes stay tiny for speed. Rare choices sit at the top of each integer range, so that shrinking
leads to plain specs.

REGRESSION_SPECS holds the minimal specs of compiler bugs found while fuzzing; the fuzz module
runs each of them as an ordinary test (no xfail): they fail until the compiler is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from rnnspec.ir import ACTIVATIONS, MERGE_MODES

RECURRENT = ("simple_rnn", "lstm", "gru")
SEQUENCE_EXTRAS = (
    "masking", "dense", "dropout", "layer_normalization",
    # v1's one-input layers that keep the time axis and pass a mask on
    "batch_normalization", "activation", "relu", "leaky_relu", "time_distributed", "spatial_dropout1d",
    "gaussian_noise",
)  # fmt: skip
# Layers over time that drop a mask and may change the number of timesteps.
WINDOWED = ("conv1d", "max_pooling1d", "average_pooling1d")
VECTOR_EXTRAS = (
    "dense", "dropout", "layer_normalization", "batch_normalization", "activation", "relu", "leaky_relu",
    "gaussian_noise",
)  # fmt: skip
RATES = ("0.0", "0", "0.1", "0.25", "0.5", "0.9")
MASK_VALUES = ("0.0", "0", "-1.0", "1", "0.5", "-2.5", "1e-3", "3")

# Identifiers the spec may use: ordinary names, and names the generated programs use for their own
# locals (`x`, `y`, `mask`, `last`, ...), which the compiler must keep apart. Names the checker
# reserves (`keras`, `torch`, `F`, `self`, `forward`, `h_n`, ...) cannot appear in a valid spec.
# `enc_h` and `enc_c` stand beside `enc`, where a stateful `enc` once clashed with its state buffers.
INPUT_NAMES = tuple("x tokens ids features y h mask last inputs seq x1 state".split())
LAYER_NAMES = tuple("enc enc_h enc_c dec proj head pool embed rnn x y h mask last out tokens".split())
MODEL_NAMES = tuple("m tagger sentiment seq2vec net_2 a_b_c _private x Model h".split())


def _bool(value: bool) -> str:
    return "true" if value else "false"


@dataclass
class Flow:
    """What reaches the next layer: a sequence or not, masked or not; and model-wide facts."""

    sequence: bool
    masked: bool
    fixed_time: bool
    stateful_model: bool


@st.composite
def _keyword(draw, name: str, values: st.SearchStrategy[str], default: str | None = None) -> list[str]:
    """`name=value` or nothing (the default); sometimes the default written out."""
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return []
    if choice == 1 and default is not None:
        return [f"{name}={default}"]
    return [f"{name}={draw(values)}"]


def _bools() -> st.SearchStrategy[str]:
    return st.booleans().map(_bool)


def _activations() -> st.SearchStrategy[str]:
    return st.sampled_from(ACTIVATIONS)


@st.composite
def _call(draw, kind: str, positional: list[tuple[str, str]], keywords: list[str]) -> str:
    """Render `kind(...)`: some positional arguments may be given as keywords; keywords shuffled."""
    args: list[str] = []
    moved: list[str] = []
    for name, value in positional:
        if moved or draw(st.integers(0, 4)) == 4:
            moved.append(f"{name}={value}")
        else:
            args.append(value)
    rest = draw(st.permutations(moved + keywords)) if len(moved + keywords) > 1 else moved + keywords
    args += rest
    trailing = "," if args and draw(st.integers(0, 9)) == 9 else ""
    return f"{kind}({', '.join(args)}{trailing})"


@st.composite
def _recurrent(draw, kind: str, flow: Flow, *, sequences: bool, last: bool, wrapped: bool) -> str:
    units = str(draw(st.integers(1, 6)))
    kw: list[str] = []
    kw += draw(_keyword("activation", _activations(), "tanh"))
    if kind != "simple_rnn":
        kw += draw(_keyword("recurrent_activation", _activations(), "sigmoid"))
    kw += draw(_keyword("use_bias", _bools(), "true"))
    kw += draw(_keyword("dropout", st.sampled_from(RATES), "0.0"))
    kw += draw(_keyword("recurrent_dropout", st.sampled_from(RATES), "0.0"))
    if sequences:
        kw.append("return_sequences=true")
    else:
        kw += draw(_keyword("return_sequences", st.just("false"), "false"))
    returns_state = []
    if last:
        returns_state = draw(_keyword("return_state", _bools(), "false"))
        kw += returns_state
    if not wrapped:
        kw += draw(_keyword("go_backwards", _bools(), "false"))
    # Keras 3's Bidirectional cannot return the states of a stateful layer.
    if flow.stateful_model and not (wrapped and "return_state=true" in returns_state):
        kw += draw(_keyword("stateful", _bools(), "false"))
    # Keras 3's unrolled Bidirectional zeroes the backward half at the wrong masked timesteps.
    if flow.fixed_time and not (wrapped and flow.masked and sequences):
        kw += draw(_keyword("unroll", _bools(), "false"))
    if kind == "lstm":
        kw += draw(_keyword("unit_forget_bias", _bools(), "true"))
    if kind == "gru":
        kw += draw(_keyword("reset_after", _bools(), "true"))
    return draw(_call(kind, [("units", units)], kw))


@st.composite
def _recurrent_layer(draw, flow: Flow, *, sequences: bool, last: bool) -> str:
    kind = draw(st.sampled_from(RECURRENT))
    if not draw(st.booleans()):
        return draw(_recurrent(kind, flow, sequences=sequences, last=last, wrapped=False))
    inner = draw(_recurrent(kind, flow, sequences=sequences, last=last, wrapped=True))
    if last and draw(st.integers(0, 2)) == 2:
        kw = ["merge_mode=none"]
    else:
        kw = draw(_keyword("merge_mode", st.sampled_from([m for m in MERGE_MODES if m != "none"]), "concat"))
    return draw(_call("bidirectional", [("layer", inner)], kw))


@st.composite
def _simple_layer(draw, kind: str) -> str:
    if kind == "masking":
        return draw(_call("masking", [], draw(_keyword("mask_value", st.sampled_from(MASK_VALUES), "0.0"))))
    if kind == "dense":
        kw = draw(_keyword("activation", _activations(), "linear")) + draw(
            _keyword("use_bias", _bools(), "true")
        )
        return draw(_call("dense", [("units", str(draw(st.integers(1, 6))))], kw))
    if kind == "dropout":
        return draw(_call("dropout", [("rate", draw(st.sampled_from(RATES)))], []))
    if kind == "layer_normalization":
        # center=true with scale=false has no PyTorch form (the target refuses it by name).
        scale = draw(st.booleans())
        kw = draw(_keyword("epsilon", st.sampled_from(["0.001", "1e-5", "0.5", "2"]), "0.001"))
        kw += draw(_keyword("center", _bools(), "true")) if scale else ["center=false"]
        kw += ["scale=false"] if not scale else draw(_keyword("scale", st.just("true"), "true"))
        return draw(_call("layer_normalization", [], kw))
    if kind == "batch_normalization":
        kw = draw(_keyword("epsilon", st.sampled_from(["0.001", "1e-5", "0.5"]), "0.001"))
        kw += draw(_keyword("momentum", st.sampled_from(["0.99", "0.5", "0.0"]), "0.99"))
        kw += draw(_keyword("center", _bools(), "true")) + draw(_keyword("scale", _bools(), "true"))
        return draw(_call("batch_normalization", [], kw))
    if kind == "activation":
        return draw(_call("activation", [("activation", draw(_activations()))], []))
    if kind == "relu":
        kw = draw(_keyword("max_value", st.sampled_from(["6.0", "1", "0.5", "0"]), None))
        kw += draw(_keyword("negative_slope", st.sampled_from(["0.0", "0.1", "1.5"]), "0.0"))
        kw += draw(_keyword("threshold", st.sampled_from(["0.0", "0.5", "2"]), "0.0"))
        return draw(_call("relu", [], kw))
    if kind == "leaky_relu":
        slope = draw(st.sampled_from(["0.3", "0.0", "0.01", "2"]))
        return (
            draw(_call("leaky_relu", [("negative_slope", slope)], []))
            if draw(st.booleans())
            else "leaky_relu()"
        )
    if kind == "time_distributed":
        return f"time_distributed({draw(_simple_layer('dense'))})"
    if kind == "spatial_dropout1d":
        return draw(_call("spatial_dropout1d", [("rate", draw(st.sampled_from(RATES)))], []))
    if kind == "gaussian_noise":
        return draw(_call("gaussian_noise", [("stddev", draw(st.sampled_from(["0.0", "0.1", "1"])))], []))
    return f"{kind}()"


@st.composite
def _windowed(draw, kind: str, fixed_time: bool) -> str:
    """A convolution or pooling over time; on a fixed time axis, a padding that keeps a step."""
    paddings = ["same", "causal"] if kind == "conv1d" else ["same"]
    padding = draw(st.sampled_from(paddings if fixed_time else [*paddings, "valid"]))
    size = str(draw(st.integers(1, 4)))
    stride = draw(st.integers(1, 3))
    kw = [f"padding={padding}"] if padding != "valid" or draw(st.booleans()) else []
    if kind == "conv1d":
        dilation = draw(st.integers(1, 3)) if stride == 1 else 1
        kw += draw(_keyword("strides", st.just(str(stride)), "1"))
        kw += draw(_keyword("dilation_rate", st.just(str(dilation)), "1"))
        kw += draw(_keyword("activation", _activations(), "linear")) + draw(
            _keyword("use_bias", _bools(), "true")
        )
        return draw(_call("conv1d", [("filters", str(draw(st.integers(1, 5)))), ("kernel_size", size)], kw))
    kw += draw(_keyword("strides", st.just(str(stride)), None))
    return draw(_call(kind, [("pool_size", size)], kw))


@st.composite
def _structure(draw, sequence: bool) -> list[tuple[str, bool]]:
    """The layer kinds after the input (and embedding), each with whether it returns a sequence."""
    kinds: list[tuple[str, bool]] = []
    if sequence:
        depth = draw(st.sampled_from([0, 1, 1, 2, 2, 3, 4]))
        for index in range(depth):
            kinds += [
                (k, True) for k in draw(st.lists(st.sampled_from(SEQUENCE_EXTRAS + WINDOWED), max_size=1))
            ]
            sequences = True if index < depth - 1 else draw(st.booleans())
            kinds.append(("recurrent", sequences))
        if not kinds or kinds[-1][1]:
            if draw(st.integers(0, 2)) == 2:
                kinds.append((draw(st.sampled_from(SEQUENCE_EXTRAS)), True))
            end = draw(
                st.sampled_from(
                    [None, None, "global_average_pooling", "attention_pooling", "global_max_pooling"]
                )
            )
            if end:
                kinds.append((end, False))
    if draw(st.booleans()):
        kinds += [(k, False) for k in draw(st.lists(st.sampled_from(VECTOR_EXTRAS), min_size=1, max_size=2))]
    return kinds


@st.composite
def specs(draw) -> str:
    """One random valid model, rendered as `.rnn` text."""
    form = draw(st.sampled_from(["int_var", "int_fixed", "float_var", "float_fixed", "float_vector"]))
    time = draw(st.integers(1, 6))
    features = draw(st.integers(1, 6))
    input_name = draw(st.sampled_from(INPUT_NAMES))
    if form.startswith("int"):
        dtype = draw(st.sampled_from(["int32", "int64"]))
        dims = "*" if form == "int_var" else str(time)
    else:
        dtype = "float32"
        dims = {"float_var": f"*, {features}", "float_fixed": f"{time}, {features}"}.get(form, str(features))
    sequence = form != "float_vector"
    stateful = sequence and draw(st.integers(0, 2)) == 2
    flow = Flow(sequence, False, form in ("int_fixed", "float_fixed"), stateful)

    lines: list[str] = []
    if form.startswith("int"):
        mask_zero = draw(st.booleans())
        kw = ["mask_zero=true"] if mask_zero else draw(_keyword("mask_zero", st.just("false"), "false"))
        vocab, width = str(draw(st.integers(2, 20))), str(draw(st.integers(1, 6)))
        lines.append(draw(_call("embedding", [("input_dim", vocab), ("output_dim", width)], kw)))
        flow.masked = mask_zero
    kinds = draw(_structure(sequence))
    if not kinds and not lines:
        kinds = [("dense", sequence)]
    for index, (kind, sequences) in enumerate(kinds):
        last = index == len(kinds) - 1
        if kind == "recurrent":
            lines.append(draw(_recurrent_layer(flow, sequences=sequences, last=last)))
            flow.masked = flow.masked and sequences
            flow.sequence = sequences
        elif kind in WINDOWED:
            lines.append(draw(_windowed(kind, flow.fixed_time)))
            flow.masked = False  # Keras drops the mask there
        else:
            lines.append(draw(_simple_layer(kind)))
            if kind == "masking":
                flow.masked = True
            elif kind in ("global_average_pooling", "attention_pooling", "global_max_pooling"):
                flow.masked = flow.sequence = False

    # Aliases: unique, never the input's name (the checker rejects both, and auto names are
    # `kind_N`, which no pool name looks like).
    taken = {input_name}
    for index, line in enumerate(lines):
        if draw(st.integers(0, 4)) == 4:
            alias = draw(st.sampled_from([name for name in LAYER_NAMES if name not in taken]))
            taken.add(alias)
            lines[index] = f"{line} as {alias}"

    if flow.stateful_model or draw(st.integers(0, 9)) == 9:
        header = f"({_batch_size(draw(st.integers(1, 4)), draw(st.booleans()))})"
    else:
        header = ""
    comment = "    # drawn by tests/strategies.py\n" if draw(st.integers(0, 9)) == 9 else ""
    name = draw(st.sampled_from(MODEL_NAMES))
    body = "".join(f"    {line}\n" for line in lines)
    return f"model {name}{header} {{\n{comment}    input {input_name}: {dtype}[{dims}]\n{body}}}\n"


def _batch_size(size: int, trailing_comma: bool) -> str:
    return f"batch_size={size}{',' if trailing_comma else ''}"


# Minimal specs of compiler bugs found by fuzzing and probing, each checked by
# tests/test_fuzz_equivalence.py::test_regression_spec at verify's default tolerance. Each must
# verify; until the compiler is fixed, its test fails. Never mark them xfail.
REGRESSION_SPECS: dict[str, str] = {
    # A stateful layer `enc` kept its state in the buffer `self.enc_h`, so a layer named `enc_h`
    # broke the module (KeyError: "attribute 'enc_h' already exists"). Buffers are now `self._enc_h`.
    "stateful_buffer_name_clash": """\
model m(batch_size=2) {
    input x: float32[*, 3]
    gru(2, stateful=true, return_sequences=true) as enc
    dense(2) as enc_h
}
""",
}
