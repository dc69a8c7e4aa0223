"""IR -> context for templates/pytorch.py.j2.

Torch's fused nn.LSTM / nn.GRU / nn.RNN are used wherever they compute Keras's function; a layer
they cannot express (an activation torch's kernels lack, GRU `reset_after=false`) becomes a
`Keras*` module stepped in Python with the same parameter names and layouts. Keras's mask
semantics are reproduced around either kind by `keras_rnn`: only each row's unmasked timesteps
are run, then the outputs are put back in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rnnspec.ir import Layer, Model
from rnnspec.targets.common import LINE_LENGTH, PyCall, import_lines, layout, py_literal, render, statement
from rnnspec.targets.pytorch_graph import GraphForward, return_lines, signature
from rnnspec.text import docstring_text

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
}

FUSED = {"simple_rnn": "nn.RNN", "lstm": "nn.LSTM", "gru": "nn.GRU"}
DROPOUTS = ("dropout", "recurrent_dropout")
STEPPED = {"simple_rnn": "KerasSimpleRNN", "lstm": "KerasLSTM", "gru": "KerasGRU"}


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


def camel_case(name: str) -> str:
    parts = [p for p in name.split("_") if p]
    camel = "".join(p[0].upper() + p[1:] for p in parts) or "Model"
    return camel if camel[0].isalpha() else f"Model{camel}"


# Every name the program binds at module level: imports, helpers, and `build_model`. The model's
# class is named after the model (`class_name`) and must be none of these; an input (a parameter
# of forward) must not shadow them. Kept in step with the template by tests/test_hardening.py.
MODULE_NAMES = frozenset(
    """math torch F nn PackedSequence pack_padded_sequence pad_packed_sequence keras_rnn reverse_valid
    KerasRecurrent KerasSimpleRNN KerasLSTM KerasGRU AttentionPooling build_model gate_linear
    init_keras_recurrent""".split()
)


# forward(self, <input>): the input may not be called `self`.
FORWARD_PARAMETERS = frozenset({"self"})


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
    def __init__(self, model: Model) -> None:
        self.model = model
        (self.input,) = model.inputs
        self.names = Names.avoiding(self.input.name)
        self.init: list[str] = []
        self.reset: list[str] = []  # reset_parameters(): Keras's initialisers
        self.buffers: list[str] = []
        self.forward: list[str] = []
        self.returns = self.names.hidden
        self.stepped: set[str] = set()
        self.helpers: set[str] = set()
        self.features = 0  # width of the current tensor's last axis
        # The last keras_rnn statement, if its sequence output only feeds the next layer.
        self.inlinable: tuple[int, int, PyCall] | None = None
        self.following: Layer | None = None  # the layer after the one being emitted
        self.rest: list[Layer] = []  # every layer after the one being emitted
        self.packed_input = False  # the current tensor is the previous layer's packed output
        self.initial_state: str | None = None  # a graph's `initial_state=[...]` for the next layer

    def build(self) -> None:
        current = self.input.name
        self.features = self.input.shape[-1] if self.input.dtype == "float32" else 0
        has_mask = False
        layers = self.model.layers
        for index, layer in enumerate(layers):
            out = self.model.values[layer.outputs[0]]
            self.following = layers[index + 1] if index + 1 < len(layers) else None
            self.rest = layers[index + 1 :]
            has_mask = self.layer(layer, current, has_mask)
            current = self.names.hidden
            self.features = out.shape[-1]

    def mask_is_read(self) -> bool:
        """Whether a later layer reads the mask born here (Keras computes it regardless; a program
        that returns it unread would only hold a dead local)."""
        for layer in self.rest:
            if layer.extern is not None or layer.recurrent is not None:
                return True  # a user's layer is given `mask=` whatever its mode
            if layer.kind in ("global_average_pooling", "attention_pooling"):
                return True
            if layer.kind not in ("dense", "dropout"):
                return False
        return False

    def emit(self, line: str) -> None:
        self.forward.append(f"        {line}")
        self.inlinable = None

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
        """Remove the trailing statement `x = EXPR` that only feeds the next layer; return EXPR."""
        if self.inlinable is not None:
            start, count, call = self.inlinable
            self.inlinable = None
            if len(self.forward) == start + count:
                del self.forward[start:]
                return call
        prefix = f"        {self.names.hidden} = "
        if not self.forward or not self.forward[-1].startswith(prefix):
            return None
        return self.forward.pop()[len(prefix) :]

    def layer(self, layer: Layer, src: str, has_mask: bool) -> bool:
        """Emit one layer; return whether a mask flows out of it."""
        x, mask = self.names.hidden, self.names.mask
        attr = f"self.{layer.name}"
        kind = layer.kind
        if kind == "embedding":
            self.module(
                layer, "nn.Embedding", [str(layer.attrs["input_dim"]), str(layer.attrs["output_dim"])]
            )
            self.initialise(f"nn.init.uniform_({attr}.weight, -0.05, 0.05)")
            if layer.attrs["mask_zero"] and self.mask_is_read():
                self.emit(f"{mask} = {src} != 0")
            self.emit(f"{x} = {attr}({src})")
            return layer.attrs["mask_zero"]
        if kind == "masking":
            value = py_literal(layer.attrs["mask_value"])
            self.emit(f"{mask} = ({src} != {value}).any(dim=-1)")
            if self.following is not None and self.following.recurrent is not None:
                # A recurrent layer skips the masked steps, so zeroing their features is moot.
                if src != x:
                    self.emit(f"{x} = {src}")
            else:
                # `where`, as Keras's Masking does: a product would turn inf inputs into NaN.
                self.emit(f"{x} = torch.where({mask}.unsqueeze(-1), {src}, 0.0)")
            return True
        if kind == "dense":
            args = [str(self.features), str(layer.attrs["units"])]
            if not layer.attrs["use_bias"]:
                args.append("bias=False")
            self.module(layer, "nn.Linear", args)
            self.initialise(f"nn.init.xavier_uniform_({attr}.weight)")
            if layer.attrs["use_bias"]:
                self.initialise(f"nn.init.zeros_({attr}.bias)")
            self.emit(f"{x} = " + TORCH_ACTIVATIONS[layer.attrs["activation"]].format(f"{attr}({src})"))
            return has_mask
        if kind == "dropout":
            self.module(layer, "nn.Dropout", [py_literal(layer.attrs["rate"])])
            self.emit(f"{x} = {attr}({src})")
            return has_mask
        if kind == "global_average_pooling":
            if has_mask:
                self.emit(
                    f"{x} = ({src} * {mask}.unsqueeze(-1)).sum(dim=1) / {mask}.sum(dim=1, keepdim=True)"
                )
            else:
                self.emit(f"{x} = {src}.mean(dim=1)")
            return False
        if kind == "attention_pooling":
            self.helpers.add("attention_pooling")
            self.module(layer, "AttentionPooling", [str(self.features)])
            self.initialise(f"nn.init.xavier_uniform_({attr}.kernel.weight)")
            self.emit(f"{x} = {attr}({src}, {mask})" if has_mask else f"{x} = {attr}({src})")
            return False
        if layer.extern is not None:
            return self.extern(layer, src, has_mask)
        self.recurrent(layer, src, has_mask)
        rec = layer.recurrent
        assert rec is not None
        return has_mask and rec.attrs["return_sequences"]

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
        call = f"{attr}({src}, mask={mask})" if has_mask else f"{attr}({src})"
        if ext.mask != "produce" or not self.mask_is_read():
            # (A produced mask no later layer reads is not computed: it would be a dead local.)
            self.assign(f"{x} = {attr}", [src, f"mask={mask}"] if has_mask else [src])
            return has_mask and ext.mask == "keep"
        if not has_mask:
            self.assign(f"{mask} = {attr}.compute_mask", [src, "None"])
            self.assign(f"{x} = {attr}", [src])
            return True
        # Both from the incoming mask, as Keras computes them.
        produced = f"{attr}.compute_mask({src}, {mask})"
        line = f"{x}, {mask} = {call}, {produced}"
        if len(line) + 8 <= LINE_LENGTH:
            self.emit(line)
        else:
            for part in (f"{x}, {mask} = (", f"    {call},", f"    {produced},", ")"):
                self.emit(part)
        return True

    def assign(self, head: str, args: list[str]) -> None:
        """`head(args)`, laid out as ruff format would when it is too long for one line."""
        for line in statement(8, head, list(args)):
            self.emit(line[8:])

    def module(self, layer: Layer, cls: str, args: list[str]) -> None:
        self.init += statement(8, f"self.{layer.name} = {cls}", list(args))

    def initialise(self, line: str) -> None:
        self.reset.append(f"        {line}")

    def recurrent(self, layer: Layer, src: str, has_mask: bool) -> None:
        rec = layer.recurrent
        assert rec is not None
        x, mask, last = self.names.hidden, self.names.mask, self.names.last
        bidirectional = layer.inner is not None
        units = rec.attrs["units"]
        reason = fused_kernel_reason(rec)
        args = [str(self.features), str(units)]
        if reason is None:
            cls = FUSED[rec.kind]
            if rec.kind == "simple_rnn":
                args.append(f"nonlinearity={py_literal(rec.attrs['activation'])}")
        else:
            cls = STEPPED[rec.kind]
            self.stepped.add(rec.kind)
            args += activation_args(rec)
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
        self.reset += statement(8, "init_keras_recurrent", init)
        # Keras's dropout masks need the per-timestep loop; in eval mode the fused kernel runs.
        rnn = f"self.{layer.name}"
        stepping: list[str] = []
        if reason is None and drops:
            self.stepped.add(rec.kind)
            rnn = self.names.rnn
            call = PyCall(
                f"{STEPPED[rec.kind]}.stepping", (f"self.{layer.name}", *activation_args(rec), *drops)
            )
            choice = f"{call.flat()} if self.training else self.{layer.name}"
            # Laid out as ruff formats it: one line, else the choice in parentheses, else split.
            if len(f"        {rnn} = {choice}") <= LINE_LENGTH:
                stepping = [f"        {rnn} = {choice}"]
            elif len(f"            {choice}") <= LINE_LENGTH:
                stepping = [f"        {rnn} = (", f"            {choice}", "        )"]
            else:
                stepping = [
                    f"        {rnn} = (",
                    *layout(call, 12),
                    "            if self.training",
                    f"            else self.{layer.name}",
                    "        )",
                ]

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
                self.buffers += statement(8, "self.register_buffer", [name, zeros, "persistent=False"])
        initial = (f"({', '.join(buffers)})" if len(buffers) > 1 else buffers[0]) if stateful else None
        initial = initial or self.initial_state

        seq = rec.attrs["return_sequences"]
        backwards = rec.attrs["go_backwards"]
        inp = f"{src}.flip(1)" if backwards else src
        seq_out = x if seq else "_"

        def unpack(h_used: bool) -> str:
            used = [name if keep_states or (name == finals[0] and h_used) else "_" for name in finals]
            if all(name == "_" for name in used):
                return "_"
            return f"({', '.join(used)})" if len(used) > 1 else used[0]

        if has_mask:
            self.helpers.add("keras_rnn")
            if not backwards and src == x and not self.packed_input:
                # Hand the previous layer's output straight to keras_rnn, so that no local keeps the
                # whole padded batch alive while the kernel runs on the packed copy.
                inp = self.take_last_assignment() or inp
            self.forward += stepping
            call_args: list[str | PyCall] = [
                rnn,
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
            self.packed_input = chain
            lhs = f"{seq_out}, {'_' if seq else last}, {unpack(False)}"
            start = len(self.forward)
            self.forward += statement(8, f"{lhs} = keras_rnn", call_args)
            chained = any(arg == "packed=True" for arg in call_args)
            inlinable = not stateful and not chained and not stepping and not isinstance(inp, PyCall)
            if lhs == f"{x}, _, _" and inlinable:
                self.inlinable = (
                    start,
                    len(self.forward) - start,
                    PyCall("keras_rnn", tuple(call_args), "[0]"),
                )
            lasts = [f"{last}[0]", f"{last}[1]"]
        else:
            call_args = [inp] + ([initial] if initial else [])
            lhs = f"{seq_out}, {unpack(not seq)}"
            self.forward += stepping
            self.forward += statement(8, f"{lhs} = {rnn}", call_args)
            lasts = [f"{finals[0]}[0]", f"{finals[0]}[1]"]
        if stateful:
            for buf, fin in zip(buffers, finals):
                self.emit(f"{buf} = {fin}.detach()")
        mode = layer.attrs.get("merge_mode") if bidirectional else None
        if not bidirectional:
            if not seq:
                self.emit(f"{x} = {lasts[0]}")
            outs = [x]
        elif mode == "none":
            if seq:
                outs = [f"{x}[..., :{units}]", f"{x}[..., {units}:]"]
            else:
                outs = lasts
        elif seq:
            if mode != "concat":
                self.emit(f"{x} = " + _merge(mode, f"{x}[..., :{units}]", f"{x}[..., {units}:]"))
            outs = [x]
        else:
            self.emit(f"{x} = " + _merge(mode, lasts[0], lasts[1]))
            outs = [x]
        if rec.attrs["return_state"]:
            for direction in range(2 if bidirectional else 1):
                outs += [f"{fin}[{direction}]" for fin in finals]
        self.returns = outs[0] if len(outs) == 1 else ", ".join(outs)


class _GraphBuilder(_Builder):
    """The stack builder's emitters, driven per statement over a graph's values (pytorch_graph)."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.init: list[str] = []
        self.reset: list[str] = []
        self.buffers: list[str] = []
        self.forward: list[str] = []
        self.stepped: set[str] = set()
        self.helpers: set[str] = set()
        self.features = 0
        self.inlinable = None
        self.following = None
        self.rest = []
        self.packed_input = False
        self.initial_state = None
        self.current_reads = False  # whether a later layer reads the mask the current one makes
        self.graph = GraphForward(self, model, MODULE_NAMES, Names)
        self.returns = ""

    def build(self) -> None:
        self.graph.build()

    def mask_is_read(self) -> bool:
        return self.current_reads

    def take_last_assignment(self) -> str | PyCall | None:
        return None  # a value may feed several layers: keep every assignment


def context(model: Model, source_name: str) -> dict[str, Any]:
    if model.is_graph:
        builder: _Builder = _GraphBuilder(model)
        builder.build()
        outputs = builder.graph.returns()
        parameters = [value.name for value in model.inputs]
    else:
        builder = _Builder(model)
        builder.build()
        outputs = [builder.returns]
        parameters = [builder.input.name]
    returns_tuple = len(outputs) > 1 or "," in outputs[0]
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
        "init": builder.init + builder.buffers,
        "reset_lines": [
            line
            for buffer in stateful_buffers
            for line in statement(8, f"{buffer} = torch.zeros_like", [buffer])
        ],
        "reset": builder.reset,
        "recurrent_init": any(layer.recurrent is not None for layer in model.layers),
        "forward": builder.forward,
        "signature": signature(parameters, "tuple[torch.Tensor, ...]" if returns_tuple else "torch.Tensor"),
        "return_lines": return_lines(outputs),
        "stateful_buffers": stateful_buffers,
        "keras_rnn": "keras_rnn" in builder.helpers,
        "attention_pooling": "attention_pooling" in builder.helpers,
        "stepped": sorted(builder.stepped),
        "uses_functional": any("F." in line for line in builder.forward + builder.init),
    }


def generate(model: Model, source_name: str) -> str:
    return render("pytorch.py.j2", context(model, source_name))
