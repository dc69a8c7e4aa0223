"""IR -> context for templates/pytorch.py.j2.

Torch's fused nn.LSTM / nn.GRU / nn.RNN are used wherever they compute Keras's function; a layer
they cannot express (an activation torch's kernels lack, GRU `reset_after=false`) becomes a
`Keras*` module stepped in Python with the same parameter names and layouts. Keras's mask
semantics are reproduced around either kind by `keras_rnn`: only each row's unmasked timesteps
are run, then the outputs are put back in place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from rnnspec import runtime
from rnnspec.errors import Unsupported
from rnnspec.ir import Layer, Model
from rnnspec.kinds import kind_of
from rnnspec.kinds.conv import pair
from rnnspec.names import PYTORCH_FORWARD_PARAMETERS, PYTORCH_MODULE_NAMES, camel_case
from rnnspec.targets import torch_layers as T
from rnnspec.targets.common import (
    Assign,
    Expr,
    PyCall,
    PyChoice,
    PyTuple,
    Statement,
    Stepping,
    Value,
    import_lines,
    py_literal,
    render,
    render_statements,
)
from rnnspec.targets.pytorch_graph import GraphForward, relayout, return_lines, signature
from rnnspec.text import docstring_text

Pair = tuple[int, int]  # a 2-D window's (height, width)

TORCH_ACTIVATIONS = {
    "linear": "{}",
    "tanh": "torch.tanh({})",
    "sigmoid": "torch.sigmoid({})",
    "hard_sigmoid": "F.hardsigmoid({})",  # Keras 3: relu6(x + 3) / 6, the same function
    "relu": "torch.relu({})",
    "elu": "F.elu({})",
    "selu": "F.selu({})",
    "gelu": "F.gelu({})",  # Keras's default is the exact erf form, as is torch's
    "softplus": "F.softplus({})",
    "softsign": "F.softsign({})",
    "swish": "F.silu({})",
    "softmax": "torch.softmax({}, dim=-1)",
    "exponential": "torch.exp({})",
    **T.NEW_ACTIVATIONS,
}

# The same activations as callables, for the stepped modules.
TORCH_CALLABLES = {
    "linear": "nn.Identity()",
    "tanh": "torch.tanh",
    "sigmoid": "torch.sigmoid",
    "hard_sigmoid": "F.hardsigmoid",
    "relu": "torch.relu",
    "elu": "F.elu",
    "selu": "F.selu",
    "gelu": "F.gelu",
    "softplus": "F.softplus",
    "softsign": "F.softsign",
    "swish": "F.silu",
    "softmax": "nn.Softmax(dim=-1)",
    "exponential": "torch.exp",
    "leaky_relu": "nn.LeakyReLU(0.2)",
    "relu6": "F.relu6",
    "silu": "F.silu",
    "mish": "F.mish",
    "log_softmax": "nn.LogSoftmax(dim=-1)",
}

# torch's fused modules, and the runtime's subclasses of them the programs build.
TORCH_FUSED = {"simple_rnn": "nn.RNN", "lstm": "nn.LSTM", "gru": "nn.GRU"}
FUSED = {"simple_rnn": "FusedRNN", "lstm": "FusedLSTM", "gru": "FusedGRU"}
# The same with `masked`, for a layer some call runs under a mask.
MASKED = {"simple_rnn": "MaskedRNN", "lstm": "MaskedLSTM", "gru": "MaskedGRU"}
DROPOUTS = ("dropout", "recurrent_dropout")
STEPPED = {"simple_rnn": "KerasSimpleRNN", "lstm": "KerasLSTM", "gru": "KerasGRU"}
TOOL = "the PyTorch target"


def fused_kernel_reason(rec: Layer) -> str | None:
    """Why torch's fused kernel cannot compute this Keras layer, or None when it can."""
    act = rec.attrs["activation"]
    if rec.kind == "simple_rnn":
        if act not in ("tanh", "relu"):
            return f"nn.RNN supports only tanh and relu, not activation={act}"
        return None
    if act != "tanh":
        return f"nn.{rec.kind.upper()} fixes activation=tanh, not {act}"
    if rec.attrs["recurrent_activation"] != "sigmoid":
        return f"nn.{rec.kind.upper()} fixes recurrent_activation=sigmoid, not {rec.attrs['recurrent_activation']}"
    if rec.kind == "gru" and not rec.attrs["reset_after"]:
        return "nn.GRU applies the reset gate after the recurrent matmul (reset_after=true only)"
    return None


def activation_args(rec: Layer) -> list[str]:
    """The activations of a stepped module, as constructor arguments."""
    args = [f"activation={TORCH_CALLABLES[rec.attrs['activation']]}"]
    if rec.kind != "simple_rnn":
        args.append(f"recurrent_activation={TORCH_CALLABLES[rec.attrs['recurrent_activation']]}")
    return args


def state_buffer_name(layer: Layer, state: str) -> str:
    """The buffer carrying a stateful layer's state: `_` first, so no layer name can clash with it."""
    return f"_{layer.name}_{state}"


def state_buffer(layer: Layer, state: str) -> str:
    return f"self.{state_buffer_name(layer, state)}"


# Every name the program binds at module level (declared in rnnspec/names.py, which the checker asks).
MODULE_NAMES = PYTORCH_MODULE_NAMES
FORWARD_PARAMETERS = PYTORCH_FORWARD_PARAMETERS


def class_name(model: Model) -> str:
    return camel_case(model.name)


@dataclass
class Names:
    """Local variable names of forward(), kept clear of the input's name."""

    hidden: str
    mask: str
    last: str
    h_n: str
    c_n: str
    rnn: str  # a recurrent layer stepped for train-mode dropout

    @classmethod
    def avoiding(cls, taken: str) -> Names:
        def pick(name: str) -> str:
            return f"{name}_" if name == taken else name

        return cls(
            hidden="y" if taken == "x" else "x",
            mask=pick("mask"),
            last=pick("last"),
            h_n=pick("h_n"),
            c_n=pick("c_n"),
            rnn=pick("rnn"),
        )


def _merge(mode: str, a: str, b: str) -> str:
    if mode == "concat":
        return f"torch.cat([{a}, {b}], dim=-1)"
    if mode == "sum":
        return f"{a} + {b}"
    if mode == "mul":
        return f"{a} * {b}"
    if mode == "ave":
        return f"({a} + {b}) / 2"
    raise AssertionError(mode)


class _Builder:
    """Builds the module's statements: `__init__`, `reset_parameters`, and `forward`.

    `forward` walks the model's values by name: `values` maps each IR value to the expression that
    holds it, `masks` to the expression of its mask (None: unmasked). Statements stay objects
    (targets/common.py) until `context` renders them, so that inlining, packing and imports are
    decided on structure, not on text.
    """

    def __init__(self, model: Model) -> None:
        self.model = model
        (self.input,) = model.inputs
        self.names = Names.avoiding(self.input.name)
        self.init: list[Statement] = []
        self.reset: list[Statement] = []  # reset_parameters(): Keras's initialisers
        self.buffers: list[Statement] = []
        self.forward: list[Statement] = []
        self.values: dict[str, str] = {self.input.name: self.input.name}
        self.masks: dict[str, str | None] = {self.input.name: None}
        self.stepped: set[str] = set()
        self.fused: dict[str, str] = {}  # fused recurrent layers by name: their kind
        self.masked: set[str] = set()  # the recurrent layers some call runs under a mask
        self.helpers: set[str] = set()
        self.imports: set[str] = set()  # module-level names beyond torch and nn: "F"
        self.features = 0  # width of the current tensor's last axis
        self.following: Layer | None = None  # the layer after the one being emitted
        self.rest: list[Layer] = []  # every layer after the one being emitted
        self.packed_input = False  # the current tensor is the previous layer's packed output
        self.outs: list[str] = []  # the expressions of the layer just emitted, one per output
        self.initial_state: str | None = None  # a graph's `initial_state=[...]` for the next layer

    def build(self) -> None:
        layers = self.model.layers
        for index, layer in enumerate(layers):
            source = self.model.values[layer.inputs[0]]
            self.features = source.shape[-1] if source.dtype == "float32" else 0
            self.following = layers[index + 1] if index + 1 < len(layers) else None
            self.rest = layers[index + 1 :]
            self.outs = [self.names.hidden]
            masked = self.layer(layer, self.values[source.name], self.masks[source.name] is not None)
            for name, expression in zip(layer.outputs, self.outs):
                self.values[name] = expression
                self.masks[name] = None
            self.masks[layer.outputs[0]] = self.names.mask if masked else None

    @property
    def returns(self) -> list[str]:
        return [self.values[name] for name in self.model.outputs]

    def mask_is_read(self) -> bool:
        """Whether a later layer reads the mask born here (Keras computes it regardless; a program
        that returns it unread would only hold a dead local)."""
        for layer in self.rest:
            kind = kind_of(layer, TOOL)
            if kind.reads_mask:
                return True
            if not kind.keeps_mask(layer):
                return False
        return False

    def activation(self, name: str, argument: str | PyCall) -> str | PyCall:
        """The activation applied to `argument`, as a call that `layout` can wrap."""
        text = TORCH_ACTIVATIONS[name]
        if text.startswith("F."):
            self.imports.add("F")
        if text == "{}":
            return argument
        function, rest = text.split("(", 1)  # "torch.softmax", "{}, dim=-1)"
        return PyCall(function, (argument, *rest[: -len(")")].split(", ")[1:]))

    def activation_args(self, rec: Layer) -> list[str]:
        args = activation_args(rec)
        if any(arg.split("=", 1)[1].startswith("F.") for arg in args):
            self.imports.add("F")
        return args

    def assign(self, targets: str | tuple[str, ...], value: Value) -> None:
        """`targets = value` in forward. The one-line `hidden = EXPR` may be inlined by the next layer."""
        targets = (targets,) if isinstance(targets, str) else targets
        statement = Assign(targets, value)
        if targets == (self.names.hidden,) and statement.one_line(8) and not isinstance(value, PyChoice):
            flat = value if isinstance(value, str) else value.flat() if isinstance(value, PyCall) else None
            if flat is not None:
                statement = Assign(targets, value, inline=flat)
        self.forward.append(statement)

    def chains_packed(self, layer: Layer) -> bool:
        """Whether this masked layer's outputs can go to the next layer still packed.

        Exact when both run on fused kernels under the same mask: the next layer reads only the
        unmasked steps, in order, which is what the packed outputs hold. Not after go_backwards
        (Keras passes the unflipped mask on with the reversed outputs), nor where the outputs are
        merged or split first.
        """
        rec, nxt = layer.recurrent, self.following
        if rec is None or nxt is None or nxt.recurrent is None:
            return False
        if fused_kernel_reason(rec) or fused_kernel_reason(nxt.recurrent):
            return False
        if rec.attrs["go_backwards"] or nxt.recurrent.attrs["go_backwards"]:
            return False
        return layer.inner is None or layer.attrs["merge_mode"] == "concat"

    def take_last_assignment(self) -> str | PyCall | None:
        """Remove the last statement if it may be inlined (`x = EXPR` that only feeds the next
        layer); return EXPR."""
        if self.forward and isinstance(self.forward[-1], Assign) and self.forward[-1].inline is not None:
            return self.forward.pop().inline
        return None

    def layer(self, layer: Layer, src: str, has_mask: bool) -> bool:
        """Emit one layer; return whether a mask flows out of it."""
        if layer.extern is not None:
            return self.extern(layer, src, has_mask)
        emitter = EMITTERS.get(layer.kind)
        if emitter is None:
            raise Unsupported.of(layer.kind, TOOL, layer.pos)
        return emitter(self, layer, src, has_mask)

    def extern(self, layer: Layer, src: str, has_mask: bool) -> bool:
        """A user's module, wired as Keras wires its layer: `mask=` into forward when a mask flows
        in, and for `mask = produce` the new mask from its `compute_mask(x, mask)`."""
        ext = layer.extern
        assert ext is not None
        x, mask = self.names.hidden, self.names.mask
        attr = f"self.{layer.name}"
        args = [f"input_size={self.features}"] if ext.pytorch_input_size else []
        args += [f"{key}={py_literal(value)}" for key, value in layer.attrs.items()]
        self.module(layer, ext.pytorch.name, args)
        if ext.mask != "produce" or not self.mask_is_read():
            # (A produced mask no later layer reads is not computed: it would be a dead local.)
            self.assign(x, PyCall(attr, (src, f"mask={mask}") if has_mask else (src,)))
            return has_mask and ext.mask == "keep"
        if not has_mask:
            self.assign(mask, PyCall(f"{attr}.compute_mask", (src, "None")))
            self.assign(x, PyCall(attr, (src,)))
            return True
        # Both from the incoming mask, as Keras computes them.
        call = f"{attr}({src}, mask={mask})"
        self.assign((x, mask), PyTuple((call, f"{attr}.compute_mask({src}, {mask})")))
        return True

    def module(self, layer: Layer, cls: str, args: list[str]) -> None:
        self.init.append(Assign((f"self.{layer.name}",), PyCall(cls, tuple(args))))

    def initialise(self, call: str | PyCall) -> None:
        self.reset.append(Expr(call))

    def recurrent(self, layer: Layer, src: str, has_mask: bool) -> None:
        rec = layer.recurrent
        assert rec is not None
        x, mask, last = self.names.hidden, self.names.mask, self.names.last
        bidirectional = layer.inner is not None
        units = rec.attrs["units"]
        reason = fused_kernel_reason(rec)
        args = [str(self.features), str(units)]
        if reason is None:
            cls = FUSED[rec.kind]  # (MASKED[kind] where a call is masked: `fused_classes`)
            self.fused[layer.name] = rec.kind
            if rec.kind == "simple_rnn":
                args.append(f"nonlinearity={py_literal(rec.attrs['activation'])}")
        else:
            cls = STEPPED[rec.kind]
            self.stepped.add(rec.kind)
            args += self.activation_args(rec)
            if rec.kind == "gru" and not rec.attrs["reset_after"]:
                args.append("reset_after=False")
        drops = [f"{key}={py_literal(rec.attrs[key])}" for key in DROPOUTS if rec.attrs[key] > 0]
        if reason is not None:
            args += drops
        if not rec.attrs["use_bias"]:
            args.append("bias=False")
        if reason is None:
            args.append("batch_first=True")
        if bidirectional:
            args.append("bidirectional=True")
        self.module(layer, cls, args)
        init = [f"self.{layer.name}"]
        if rec.kind == "lstm" and rec.attrs["unit_forget_bias"] and rec.attrs["use_bias"]:
            init.append("unit_forget_bias=True")
        if rec.kind == "gru" and rec.attrs["reset_after"] and rec.attrs["use_bias"]:
            init.append("recurrent_bias=True")
        self.initialise(PyCall("init_keras_recurrent", tuple(init)))
        # Keras's dropout masks need the per-timestep loop; in eval mode the fused kernel runs.
        rnn = f"self.{layer.name}"
        stepping: list[Statement] = []
        if reason is None and drops:
            self.stepped.add(rec.kind)
            rnn = self.names.rnn
            call = PyCall(
                f"{STEPPED[rec.kind]}.stepping", (f"self.{layer.name}", *self.activation_args(rec), *drops)
            )
            stepping = [Stepping(rnn, f"self.{layer.name}", call)]

        state_names = ["h", "c"] if rec.kind == "lstm" else ["h"]
        finals = [self.names.h_n, self.names.c_n][: len(state_names)]
        stateful = rec.attrs["stateful"]
        keep_states = stateful or rec.attrs["return_state"]
        buffers = [state_buffer(layer, s) for s in state_names]
        if stateful:
            directions = 2 if bidirectional else 1
            for state in state_names:
                zeros = f"torch.zeros({directions}, {self.model.batch_size}, {units})"
                name = py_literal(state_buffer_name(layer, state))
                self.buffers.append(Expr(PyCall("self.register_buffer", (name, zeros, "persistent=False"))))
        initial = (f"({', '.join(buffers)})" if len(buffers) > 1 else buffers[0]) if stateful else None
        initial = initial or self.initial_state

        seq = rec.attrs["return_sequences"]
        backwards = rec.attrs["go_backwards"]
        inp: str | PyCall = f"{src}.flip(1)" if backwards else src
        seq_out = x if seq else "_"

        def unpack(h_used: bool) -> str:
            used = [name if keep_states or (name == finals[0] and h_used) else "_" for name in finals]
            if all(name == "_" for name in used):
                return "_"
            return f"({', '.join(used)})" if len(used) > 1 else used[0]

        if has_mask:
            self.masked.add(layer.name)
            if not backwards and src == x and not self.packed_input:
                # Hand the previous layer's output straight to keras_rnn, so that no local keeps the
                # whole padded batch alive while the kernel runs on the packed copy.
                inp = self.take_last_assignment() or inp
            self.forward += stepping
            call_args: list[str | PyCall] = [
                inp,
                f"{mask}.flip(1)" if backwards else mask,
            ]
            if initial:
                call_args.append(initial)
            if not seq:
                call_args.append("sequences=False")
            chain = seq and self.chains_packed(layer)
            if bidirectional and seq and not chain:
                call_args.append("zero_masked=True")
            if chain:
                call_args.append("packed=True")
            if keep_states:
                call_args.append("states=True")
            self.packed_input = chain
            targets = (seq_out, "_" if seq else last, unpack(False))
            inlinable = not stateful and not chain and not stepping and not isinstance(inp, PyCall)
            masked = f"{rnn}.masked"
            inline = (
                PyCall(masked, tuple(call_args), "[0]") if targets == (x, "_", "_") and inlinable else None
            )
            self.forward.append(Assign(targets, PyCall(masked, tuple(call_args)), inline))
            lasts = [f"{last}[0]", f"{last}[1]"]
        else:
            call_args = [inp] + ([initial] if initial else [])
            self.forward += stepping
            call = PyCall(rnn, tuple(call_args))
            self.forward.append(Assign((seq_out, unpack(not seq)), call))
            lasts = [f"{finals[0]}[0]", f"{finals[0]}[1]"]
        if stateful:
            for buf, fin in zip(buffers, finals):
                self.assign(buf, f"{fin}.detach()")
        mode = layer.attrs.get("merge_mode") if bidirectional else None
        if not bidirectional:
            if not seq:
                self.assign(x, lasts[0])
            outs = [x]
        elif mode == "none":
            if seq:
                outs = [f"{x}[..., :{units}]", f"{x}[..., {units}:]"]
            else:
                outs = lasts
        elif seq:
            if mode != "concat":
                self.assign(x, _merge(mode, f"{x}[..., :{units}]", f"{x}[..., {units}:]"))
            outs = [x]
        else:
            self.assign(x, _merge(mode, lasts[0], lasts[1]))
            outs = [x]
        if rec.attrs["return_state"]:
            for direction in range(2 if bidirectional else 1):
                outs += [f"{fin}[{direction}]" for fin in finals]
        self.outs = outs


# --- one emitter per layer kind: (builder, layer, source expression, has_mask) -> mask flows out --

Emitter = Callable[[_Builder, Layer, str, bool], bool]
EMITTERS: dict[str, Emitter] = {}


def emits(*kinds: str) -> Callable[[Emitter], Emitter]:
    def register(emitter: Emitter) -> Emitter:
        for kind in kinds:
            EMITTERS[kind] = emitter
        return emitter

    return register


@emits("embedding")
def _embedding(b: _Builder, layer: Layer, src: str, has_mask: bool) -> bool:
    x, mask, attr = b.names.hidden, b.names.mask, f"self.{layer.name}"
    b.module(layer, "nn.Embedding", [str(layer.attrs["input_dim"]), str(layer.attrs["output_dim"])])
    b.initialise(PyCall("nn.init.uniform_", (f"{attr}.weight", "-0.05", "0.05")))
    if layer.attrs["mask_zero"] and b.mask_is_read():
        b.assign(mask, f"{src} != 0")
    b.assign(x, PyCall(attr, (src,)))
    return layer.attrs["mask_zero"]


@emits("masking")
def _masking(b: _Builder, layer: Layer, src: str, has_mask: bool) -> bool:
    x, mask = b.names.hidden, b.names.mask
    value = py_literal(layer.attrs["mask_value"])
    b.assign(mask, f"({src} != {value}).any(dim=-1)")
    if b.following is not None and b.following.recurrent is not None:
        # A recurrent layer skips the masked steps, so zeroing their features is moot.
        if src != x:
            b.assign(x, src)
    else:
        # `where`, as Keras's Masking does: a product would turn inf inputs into NaN.
        b.assign(x, f"torch.where({mask}.unsqueeze(-1), {src}, 0.0)")
    return True


@emits("dense")
def _dense(b: _Builder, layer: Layer, src: str, has_mask: bool) -> bool:
    attr = f"self.{layer.name}"
    args = [str(b.features), str(layer.attrs["units"])]
    if not layer.attrs["use_bias"]:
        args.append("bias=False")
    b.module(layer, "nn.Linear", args)
    b.initialise(PyCall("nn.init.xavier_uniform_", (f"{attr}.weight",)))
    if layer.attrs["use_bias"]:
        b.initialise(PyCall("nn.init.zeros_", (f"{attr}.bias",)))
    b.assign(b.names.hidden, b.activation(layer.attrs["activation"], PyCall(attr, (src,))))
    return has_mask


@emits("dropout")
def _dropout(b: _Builder, layer: Layer, src: str, has_mask: bool) -> bool:
    b.module(layer, "nn.Dropout", [py_literal(layer.attrs["rate"])])
    b.assign(b.names.hidden, PyCall(f"self.{layer.name}", (src,)))
    return has_mask


@emits("global_average_pooling")
def _global_average_pooling(b: _Builder, layer: Layer, src: str, has_mask: bool) -> bool:
    x, mask = b.names.hidden, b.names.mask
    if has_mask:
        b.assign(x, f"({src} * {mask}.unsqueeze(-1)).sum(dim=1) / {mask}.sum(dim=1, keepdim=True)")
    else:
        b.assign(x, f"{src}.mean(dim=1)")
    return False


@emits("attention_pooling")
def _attention_pooling(b: _Builder, layer: Layer, src: str, has_mask: bool) -> bool:
    x, mask, attr = b.names.hidden, b.names.mask, f"self.{layer.name}"
    b.helpers.add("AttentionPooling")
    b.module(layer, "AttentionPooling", [str(b.features)])
    b.initialise(PyCall("nn.init.xavier_uniform_", (f"{attr}.kernel.weight",)))
    b.assign(x, PyCall(attr, (src, mask) if has_mask else (src,)))
    return False


@emits("simple_rnn", "lstm", "gru", "bidirectional")
def _recurrent(b: _Builder, layer: Layer, src: str, has_mask: bool) -> bool:
    b.recurrent(layer, src, has_mask)
    rec = layer.recurrent
    assert rec is not None
    return has_mask and rec.attrs["return_sequences"]


@emits("layer_normalization")
def _layer_normalization(b: _Builder, layer: Layer, src: str, has_mask: bool) -> bool:
    """nn.LayerNorm: the same arithmetic (epsilon inside the root, biased variance); the mask passes."""
    center, scale = layer.attrs["center"], layer.attrs["scale"]
    if center and not scale:
        raise Unsupported.of(layer.kind, TOOL, layer.where("scale"), " with center=true and scale=false")
    args = [str(b.features), f"eps={py_literal(layer.attrs['epsilon'])}"]
    if not scale:
        args.append("elementwise_affine=False")
    elif not center:
        args.append("bias=False")
    b.module(layer, "nn.LayerNorm", args)
    b.assign(b.names.hidden, PyCall(f"self.{layer.name}", (src,)))
    return has_mask


def _uses(b: _Builder, call: PyCall) -> PyCall:
    """Note the helpers and imports one of targets/torch_layers.py's calls needs."""
    text = call.flat()
    if "F." in text:
        b.imports.add("F")
    for helper in T.HELPERS:
        if f"{helper}(" in text:
            b.helpers.add(helper)  # (what it uses in turn, the runtime adds)
    return call


@emits("activation")
def _activation_layer(b: _Builder, layer: Layer, src: str, has_mask: bool) -> bool:
    b.assign(b.names.hidden, b.activation(layer.attrs["activation"], src))
    return has_mask


@emits("relu")
def _relu(b: _Builder, layer: Layer, src: str, has_mask: bool) -> bool:
    a = layer.attrs
    b.assign(b.names.hidden, _uses(b, T.relu(src, a["max_value"], a["negative_slope"], a["threshold"])))
    return has_mask


@emits("leaky_relu")
def _leaky_relu(b: _Builder, layer: Layer, src: str, has_mask: bool) -> bool:
    b.assign(b.names.hidden, _uses(b, T.leaky_relu(src, layer.attrs["negative_slope"])))
    return has_mask


@emits("repeat_vector")
def _repeat_vector(b: _Builder, layer: Layer, src: str, has_mask: bool) -> bool:
    b.assign(b.names.hidden, T.repeat_vector(src, layer.attrs["n"]))
    return False


@emits("reshape")
def _reshape(b: _Builder, layer: Layer, src: str, has_mask: bool) -> bool:
    shape = b.model.values[layer.outputs[0]].shape
    if shape[0] is None:  # each timestep reshaped: the length stays first
        b.assign(
            b.names.hidden,
            PyCall("torch.unflatten", (PyCall("torch.flatten", (src, "2")), "2", py_literal(shape[1:]))),
        )
    else:
        b.assign(b.names.hidden, T.reshape(src, shape))
    return False


@emits("flatten")
def _flatten(b: _Builder, layer: Layer, src: str, has_mask: bool) -> bool:
    b.assign(b.names.hidden, T.flatten(src))
    return False


@emits("global_max_pooling")
def _global_max_pooling(b: _Builder, layer: Layer, src: str, has_mask: bool) -> bool:
    b.assign(b.names.hidden, T.global_max_pooling(src))
    return False


@emits("spatial_dropout1d")
def _spatial_dropout1d(b: _Builder, layer: Layer, src: str, has_mask: bool) -> bool:
    b.module(layer, "nn.Dropout1d", [py_literal(layer.attrs["rate"])])
    b.assign(b.names.hidden, T.spatial_dropout1d(f"self.{layer.name}", src))
    return has_mask


@emits("gaussian_noise")
def _gaussian_noise(b: _Builder, layer: Layer, src: str, has_mask: bool) -> bool:
    b.helpers.add("GaussianNoise")
    b.module(layer, "GaussianNoise", [py_literal(layer.attrs["stddev"])])
    b.assign(b.names.hidden, PyCall(f"self.{layer.name}", (src,)))
    return has_mask


@emits("time_distributed")
def _time_distributed(b: _Builder, layer: Layer, src: str, has_mask: bool) -> bool:
    """nn.Linear at every timestep, as Dense; masked steps computed like the others (Keras's)."""
    dense, attr = layer.attrs["layer"], f"self.{layer.name}"
    args = [str(b.features), str(dense["units"])] + ([] if dense["use_bias"] else ["bias=False"])
    b.module(layer, "nn.Linear", args)
    b.initialise(PyCall("nn.init.xavier_uniform_", (f"{attr}.weight",)))
    if dense["use_bias"]:
        b.initialise(PyCall("nn.init.zeros_", (f"{attr}.bias",)))
    b.assign(b.names.hidden, b.activation(dense["activation"], PyCall(attr, (src,))))
    return has_mask


def _conv_module(b: _Builder, layer: Layer, cls: str, kernel: str, stride: str | None) -> None:
    """A convolution's module and Keras's initialisers: glorot-uniform kernel, zero bias."""
    a, attr = layer.attrs, f"self.{layer.name}"
    args = [str(b.features), str(a["filters"]), kernel]
    if stride is not None:
        args.append(f"stride={stride}")
    if a["dilation_rate"] != 1:
        args.append(f"dilation={a['dilation_rate']}")
    if not a["use_bias"]:
        args.append("bias=False")
    b.module(layer, cls, args)
    b.initialise(PyCall("nn.init.xavier_uniform_", (f"{attr}.weight",)))
    if a["use_bias"]:
        b.initialise(PyCall("nn.init.zeros_", (f"{attr}.bias",)))


@emits("conv1d")
def _conv1d(b: _Builder, layer: Layer, src: str, has_mask: bool) -> bool:
    """torch's Conv1d, unpadded, on the input padded as TensorFlow pads it (channels first inside)."""
    a, attr = layer.attrs, f"self.{layer.name}"
    kernel, stride, dilation = a["kernel_size"], a["strides"], a["dilation_rate"]
    _conv_module(b, layer, "nn.Conv1d", str(kernel), None if stride == 1 else str(stride))
    steps = b.model.values[layer.inputs[0]].shape[0]
    pad = T.padding(a["padding"], kernel, stride, dilation, steps)
    b.assign(b.names.hidden, _uses(b, T.conv1d_input(src, pad, kernel, stride, dilation)))
    b.assign(b.names.hidden, b.activation(a["activation"], _uses(b, T.conv1d(attr, b.names.hidden))))
    return False


@emits("max_pooling1d", "average_pooling1d")
def _pooling1d(b: _Builder, layer: Layer, src: str, has_mask: bool) -> bool:
    pool = layer.attrs["pool_size"]
    stride = layer.attrs["strides"] or pool
    which = "max" if layer.kind == "max_pooling1d" else "avg"
    same = layer.attrs["padding"] == "same"
    b.assign(b.names.hidden, _uses(b, T.pool1d(which, src, pool, stride, same)))
    return False


def _padding_2d(
    layer: Layer, shape: tuple, kernel: Pair, stride: Pair, dilation: int
) -> tuple[int, ...] | None:
    """F.pad's (left, right, top, bottom) for TensorFlow's padding of [height, width], each axis on
    its own; None when it depends on a height that varies (the helper pads at run time)."""
    if layer.attrs["padding"] == "valid":
        return (0, 0, 0, 0)
    if shape[0] is None and stride[0] > 1:
        return None
    top, bottom = T.same_padding(shape[0] or 1, kernel[0], stride[0], dilation)
    left, right = T.same_padding(shape[1], kernel[1], stride[1], dilation)
    return (left, right, top, bottom)


def _size_2d(size: Pair) -> str:
    """torch's spelling of a 2-D size: one int where both axes agree, else (height, width)."""
    return str(size[0]) if size[0] == size[1] else py_literal(size)


def _padded_2d(
    b: _Builder, src: str | PyCall, pad, kernel: Pair, stride: Pair, dilation: int, value: str = ""
):
    """`src` (channels first) padded as _padding_2d says."""
    extra = (f"value={value}",) if value else ()
    if pad is None:
        b.helpers.add("pad_same_2d")
        b.imports.add("F")
        args = (src, _size_2d(kernel), _size_2d(stride), *((str(dilation),) if dilation != 1 else ()))
        return PyCall("pad_same_2d", args + extra)
    if any(pad):
        b.imports.add("F")
        return PyCall("F.pad", (src, py_literal(pad), *extra))
    return src


@emits("conv2d")
def _conv2d(b: _Builder, layer: Layer, src: str, has_mask: bool) -> bool:
    """torch's Conv2d, unpadded, on the channels-first input padded as TensorFlow pads it."""
    a, attr = layer.attrs, f"self.{layer.name}"
    kernel, stride, dilation = pair(a["kernel_size"]), pair(a["strides"]), a["dilation_rate"]
    _conv_module(b, layer, "nn.Conv2d", _size_2d(kernel), None if stride == (1, 1) else _size_2d(stride))
    pad = _padding_2d(layer, b.model.values[layer.inputs[0]].shape, kernel, stride, dilation)
    # Channels first, padded, in one statement; convolved and channels last in the next.
    b.assign(
        b.names.hidden, _padded_2d(b, T.transpose(src, "0", "3", "1", "2"), pad, kernel, stride, dilation)
    )
    call = _uses(b, T.channels_last(PyCall(attr, (b.names.hidden,))))
    b.assign(b.names.hidden, b.activation(a["activation"], call))
    return False


@emits("max_pooling2d")
def _max_pooling2d(b: _Builder, layer: Layer, src: str, has_mask: bool) -> bool:
    pool = pair(layer.attrs["pool_size"])
    stride = pair(layer.attrs["strides"] or layer.attrs["pool_size"])
    pad = _padding_2d(layer, b.model.values[layer.inputs[0]].shape, pool, stride, 1)
    b.imports.add("F")
    inner: str | PyCall = T.transpose(src, "0", "3", "1", "2")
    if pad is None or any(pad):  # -inf: a padded cell never wins
        b.assign(b.names.hidden, _padded_2d(b, inner, pad, pool, stride, 1, 'float("-inf")'))
        inner = b.names.hidden
    pooled = PyCall("F.max_pool2d", (inner, _size_2d(pool), _size_2d(stride)))
    b.assign(b.names.hidden, _uses(b, T.channels_last(pooled)))
    return False


@emits("batch_normalization")
def _batch_normalization(b: _Builder, layer: Layer, src: str, has_mask: bool) -> bool:
    """KerasBatchNormalization: the moving statistics as buffers; under a mask, training's batch
    statistics are the unmasked steps'."""
    a = layer.attrs
    args = [str(b.features)]
    if a["epsilon"] != 0.001:
        args.append(f"epsilon={py_literal(a['epsilon'])}")
    if a["momentum"] != 0.99:
        args.append(f"momentum={py_literal(a['momentum'])}")
    if not a["center"]:
        args.append("center=False")
    if not a["scale"]:
        args.append("scale=False")
    b.helpers.add("KerasBatchNormalization")
    b.module(layer, "KerasBatchNormalization", args)
    args = (src, b.names.mask) if has_mask else (src,)
    b.assign(b.names.hidden, PyCall(f"self.{layer.name}", args))
    return has_mask


def fused_classes(builder: _Builder) -> list[Statement]:
    """`builder.init` with each fused recurrent layer's class: MASKED where some call of the
    layer runs under a mask (known once every call is built), FUSED otherwise."""
    init: list[Statement] = []
    for statement in builder.init:
        name = statement.targets[0].removeprefix("self.") if isinstance(statement, Assign) else ""
        if name in builder.fused:
            table = MASKED if name in builder.masked else FUSED
            assert isinstance(statement.value, PyCall)
            call = replace(statement.value, head=table[builder.fused[name]])
            statement = replace(statement, value=call)
            builder.helpers.add(call.head)
        init.append(statement)
    return init


class _GraphBuilder(_Builder):
    """The stack builder's emitters, run once per statement of a graph (rnnspec/targets/pytorch_graph.py)."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.init: list[Statement] = []
        self.reset: list[Statement] = []
        self.buffers: list[Statement] = []
        self.forward: list[Statement] = []
        self.values: dict[str, str] = {}
        self.masks: dict[str, str | None] = {}
        self.stepped: set[str] = set()
        self.fused: dict[str, str] = {}  # fused recurrent layers by name: their kind
        self.masked: set[str] = set()  # the recurrent layers some call runs under a mask
        self.helpers: set[str] = set()
        self.imports: set[str] = set()
        self.features = 0
        self.following: Layer | None = None
        self.rest: list[Layer] = []
        self.packed_input = False
        self.outs: list[str] = []
        self.initial_state: str | None = None
        self.current_reads = False  # whether a later layer reads the mask the current one makes
        self.graph = GraphForward(self, model, MODULE_NAMES, Names)

    def build(self) -> None:
        self.graph.build()

    @property
    def returns(self) -> list[str]:
        return self.graph.returns()

    def mask_is_read(self) -> bool:
        return self.current_reads

    def take_last_assignment(self) -> str | PyCall | None:
        return None  # a value may feed several layers: every assignment stays


def context(model: Model, source_name: str) -> dict[str, Any]:
    builder = _GraphBuilder(model) if model.is_graph else _Builder(model)
    builder.build()
    init = fused_classes(builder)
    returns = builder.returns
    # The runtime definitions the program uses, by name (rnnspec/runtime/torch_rnn.py).
    helpers = builder.helpers | {STEPPED[kind] for kind in builder.stepped}
    if any(layer.recurrent is not None for layer in model.layers):
        helpers.add("init_keras_recurrent")
    runtime_text, runtime_imports = runtime.source(helpers)
    parameters = [value.name for value in model.inputs]
    forward = render_statements(builder.forward, 8)
    if model.is_graph:  # spec names are longer than the stack's `x`: split what ruff would split
        forward = [part for line in forward for part in relayout(line)]
    stateful_buffers = [
        state_buffer(layer, state)
        for layer in model.layers
        if layer.recurrent is not None and layer.recurrent.attrs["stateful"]
        for state in (["h", "c"] if layer.recurrent.kind == "lstm" else ["h"])
    ]
    user = import_lines(
        [(layer.extern.pytorch.module, layer.extern.pytorch.name) for layer in model.layers if layer.extern]
    )
    # ruff's isort puts `from m import C` before `from torch import nn` when `m` sorts first.
    before_torch = [line for line in user if line.split()[1].lower() < "torch"]
    return {
        "model_name": model.name,
        "class_name": class_name(model),
        "user_imports_before": before_torch,
        "user_imports_after": user[len(before_torch) :],
        "source_name": docstring_text(source_name),
        "init": render_statements(init + builder.buffers, 8),
        "reset_lines": [
            line
            for buffer in stateful_buffers
            for line in Assign((buffer,), PyCall("torch.zeros_like", (buffer,))).lines(8)
        ],
        "reset": render_statements(builder.reset, 8),
        "forward": forward,
        "signature": signature(parameters, len(returns)),
        "return_lines": return_lines(returns),
        "stateful_buffers": stateful_buffers,
        "runtime": runtime_text,
        "runtime_imports": runtime_imports,
        "uses_functional": "F" in builder.imports,
    }


def generate(model: Model, source_name: str) -> str:
    return render("pytorch.py.j2", context(model, source_name))
