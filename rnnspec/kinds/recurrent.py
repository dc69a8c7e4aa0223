"""The recurrent kinds (simple_rnn, lstm, gru) and `bidirectional`, which wraps one of them.

Keras keeps a kernel, a recurrent kernel and one bias per direction (GRU `reset_after`: two stacked);
torch keeps them transposed, with its gate blocks in another order (GRU: Keras z, r, h; torch r,
z, n) and two biases (the recurrent one zero where Keras has none).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rnnspec.ir import RECURRENT_KINDS, Attr, Layer, LayerSchema, TensorValue
from rnnspec.kinds.base import Context, LayerKind

if TYPE_CHECKING:
    import numpy as np

# torch gate block i is Keras block GATE_ORDER[kind][i]
GATE_ORDER = {"lstm": (0, 1, 2, 3), "gru": (1, 0, 2), "simple_rnn": (0,)}

_RECURRENT = {
    "units": Attr("pos_int"),
    "activation": Attr("activation", "tanh"),
    "use_bias": Attr("bool", True),
    "dropout": Attr("rate", 0.0),
    "recurrent_dropout": Attr("rate", 0.0),
    "return_sequences": Attr("bool", False),
    "return_state": Attr("bool", False),
    "go_backwards": Attr("bool", False),
    "stateful": Attr("bool", False),
    "unroll": Attr("bool", False),
}


def _reorder(array: np.ndarray, kind: str, axis: int, inverse: bool = False) -> np.ndarray:
    import numpy as np  # numpy only when weights are mapped: compiling imports no framework

    order = GATE_ORDER[kind]
    if inverse:
        order = tuple(order.index(i) for i in range(len(order)))
    blocks = np.split(array, len(order), axis=axis)
    return np.concatenate([blocks[i] for i in order], axis=axis)


class Recurrent(LayerKind):
    """simple_rnn, lstm, gru; `bidirectional` is the same with two directions."""

    needs_sequence = True
    reads_mask = True

    def __init__(self, name: str, keras_class: str, schema: LayerSchema) -> None:
        self.name = name
        self.keras_class = keras_class
        self.h5_name = name
        self.schema = schema

    def infer(self, layer: Layer, current: TensorValue, ctx: Context) -> list[TensorValue] | None:
        rec = layer.recurrent
        assert rec is not None
        report, model = ctx.report, ctx.model
        ok = True
        if rec.attrs["stateful"] and model.batch_size is None:
            report.error(
                rec.where("stateful"),
                f"`stateful=true` on `{layer.name}` needs a fixed batch size: write `model {model.name}(batch_size=N) {{`",
            )
            ok = False
        if rec.attrs["unroll"] and current.shape[0] is None:
            report.error(
                rec.where("unroll"),
                f"`unroll=true` on `{layer.name}` needs a fixed number of timesteps, but the time axis is `*`; "
                "give the input a fixed length such as `float32[20, 8]`",
            )
            ok = False
        if layer.inner is not None and rec.attrs["go_backwards"]:
            report.error(
                rec.where("go_backwards"),
                "`go_backwards=true` inside `bidirectional` is not supported: the wrapper already runs one "
                "half backwards; drop the argument",
            )
            ok = False
        if (
            layer.inner is not None
            and rec.attrs["unroll"]
            and current.masked
            and rec.attrs["return_sequences"]
        ):
            report.error(
                rec.where("unroll"),
                f"`unroll=true` inside `bidirectional` on a masked sequence is refused: Keras 3's unrolled "
                f"loop zeroes the backward half at the wrong timesteps (it applies the unflipped mask); "
                f"drop `unroll` on `{layer.name}`",
            )
            ok = False
        if layer.inner is not None and rec.attrs["stateful"] and rec.attrs["return_state"]:
            report.error(
                rec.where("return_state"),
                f"`return_state=true` with `stateful=true` inside `bidirectional` is refused: Keras 3's "
                f"Bidirectional.compute_mask fails on that combination; drop one of them on `{layer.name}`",
            )
            ok = False
        if not ok:
            return None
        units = rec.attrs["units"]
        seq = rec.attrs["return_sequences"]
        time = current.shape[:1] if seq else ()
        state_names = ["h", "c"] if rec.kind == "lstm" else ["h"]
        masked = self.mask_out(layer, current.masked)
        if layer.inner is None:
            outputs = [TensorValue(layer.name, "float32", time + (units,), masked)]
            prefixes = [""]
        else:
            mode = layer.attrs["merge_mode"]
            if mode == "none":
                outputs = [
                    TensorValue(f"{layer.name}.forward", "float32", time + (units,), masked),
                    TensorValue(f"{layer.name}.backward", "float32", time + (units,), masked),
                ]
            else:
                width = 2 * units if mode == "concat" else units
                outputs = [TensorValue(layer.name, "float32", time + (width,), masked)]
            prefixes = ["forward_", "backward_"]
        if rec.attrs["return_state"]:
            for prefix in prefixes:
                for state in state_names:
                    outputs.append(TensorValue(f"{layer.name}.{prefix}{state}", "float32", (units,)))
        return outputs

    def mask_out(self, layer: Layer, masked_in: bool) -> bool:
        rec = layer.recurrent
        assert rec is not None
        return masked_in and rec.attrs["return_sequences"]

    def keeps_mask(self, layer: Layer) -> bool:
        rec = layer.recurrent
        assert rec is not None
        return bool(rec.attrs["return_sequences"])

    # -- weights: per direction, kernel, recurrent kernel, bias -----------------------------

    @staticmethod
    def _directions(layer: Layer) -> list[str]:
        return ["forward.", "backward."] if layer.inner is not None else [""]

    def keras_weights(self, layer: Layer, width: int) -> list[tuple[str, tuple[int, ...]]]:
        rec = layer.recurrent
        assert rec is not None
        units = rec.attrs["units"]
        gates = len(GATE_ORDER[rec.kind])
        one = [("kernel", (width, gates * units)), ("recurrent_kernel", (units, gates * units))]
        if rec.attrs["use_bias"]:
            if rec.kind == "gru" and rec.attrs["reset_after"]:
                one.append(("bias", (2, gates * units)))
            else:
                one.append(("bias", (gates * units,)))
        return [(prefix + name, shape) for prefix in self._directions(layer) for name, shape in one]

    def h5_paths(self, layer: Layer, group: str, count: int) -> list[str]:
        if layer.inner is None:
            return [f"{group}/cell/vars/{i}" for i in range(count)]
        half = count // 2
        return [f"{group}/forward_layer/cell/vars/{i}" for i in range(half)] + [
            f"{group}/backward_layer/cell/vars/{i}" for i in range(half)
        ]

    def keras_to_torch(self, layer: Layer, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
        import numpy as np  # numpy only when weights are mapped: compiling imports no framework

        rec = layer.recurrent
        assert rec is not None
        per = 3 if rec.attrs["use_bias"] else 2
        halves = [arrays[:per], arrays[per:]] if layer.inner is not None else [arrays]
        state: dict[str, np.ndarray] = {}
        for suffix, half in zip(["", "_reverse"], halves):
            kernel, recurrent = half[0], half[1]
            state[f"weight_ih_l0{suffix}"] = _reorder(kernel, rec.kind, 1).T
            state[f"weight_hh_l0{suffix}"] = _reorder(recurrent, rec.kind, 1).T
            if not rec.attrs["use_bias"]:
                continue
            bias = half[2]
            if rec.kind == "gru" and rec.attrs["reset_after"]:
                state[f"bias_ih_l0{suffix}"] = _reorder(bias[0], rec.kind, 0)
                state[f"bias_hh_l0{suffix}"] = _reorder(bias[1], rec.kind, 0)
            elif rec.kind == "gru":
                state[f"bias_ih_l0{suffix}"] = _reorder(bias, rec.kind, 0)
            else:
                state[f"bias_ih_l0{suffix}"] = _reorder(bias, rec.kind, 0)
                state[f"bias_hh_l0{suffix}"] = np.zeros_like(bias)
        return state

    def torch_to_keras(self, layer: Layer, state: dict[str, np.ndarray]) -> list[np.ndarray]:
        import numpy as np  # numpy only when weights are mapped: compiling imports no framework

        rec = layer.recurrent
        assert rec is not None
        arrays: list[np.ndarray] = []
        for suffix in ["", "_reverse"] if layer.inner is not None else [""]:

            def get(key: str, suffix: str = suffix) -> np.ndarray:
                return state[f"{key}_l0{suffix}"]

            arrays.append(_reorder(get("weight_ih").T, rec.kind, 1, inverse=True))
            arrays.append(_reorder(get("weight_hh").T, rec.kind, 1, inverse=True))
            if not rec.attrs["use_bias"]:
                continue
            if rec.kind == "gru" and rec.attrs["reset_after"]:
                arrays.append(
                    np.stack(
                        [
                            _reorder(get("bias_ih"), rec.kind, 0, inverse=True),
                            _reorder(get("bias_hh"), rec.kind, 0, inverse=True),
                        ]
                    )
                )
            elif rec.kind == "gru":
                arrays.append(_reorder(get("bias_ih"), rec.kind, 0, inverse=True))
            else:
                arrays.append(_reorder(get("bias_ih") + get("bias_hh"), rec.kind, 0, inverse=True))
        return arrays

    def torch_extra_parameters(self, layer: Layer) -> int:
        """torch keeps a second bias per direction where Keras has one (LSTM, SimpleRNN)."""
        rec = layer.recurrent
        assert rec is not None
        if not rec.attrs["use_bias"] or rec.kind not in ("lstm", "simple_rnn"):
            return 0
        directions = 2 if layer.inner is not None else 1
        return directions * len(GATE_ORDER[rec.kind]) * rec.attrs["units"]


class Bidirectional(Recurrent):
    """One recurrent layer run both ways, the halves merged (or returned apart, `merge_mode=none`)."""

    def keras_value(self, key: str, value: object) -> object:
        return None if key == "merge_mode" and value == "none" else value


SIMPLE_RNN = Recurrent("simple_rnn", "keras.layers.SimpleRNN", LayerSchema(("units",), dict(_RECURRENT)))
LSTM = Recurrent(
    "lstm",
    "keras.layers.LSTM",
    LayerSchema(
        ("units",),
        {
            **_RECURRENT,
            "recurrent_activation": Attr("activation", "sigmoid"),
            "unit_forget_bias": Attr("bool", True),
        },
    ),
)
GRU = Recurrent(
    "gru",
    "keras.layers.GRU",
    LayerSchema(
        ("units",),
        {
            **_RECURRENT,
            "recurrent_activation": Attr("activation", "sigmoid"),
            "reset_after": Attr("bool", True),
        },
    ),
)
BIDIRECTIONAL = Bidirectional(
    "bidirectional",
    "keras.layers.Bidirectional",
    LayerSchema(("layer",), {"layer": Attr("recurrent_layer"), "merge_mode": Attr("merge_mode", "concat")}),
)
assert tuple(kind.name for kind in (SIMPLE_RNN, LSTM, GRU)) == RECURRENT_KINDS
