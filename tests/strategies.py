"""Hypothesis strategies for random *valid* `.rnn` specs, as text: `specs()` over the whole v0
language (stacks) and v1's one-input layers, `graph_specs()` over the v1 graph forms.

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


# A recurrence through log_softmax (unbounded below) is chaotic: over verify's 260-step batch a
# perturbation of 1e-13 in the input moves Keras's own float64 output by up to 2.5e-4 relative (and
# some states reach 1e65), so no two implementations can be compared there, in any precision
# (measured 2026-11-28 on bidirectional(gru(2, activation=log_softmax)), six seeds). The layer
# accepts it; the fuzzer does not draw it inside a recurrence. Everywhere else it is drawn.
CHAOTIC_IN_A_RECURRENCE = ("log_softmax",)


def _recurrent_activations() -> st.SearchStrategy[str]:
    return st.sampled_from([a for a in ACTIVATIONS if a not in CHAOTIC_IN_A_RECURRENCE])


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
    kw += draw(_keyword("activation", _recurrent_activations(), "tanh"))
    if kind != "simple_rnn":
        kw += draw(_keyword("recurrent_activation", _recurrent_activations(), "sigmoid"))
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


# --- graphs (v1) ------------------------------------------------------------------------------

# Value names, some of them the generated programs' own locals or module names (`x`, `mask`,
# `last`, `h_n`, `torch`, `self`, ...), which the targets must keep apart.
VALUE_NAMES = tuple("x y h c mask last h_n c_n rnn torch keras nn F self enc dec out a b v w".split())
MERGES = ("add", "subtract", "multiply", "average", "maximum", "minimum")


@dataclass
class Value:
    """A value a graph statement may take: a sequence (its time class) or a vector, its width."""

    name: str
    width: int
    time: str | None  # None: a vector; "T": the inputs' time axis; "T+..": concatenated along time
    masked: bool


@st.composite
def graph_specs(draw) -> str:
    """One random valid graph: 1-3 inputs (ids with an embedding, features, a vector, a bool
    mask), then statements drawn from the graph forms: recurrent layers (bidirectional or not,
    states unpacked, explicit masks, an encoder's states seeding a decoder), dense layers, every
    merge on values of one shape, concatenate along features and along time, pooling, a layer
    applied again by its name; then `output` with 1-3 values."""
    lines: list[str] = []
    values: list[Value] = []
    names = iter(draw(st.permutations(VALUE_NAMES)))
    counter = iter(range(1000))
    width = draw(st.integers(1, 4))  # one width for most values, so that merges meet often

    def fresh() -> str:
        return (
            f"{next(names, 'v')}{next(counter)}" if draw(st.booleans()) else next(names, f"v{next(counter)}")
        )

    used: set[str] = set()

    def name_of() -> str:
        while True:
            candidate = fresh()
            if candidate not in used:
                used.add(candidate)
                return candidate

    inputs = iter(draw(st.permutations(INPUT_NAMES)))

    def input_name() -> str:  # the checker keeps inputs off the programs' own names
        name = next(inputs)
        while name in used:
            name = next(inputs)
        used.add(name)
        return name

    masks: list[str] = []
    for _ in range(draw(st.integers(1, 2))):
        form = draw(st.sampled_from(["ids", "features"]))
        inp = input_name()
        if form == "ids":
            lines.append(f"input {inp}: {draw(st.sampled_from(['int32', 'int64']))}[*]")
            mask_zero = draw(st.booleans())
            value = name_of()
            zero = ", mask_zero=true" if mask_zero else ""
            lines.append(f"{value} = embedding({draw(st.integers(2, 12))}, {width}{zero})({inp})")
            values.append(Value(value, width, "T", mask_zero))
        else:
            lines.append(f"input {inp}: float32[*, {width}]")
            if draw(st.booleans()):
                value = name_of()
                lines.append(f"{value} = masking(mask_value={draw(st.sampled_from(MASK_VALUES))})({inp})")
                values.append(Value(value, width, "T", True))
            else:
                values.append(Value(inp, width, "T", False))
    if draw(st.booleans()):
        vec = input_name()
        lines.append(f"input {vec}: float32[{width}]")
        values.append(Value(vec, width, None, False))
    if draw(st.booleans()):
        mask = input_name()
        lines.append(f"input {mask}: bool[*]")
        masks.append(mask)
    layers: dict[str, tuple[str, int, bool]] = {}  # shareable layer name -> (kind, input width, sequence in)

    for _ in range(draw(st.integers(1, 5))):
        step = draw(st.sampled_from(["recurrent", "seq2seq", "dense", "merge", "concat", "pool", "again"]))
        seqs = [v for v in values if v.time == "T"]
        if step == "recurrent" and seqs:
            src = draw(st.sampled_from(seqs))
            kind = draw(st.sampled_from(RECURRENT))
            units = draw(st.sampled_from([width, width, draw(st.integers(1, 4))]))
            sequences, states = draw(st.booleans()), draw(st.booleans())
            # not tanh: the stepped kernels (a `Keras*` module), with the same initial-state and mask paths
            activation = draw(st.sampled_from(["", "", ", activation=sigmoid", ", activation=relu"]))
            call = f"{kind}({units}{activation}{', return_sequences=true' if sequences else ''}"
            call += f"{', return_state=true' if states else ''})"
            bidi = draw(st.booleans())
            count = (2 if kind == "lstm" else 1) * (2 if bidi else 1)
            if bidi:
                call = f"bidirectional({call}{', merge_mode=sum' if draw(st.booleans()) else ''})"
            extra = f", mask={draw(st.sampled_from(masks))}" if masks and draw(st.booleans()) else ""
            layer = f"l{next(counter)}"
            out = name_of()
            targets = [out] + [
                name_of() if draw(st.booleans()) else "_" for _ in range(count if states else 0)
            ]
            lines.append(f"{', '.join(targets)} = {call}({src.name}{extra}) as {layer}")
            out_width = units * (2 if bidi and "merge_mode=sum" not in call else 1)
            values.append(
                Value(out, out_width, "T" if sequences else None, sequences and (src.masked or bool(extra)))
            )
            values += [Value(t, units, None, False) for t in targets[1:] if t != "_"]
            layers[layer] = ("recurrent", src.width, True)
        elif step == "seq2seq" and seqs:
            kind = draw(st.sampled_from(RECURRENT))
            units = draw(st.integers(1, 4))
            states = [name_of() for _ in range(2 if kind == "lstm" else 1)]
            lines.append(
                f"_, {', '.join(states)} = {kind}({units}, return_state=true)({draw(st.sampled_from(seqs)).name})"
            )
            src = draw(st.sampled_from(seqs))
            out = name_of()
            lines.append(
                f"{out} = {kind}({units}, return_sequences=true)({src.name}, initial_state=[{', '.join(states)}])"
            )
            values.append(Value(out, units, "T", src.masked))
        elif step == "dense":
            src = draw(st.sampled_from(values))
            layer, out = f"d{next(counter)}", name_of()
            units = draw(st.sampled_from([width, draw(st.integers(1, 4))]))
            lines.append(
                f"{out} = dense({units}, activation={draw(st.sampled_from(['tanh', 'linear', 'relu']))})({src.name}) as {layer}"
            )
            values.append(Value(out, units, src.time, src.masked))
            layers[layer] = ("dense", src.width, src.time is not None)
        elif step in ("merge", "concat"):
            shape = draw(st.sampled_from(values))
            same = [v for v in values if v.width == shape.width and v.time == shape.time]
            picked = draw(st.lists(st.sampled_from(same), min_size=2, max_size=3))
            kind = "concatenate" if step == "concat" else draw(st.sampled_from(MERGES))
            if kind == "subtract":
                picked = picked[:2]
            out = name_of()
            along_time = kind == "concatenate" and shape.time is not None and draw(st.booleans())
            args = "axis=1" if along_time else ""
            lines.append(f"{out} = {kind}({args})({', '.join(v.name for v in picked)})")
            if kind == "concatenate":
                time = ("T+" * len(picked)) if along_time else shape.time
                out_width = shape.width if along_time else shape.width * len(picked)
                masked = any(v.masked for v in picked) and shape.time is not None
            else:
                time, out_width, masked = shape.time, shape.width, all(v.masked for v in picked)
            values.append(Value(out, out_width, time, masked))
        elif step == "pool":
            timed = [v for v in values if v.time is not None]
            if timed:
                src = draw(st.sampled_from(timed))
                out = name_of()
                lines.append(f"{out} = global_average_pooling()({src.name})")
                values.append(Value(out, src.width, None, False))
        elif step == "again" and layers:
            layer = draw(st.sampled_from(sorted(layers)))
            kind, in_width, sequence = layers[layer]
            fits = [
                v for v in values if v.width == in_width and (v.time == "T" if sequence else v.time is None)
            ]
            if kind == "dense":
                fits = [v for v in values if v.width == in_width and (v.time is not None) == sequence]
            if fits:
                src = draw(st.sampled_from(fits))
                line = next(line for line in lines if line.endswith(f" as {layer}"))
                first = line.split(" = ")[0].split(", ")
                out = [name_of() if t != "_" else "_" for t in first]
                lines.append(f"{', '.join(out)} = {layer}({src.name})")
                model_line = line.split(" = ", 1)[1]
                sequences = "return_sequences=true" in model_line
                values.append(
                    Value(
                        out[0],
                        values[[v.name for v in values].index(first[0])].width,
                        src.time if kind == "dense" else ("T" if sequences else None),
                        src.masked and (kind == "dense" or sequences),
                    )
                )
                values += [
                    Value(t, values[[v.name for v in values].index(f)].width, None, False)
                    for t, f in zip(out[1:], first[1:])
                    if t != "_"
                ]
    if not any(" = " in line for line in lines):  # at least one layer
        out = name_of()
        lines.append(f"{out} = dense({width})({values[0].name})")
        values.append(Value(out, width, values[0].time, values[0].masked))
    produced = [v for v in values if not any(line.startswith(f"input {v.name}:") for line in lines)] or values
    outputs = draw(st.lists(st.sampled_from(produced), min_size=1, max_size=3, unique_by=lambda v: v.name))
    lines.append(f"output {', '.join(v.name for v in outputs)}")
    body = "".join(f"    {line}\n" for line in lines)
    return f"model {draw(st.sampled_from(MODEL_NAMES))} {{\n{body}}}\n"
