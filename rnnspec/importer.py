"""`rnnspec import`: the spec of a trained Keras model, read from its `.keras` archive.

It reads the archive's `config.json` (zipfile + json, no framework) and writes the spec that
computes the same function, or refuses with every layer and option that has no equivalent.
"""

from __future__ import annotations

import json
import keyword
import math
import os
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnnspec.check import load_model
from rnnspec.errors import Pos, SpecError
from rnnspec.errors import UserError as UsageError
from rnnspec.files import require_regular_file
from rnnspec.graph import output_names
from rnnspec.ir import ACTIVATIONS, MERGE_KINDS, MERGE_MODES, RECURRENT_KINDS, Attr, Layer, bad_identifier
from rnnspec.kinds import KERAS_KINDS, KINDS, LAYER_SCHEMAS
from rnnspec.names import MODULE_ATTRIBUTES, PROGRAM_NAMES, camel_case, reserved_class_names
from rnnspec.text import comment_text

if TYPE_CHECKING:
    pass


# ---------------------------------------------------------------------------------------------
# rnnspec import
# ---------------------------------------------------------------------------------------------

RNN_CLASSES = ("SimpleRNN", "LSTM", "GRU")
# `RNN(cell)` is the layer of that cell when the cell is one of Keras's own: LSTM is RNN(LSTMCell).
CELL_LAYERS = {"SimpleRNNCell": "SimpleRNN", "LSTMCell": "LSTM", "GRUCell": "GRU"}
# What RNN itself takes; everything else of the layer it becomes is the cell's.
_RNN_OPTIONS = {
    "name", "trainable", "dtype", "return_sequences", "return_state", "go_backwards", "stateful",
    "unroll", "zero_output_for_mask",
}  # fmt: skip

# Preprocessing layers `--after-preprocessing` cuts from the front of a model: what each emits, as
# the spec's input (dtype; the shape from its config and its input's), given the options it needs.
PREPROCESSING = ("TextVectorization", "StringLookup", "IntegerLookup", "Normalization")

# Options that never change the forward pass: how weights are initialised, penalised, constrained
# or sampled during training, and which kernel implementation runs (the cuDNN one computes the same).
_NO_FORWARD_EFFECT = re.compile(
    r"^(.*_initializer|.*_regularizer|.*_constraint|seed|use_cudnn|trainable|name)$"
)

# Options rnnspec knows but cannot express except at one value: {option: (allowed value, why)}.
_ONLY_AT = {
    "time_major": (False, "a time-major layout has no equivalent (specs are batch-first)"),
    "implementation": (2, "only Keras's default implementation=2 is supported"),
    "quantization_config": (None, "quantized weights have no equivalent"),
    "lora_rank": (None, "LoRA adapters have no equivalent"),
    "data_format": (
        "channels_last",
        "only data_format='channels_last' (pooling over time) has an equivalent",
    ),
    "keepdims": (False, "keepdims=True has no equivalent"),
}
# Options that only matter in training: dropout's noise shape.
_TRAINING_ONLY = {"dropout": {"noise_shape"}}
_FLOAT_POLICIES = ("DTypePolicy", "FloatDTypePolicy")
_GRAMMAR_WORDS = {"model", "input", "as", "true", "false"}
_NUMBER = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")


# Bounds on what `import` reads: far above any real model, far below what would exhaust memory.
MAX_CONFIG_BYTES = 64 << 20  # config.json, uncompressed
MAX_CONFIG_DEPTH = 64  # Keras's own configs nest about 12 deep
MAX_LAYERS = 100_000
MAX_CONFIG_ITEMS = 2_000_000  # values in the whole config, all levels together


def check_config_shape(config: Any) -> str | None:
    """Why a parsed config.json is out of bounds (too deep, too many layers), or None."""
    todo = [(config, 1)]
    seen = 0
    while todo:
        value, depth = todo.pop()
        if depth > MAX_CONFIG_DEPTH:
            return f"config.json nests deeper than {MAX_CONFIG_DEPTH} levels; Keras writes about 12"
        if isinstance(value, (dict, list)):
            if len(value) > MAX_LAYERS:
                what = "an object of" if isinstance(value, dict) else "a list of"
                return f"config.json holds {what} {len(value):,} items; rnnspec reads at most {MAX_LAYERS:,}"
            seen += len(value)
            if seen > MAX_CONFIG_ITEMS:
                return f"config.json holds more than {MAX_CONFIG_ITEMS:,} values; rnnspec reads at most that"
            todo += [(v, depth + 1) for v in (value.values() if isinstance(value, dict) else value)]
    return None


class ImportRefused(Exception):
    """The model has parts with no equivalent in the language; `problems` lists every one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class Item:
    """One spec statement in the making: a layer kind, its non-default arguments, its names."""

    kind: str
    attrs: dict[str, Any]
    keras_name: str
    class_name: str
    inner: Item | None = None
    name: str = ""


@dataclass
class Imported:
    text: str
    model_name: str
    keras_names: list[str]  # the Keras layer behind each spec layer, in order
    # Where each of them keeps its arrays in the archive's model.weights.h5 (`layers/rnn` for an
    # RNN(LSTMCell) that is `lstm` here, `layers/functional/layers/dense` inside a nested model).
    h5_groups: list[str | None] = field(default_factory=list)
    cut: list[str] = field(default_factory=list)  # the preprocessing layers cut from the front
    cut_groups: list[str] = field(default_factory=list)  # where their arrays sit (adapted statistics)
    notes: list[str] = field(default_factory=list)


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_tensor_ref(value: Any) -> bool:
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


def _index(value: Any) -> int | None:
    """A node or tensor index from a config: a small non-negative int, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_LAYERS:
        return value
    return None


def _history(value: Any) -> tuple[str, int, int] | None:
    """[layer name, node index, tensor index], checked."""
    if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)):
        return None
    node, tensor = _index(value[1]), _index(value[2])
    return None if node is None or tensor is None else (value[0], node, tensor)


def _ref(value: Any) -> tuple[str, int, int] | None:
    if not _is_tensor_ref(value):
        return None
    config = value.get("config")
    return _history(config.get("keras_history")) if isinstance(config, dict) else None


def _policy_problem(dtype: Any) -> str | None:
    """Why a layer's dtype policy is refused, or None for float32."""
    if dtype is None or dtype == "float32":
        return None
    if isinstance(dtype, dict):
        config = dtype.get("config")
        name = config.get("name") if isinstance(config, dict) else None
        if dtype.get("class_name") in _FLOAT_POLICIES and name == "float32":
            return None
        shown = name if isinstance(name, str) else _show(dtype)
    else:
        shown = str(dtype)
    return f"dtype policy `{shown}` has no equivalent (rnnspec computes in float32)"


def _convert_value(key: str, value: Any, attr_type: str, attr: Attr | None = None) -> tuple[Any, str | None]:
    """A Keras config value as a spec value, or the reason it has none."""
    if value is None and attr is not None and attr.default is None:
        return None, None  # Keras's None default (pooling strides, ReLU's max_value)
    if attr_type == "pos_int" and isinstance(value, list) and value:
        # Keras writes a layer's sizes as one per axis (Conv1D's kernel_size as [3]).
        if any(one != value[0] for one in value):
            return None, f"`{key}={_show(value)}`: only equal sizes on every axis have an equivalent"
        value = value[0]
    if attr_type == "size_2d":
        # Keras writes a 2-D window's sizes as [height, width]: one int where they agree (the
        # spec's short form), else the pair.
        sizes = value if isinstance(value, list) else [value, value]
        if len(sizes) == 2 and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in sizes):
            return (sizes[0] if sizes[0] == sizes[1] else (sizes[0], sizes[1])), None
        return None, f"`{key}={_show(value)}` is not a positive integer or two of them (height, width)"
    if attr_type == "choice":
        if isinstance(value, str) and attr is not None and value in attr.choices:
            return value, None
        return None, f"`{key}={_show(value)}` has no equivalent"
    if attr_type == "dims":
        if (
            isinstance(value, list)
            and value
            and all(isinstance(d, int) and not isinstance(d, bool) and (d > 0 or d == -1) for d in value)
            and value.count(-1) <= 1
        ):
            return tuple(value), None
        return None, f"`{key}={_show(value)}` has no equivalent (sizes, at most one -1)"
    if attr_type == "dense_layer":
        if not isinstance(value, dict) or value.get("class_name") != "Dense":
            shown = value.get("class_name") if isinstance(value, dict) else _show(value)
            return None, f"it wraps a `{shown}`; only Dense has an equivalent"
        attrs, problems, _ = _convert_options("Dense", value.get("config") or {})
        if problems:
            return None, "; ".join(f"wrapped `Dense`: {p}" for p in problems)
        return attrs, None
    if attr_type == "pos_int":
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value, None
        return None, f"`{key}={_show(value)}` is not a positive integer"
    if attr_type == "bool":
        if isinstance(value, bool):
            return value, None
        return None, f"`{key}={_show(value)}` is not true or false"
    if attr_type in ("rate", "float"):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
            return None, f"`{key}={_show(value)}` is too large"
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            if attr_type == "rate" and not 0 <= value < 1:
                return None, f"`{key}={_show(value)}`: a spec's rates are in [0, 1)"
            return float(value), None
        return None, f"`{key}={_show(value)}` is not a finite number"
    if attr_type == "activation":
        name = "swish" if value == "silu" else value  # Keras 3 serialises swish as silu
        if isinstance(name, str) and name in ACTIVATIONS:
            return name, None
        return None, f"`{key}={_show(value)}`: the activation has no equivalent"
    if attr_type == "int":
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**31:
            return value, None
        return None, f"`{key}={_show(value)}` is not an integer"
    if attr_type == "merge_mode":
        mode = "none" if value is None else value
        if isinstance(mode, str) and mode in MERGE_MODES:
            return mode, None
        return None, f"`merge_mode={_show(value)}` has no equivalent"
    raise AssertionError(attr_type)  # pragma: no cover


def _convert_options(class_name: str, config: dict[str, Any]) -> tuple[dict[str, Any], list[str], bool]:
    """Spec attributes (all of them, defaults included) from one layer's config, and the problems.

    Returns (attrs, problems, zero_output_for_mask).
    """
    kind = KERAS_KINDS[class_name]
    schema = LAYER_SCHEMAS[kind]
    attrs: dict[str, Any] = {}
    problems: list[str] = []
    zero_output = False
    if not isinstance(config, dict):
        return attrs, [f"its config is a {type(config).__name__}, not an object"], zero_output
    for key, value in config.items():
        if key == "dtype":
            why = _policy_problem(value)
            if why:
                problems.append(why)
        elif key in schema.attrs and (key != "layer" or schema.attrs[key].type == "dense_layer"):
            converted, why = _convert_value(key, value, schema.attrs[key].type, schema.attrs[key])
            if why:
                problems.append(why)
            else:
                attrs[key] = converted
        elif key == "activity_regularizer" or _NO_FORWARD_EFFECT.match(key):
            continue
        elif key in _TRAINING_ONLY.get(kind, ()):
            continue
        elif key == "zero_output_for_mask" and kind in RECURRENT_KINDS:
            zero_output = bool(value)  # Bidirectional sets it itself; alone it matters with a mask
        elif key == "lora_alpha":
            continue  # meaningful only with lora_rank, which is refused
        elif key in ("renorm_clipping", "renorm_momentum") and kind == "batch_normalization":
            continue  # meaningful only with renorm, which is refused
        elif key in _ONLY_AT:
            allowed, why = _ONLY_AT[key]
            if value != allowed:
                problems.append(f"`{key}={_show(value)}`: {why}")
        elif key in KINDS[kind].keras_fixed:
            values, why = KINDS[kind].keras_fixed[key]
            if value not in values:
                problems.append(f"`{key}={_show(value)}`: {why}")
        elif kind == "bidirectional" and key in ("layer", "backward_layer"):
            continue  # handled by the caller
        else:
            problems.append(
                f"option `{key}={_show(value)}` is not one rnnspec knows, so it may change the output"
            )
    for key, attr in schema.attrs.items():
        if (key == "layer" and attr.type != "dense_layer") or key in attrs:
            continue
        if attr.required:
            if not any(f"`{key}" in p or (key == "layer" and "wrap" in p) for p in problems):
                problems.append(f"the config has no `{key}`")
        else:
            attrs[key] = attr.default
    if "pool_size" in attrs and attrs.get("strides") == attrs["pool_size"]:
        attrs["strides"] = None  # Keras writes its default (the pool size) out
    return attrs, problems, zero_output


def keras_snake_case(name: str) -> str:
    """A class name as Keras names its group in a weights file (keras.src.utils.naming.to_snake_case)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


# Where a layer's arrays sit in the archive's model.weights.h5, set on its config entry here: Keras
# names each layer of a model's list by its class, counting repeats (`layers/lstm_1`), and a nested
# model's layers under the nested model's group.
H5_GROUP = "__rnnspec_h5_group"
NESTED_MODELS = ("Functional", "Sequential")


def _is_operation(raw: Any) -> bool:
    return isinstance(raw, dict) and str(raw.get("module") or "").startswith("keras.src.ops")


def with_h5_groups(layers: list[Any], prefix: str = "") -> list[Any]:
    """Copies of a model's layer entries, each with its weights group (operations hold none)."""
    used: dict[str, int] = {}
    out = []
    for raw in layers:
        if not isinstance(raw, dict) or _is_operation(raw):
            out.append(raw)
            continue
        base = keras_snake_case(str(raw.get("class_name")))
        used[base] = used.get(base, -1) + 1
        out.append({**raw, H5_GROUP: f"{prefix}layers/{base}" + (f"_{used[base]}" if used[base] else "")})
    return out


def _substitute(value: Any, mapping: dict[tuple[str, int, int], Any]) -> Any:
    """`value` with every tensor reference in `mapping` replaced (nested lists and dicts)."""
    if _is_tensor_ref(value):
        ref = _ref(value)
        return mapping.get(ref, value) if ref is not None else value
    if isinstance(value, list):
        return [_substitute(one, mapping) for one in value]
    if isinstance(value, dict):
        return {key: _substitute(one, mapping) for key, one in value.items()}
    return value


def _tensor(ref: tuple[str, int, int]) -> dict[str, Any]:
    return {"class_name": "__keras_tensor__", "config": {"keras_history": list(ref)}}


def _layer_name(raw: dict[str, Any]) -> str:
    config = raw.get("config") if isinstance(raw.get("config"), dict) else {}
    return str(raw.get("name") or config.get("name"))


def _one_call(raw: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The one tensor a layer is called on once, and the call's keyword arguments; (None, {}) else."""
    nodes = raw.get("inbound_nodes")
    if not (isinstance(nodes, list) and len(nodes) == 1 and isinstance(nodes[0], dict)):
        return None, {}
    args, kwargs = nodes[0].get("args"), nodes[0].get("kwargs")
    if isinstance(args, list) and len(args) == 1 and _ref(args[0]):
        return args[0], kwargs if isinstance(kwargs, dict) else {}
    return None, {}


def flatten_nested(
    layers: list[Any], outputs: Any, sequential: bool
) -> tuple[list[Any], Any, list[str], list[str]]:
    """A model's layer entries with every nested Functional or Sequential model (called once, on
    one tensor) replaced by its own layers, wired as the nested model wires them, and the model's
    outputs re-pointed; returns (layers, outputs, notes, problems). Keras runs a nested model's
    layers as if they stood in the outer model, masks included (tests/test_keras_facts.py)."""
    notes: list[str] = []
    problems: list[str] = []
    names = {_layer_name(raw) for raw in layers if isinstance(raw, dict)}
    mapping: dict[tuple[str, int, int], Any] = {}
    out: list[Any] = []
    previous: Any = None  # in a Sequential model, the tensor the next layer reads
    for raw in layers:
        config = raw.get("config") if isinstance(raw, dict) else None
        nested = isinstance(raw, dict) and raw.get("class_name") in NESTED_MODELS and isinstance(config, dict)
        inner_layers = config.get("layers") if nested else None
        if not isinstance(inner_layers, list):
            out.append(raw)
            if isinstance(raw, dict) and raw.get("class_name") != "InputLayer":
                previous = _tensor((_layer_name(raw), 0, 0))
            continue
        class_name = raw["class_name"]
        name = _layer_name(raw)
        where = f"layer `{name}` ({class_name})"
        source, call_kwargs = (previous, {}) if sequential else _one_call(raw)
        # The mask the nested model is given is the one its first layers are given.
        mask_kwargs = {"mask": call_kwargs["mask"]} if call_kwargs.get("mask") is not None else {}
        if source is None and not sequential:
            problems.append(
                f"{where}: a nested model called more than once or on several tensors has no equivalent"
            )
            out.append(raw)
            continue
        group = raw.get(H5_GROUP)
        inner_layers = with_h5_groups(inner_layers, f"{group}/" if group else "")
        inner_names = [
            _layer_name(one)
            for one in inner_layers
            if isinstance(one, dict) and one.get("class_name") != "InputLayer" and not _is_operation(one)
        ]
        clashes = sorted(set(inner_names) & (names - {name}))
        if clashes:
            shown = ", ".join(f"`{c}`" for c in clashes)
            problems.append(f"{where}: the nested model's layers {shown} share names with the model's own")
            out.append(raw)
            continue
        if class_name == "Sequential":
            body: list[Any] = []
            last = source
            for one in inner_layers:
                if not isinstance(one, dict) or one.get("class_name") == "InputLayer":
                    continue
                body.append(
                    {
                        **one,
                        "name": _layer_name(one),
                        "inbound_nodes": [{"args": [last], "kwargs": mask_kwargs}],
                    }
                )
                last = _tensor((_layer_name(one), 0, 0))
                mask_kwargs = {}
            body, ends, inner_notes, inner_problems = flatten_nested(body, [last], sequential=False)
        else:
            inputs = _refs(config.get("input_layers"))
            inner_outputs = _refs(config.get("output_layers"))
            if not inputs or len(inputs) != 1 or not inner_outputs:
                problems.append(f"{where}: a nested model with {len(inputs or [])} inputs has no equivalent")
                out.append(raw)
                continue
            body = [
                {**one, "inbound_nodes": _given(one.get("inbound_nodes"), inputs[0], source, mask_kwargs)}
                for one in inner_layers
                if isinstance(one, dict) and one.get("class_name") != "InputLayer"
            ]
            body, ends, inner_notes, inner_problems = flatten_nested(
                body, [_tensor(ref) for ref in inner_outputs], sequential=False
            )
        if sequential and len(ends) != 1:
            problems.append(
                f"{where}: a nested model with several outputs has no equivalent in a Sequential model"
            )
        ends = [_as_tensors(end) for end in ends]
        for index, end in enumerate(ends):
            mapping[(name, 0, index)] = end
        notes += inner_notes
        problems += inner_problems
        shown = ", ".join(f"`{n}`" for n in inner_names)
        notes.append(f"The nested Keras model `{name}` is flattened: its layers {shown} stand in the spec.")
        out += body
        previous = ends[-1] if ends else previous
    if mapping:
        out = [
            {**raw, "inbound_nodes": _substitute(raw.get("inbound_nodes"), mapping)}
            if isinstance(raw, dict) and "inbound_nodes" in raw
            else raw
            for raw in out
        ]
        outputs = _substitute(_as_tensors(outputs), mapping)
        outputs = _as_history(outputs)
    return out, outputs, notes, problems


def _given(nodes: Any, inner_input: tuple[str, int, int], source: Any, mask_kwargs: dict[str, Any]) -> Any:
    """A nested layer's calls with the nested model's input replaced by the tensor the model is
    called on, and the model's mask given to the layers that read its input."""
    if not isinstance(nodes, list):
        return nodes
    out = []
    for node in nodes:
        reads_input = inner_input in _all_refs(node.get("args") if isinstance(node, dict) else None)
        node = _substitute(node, {inner_input: source})
        if reads_input and mask_kwargs and isinstance(node, dict) and isinstance(node.get("kwargs"), dict):
            node = {**node, "kwargs": {**node["kwargs"], **mask_kwargs}}
        out.append(node)
    return out


def _as_tensors(outputs: Any) -> Any:
    """output_layers ([name, node, index] triples) as tensor references, to substitute in."""
    if isinstance(outputs, list) and len(outputs) == 3 and isinstance(outputs[0], str):
        return _tensor(tuple(outputs))
    if isinstance(outputs, list):
        return [_as_tensors(one) for one in outputs]
    if isinstance(outputs, dict) and not _is_tensor_ref(outputs):
        return {key: _as_tensors(one) for key, one in outputs.items()}
    return outputs


def _as_history(outputs: Any) -> Any:
    if _is_tensor_ref(outputs):
        ref = _ref(outputs)
        return list(ref) if ref is not None else outputs
    if isinstance(outputs, list):
        return [_as_history(one) for one in outputs]
    if isinstance(outputs, dict):
        return {key: _as_history(one) for key, one in outputs.items()}
    return outputs


def plain_rnn(layer: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """An `RNN(LSTMCell(...))` entry as the `LSTM(...)` entry it equals (the RNN's own options and
    the cell's, merged), and the Keras class it was written as; other layers unchanged, None."""
    config = layer.get("config")
    if layer.get("class_name") != "RNN" or not isinstance(config, dict):
        return layer, None
    cell = config.get("cell")
    cell_class = cell.get("class_name") if isinstance(cell, dict) else None
    if cell_class not in CELL_LAYERS or not str(cell.get("module") or "keras").startswith("keras"):
        return layer, None
    cell_config = cell.get("config") if isinstance(cell.get("config"), dict) else {}
    merged = {key: value for key, value in cell_config.items() if key not in ("name", "trainable", "dtype")}
    for key, value in config.items():
        if key == "cell":
            continue
        if key in merged and key not in _RNN_OPTIONS:
            merged[f"RNN.{key}"] = value  # a clash no Keras writes: refused as an unknown option
        else:
            merged[key] = value
    return {**layer, "class_name": CELL_LAYERS[cell_class], "config": merged}, f"RNN({cell_class})"


def cell_problem(layer: dict[str, Any]) -> str | None:
    """Why an `RNN` layer is not one of Keras's recurrent layers (its cell), or None."""
    config = layer.get("config") if isinstance(layer.get("config"), dict) else {}
    cell = config.get("cell")
    if isinstance(cell, list) or (isinstance(cell, dict) and cell.get("class_name") == "StackedRNNCells"):
        return "a stack of cells in one RNN has no equivalent; write one recurrent layer per cell"
    if not isinstance(cell, dict):
        return "its cell is missing"
    cell_class = cell.get("class_name")
    module = str(cell.get("module") or "")
    if module and not module.startswith("keras"):
        return (
            f"its cell is a user's class `{cell_class}` (from `{module}`); only Keras's "
            "LSTMCell, GRUCell and SimpleRNNCell have an equivalent"
        )
    return f"its cell is a `{cell_class}`; only LSTMCell, GRUCell and SimpleRNNCell have an equivalent"


def _identifier(raw: str, fallback: str, role: str) -> str:
    """A spec identifier as close to `raw` as the language (and the generated programs) allow."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", raw or "")
    if role == "layer":
        name = name.lstrip("_")
    while name.startswith("__"):
        name = name[1:]
    if not name or name[0].isdigit():
        name = f"{fallback}_{name}" if name else fallback
    if bad_identifier(name) or name in _GRAMMAR_WORDS:
        name += "_"
    if role == "layer" and name in MODULE_ATTRIBUTES:
        name += "_layer"
    if role == "input" and name in PROGRAM_NAMES:
        name += "_input"
    if role == "model" and (
        camel_case(name) in reserved_class_names() or keyword.iskeyword(camel_case(name))
    ):
        name += "_model"
    return name


class _Converter:
    """One Keras model config -> spec text, collecting every problem before refusing."""

    def __init__(
        self,
        config: dict[str, Any],
        source_name: str,
        keras_version: str | None,
        after_preprocessing: bool = False,
    ) -> None:
        self.config = config
        self.after_preprocessing = after_preprocessing
        self.cut: list[str] = []  # the preprocessing layers cut from the front, in order
        self.cut_groups: list[str] = []
        self._preprocessing_input = False
        self.source_name = source_name
        self.keras_version = keras_version
        self.problems: list[str] = []
        self._seen_problems: set[str] = set()
        self.notes: list[str] = []
        self._structural = False
        self._ops: dict[str, dict[str, Any]] = {}
        self._nodes: dict[str, tuple[list[Any], dict[str, Any]]] = {}
        self._input_ref: tuple[str, int, int] | None = None
        self._outputs: list[tuple[str, int, int]] = []
        self._batch: int | None = None
        self._input_name = "x"
        self._mask_source: tuple[str, Any] | str | None = None  # (kind, value) where the mask was born
        self._mask_input: tuple[str, int, int] | None = None  # the tensor that layer read
        self._previous_ref: tuple[str, int, int] | None = None
        self._used_ops: set[str] = set()

    def problem(self, message: str) -> None:
        if message not in self._seen_problems:
            self._seen_problems.add(message)
            self.problems.append(message)

    # -- the model --------------------------------------------------------------------------

    def run(self) -> Imported:
        top = self.config
        class_name = top.get("class_name")
        inner = top.get("config")
        if class_name not in ("Sequential", "Functional", "Model") or not isinstance(inner, dict):
            raise ImportRefused(
                [f"the model is a `{class_name}`; only Sequential and Functional models have an equivalent"]
            )
        if class_name == "Model" and "input_layers" not in inner:
            raise ImportRefused(
                [
                    "the model is a subclassed `Model`; only Sequential and Functional models have an equivalent"
                ]
            )
        why = _policy_problem(inner.get("dtype"))
        if why:
            self.problem(f"model: {why}")
        layers = inner.get("layers")
        if not isinstance(layers, list):
            raise ImportRefused(["the config lists no layers"])
        layers, outputs, notes, problems = flatten_nested(
            with_h5_groups(layers), inner.get("output_layers"), class_name == "Sequential"
        )
        inner = {**inner, "layers": layers, "output_layers": outputs}
        self.notes += notes
        for message in problems:
            self.problem(message)
        if class_name != "Sequential" and is_graph_config(inner, layers):
            return self._graph(inner, layers)
        if class_name == "Sequential":
            input_cfg, chain, mask_kwargs = self._sequential(inner, layers)
        else:
            input_cfg, chain, mask_kwargs = self._functional(inner, layers)
        if not self._structural:
            input_cfg, chain = self._preprocessing_front(input_cfg, chain)
        self._previous_ref = self._input_ref
        items = []
        for entry in chain:
            items.append(self._item(entry))
            if not self._structural:
                self._mask_step(entry, items[-1], mask_kwargs.get(entry["name"]))
        for name, entry in self._ops.items():
            if name in self._used_ops or (self._structural and entry["class_name"] in ("NotEqual", "Any")):
                continue
            self.problem(f"operation `{name}` ({entry['class_name']}) has no equivalent")
        if class_name != "Sequential" and not self._structural and items and all(items):
            self._check_outputs(inner, chain, items[-1])
        for entry, item in zip(chain[:-1], items[:-1]):
            rec = item and (item.inner or item)
            if (
                rec is not None
                and rec.kind in RECURRENT_KINDS
                and rec.attrs["return_state"]
                and not self._structural
            ):
                # Only the next layer reads it, and only its first output: the states go unused.
                rec.attrs["return_state"] = False
                self.notes.append(
                    f"The model uses no states of `{entry['name']}`, so the spec leaves return_state off."
                )
        header = self._input(input_cfg, items)
        if not chain:
            self.problem("the model has no layers")
        if self.problems:
            raise ImportRefused(self.problems)
        assert header is not None
        model_name = _identifier(str(inner.get("name") or "model"), "model", "model")
        if model_name != inner.get("name"):
            self.notes.append(f"The Keras model `{inner.get('name')}` is `{model_name}` here.")
        text = self._render(model_name, header, [item for item in items if item is not None])
        groups = [entry["raw"].get(H5_GROUP) for entry in chain]
        return Imported(
            text,
            model_name,
            [entry["name"] for entry in chain],
            h5_groups=groups,
            notes=self.notes,
            cut=self.cut,
            cut_groups=self.cut_groups,
        )

    def _graph(self, inner, layers) -> Imported:
        """A functional model that is not a chain: its v1 spec (rnnspec/import_graph.py)."""
        body = convert_graph(self, inner, layers)
        if self.problems or body is None:
            raise ImportRefused(self.problems or ["the model has no equivalent graph"])
        model_name = _identifier(str(inner.get("name") or "model"), "model", "model")
        if model_name != inner.get("name"):
            self.notes.append(f"The Keras model `{inner.get('name')}` is `{model_name}` here.")
        options = f"(batch_size={self._batch})" if self._batch is not None else ""
        version = f" (Keras {self.keras_version})" if self.keras_version else ""
        head = [f"# {comment_text(f'Imported by rnnspec from {self.source_name}{version}.')}"]
        head += [f"# {comment_text(note)}" for note in self.notes]
        text = "\n".join([*head, f"model {model_name}{options} {{", body, "}"]) + "\n"
        keras_names = [str(layer.get("name")) for layer in layers if isinstance(layer, dict)]
        return Imported(text, model_name, keras_names, notes=self.notes)

    def _sequential(self, inner, layers):
        entries = [self._entry(layer, index) for index, layer in enumerate(layers)]
        input_cfg = None
        if entries and entries[0]["class_name"] == "InputLayer":
            input_cfg = entries.pop(0)["config"]
        elif isinstance(inner.get("build_input_shape"), list):
            input_cfg = {"batch_shape": inner["build_input_shape"], "dtype": "float32", "name": "x"}
        else:
            self.problem(
                "the Sequential model has no input shape (it was never built); build it or add keras.Input"
            )
        for entry in entries:
            if entry["class_name"] == "InputLayer":
                self.problem(
                    f"layer `{entry['name']}` (InputLayer) in the middle of the model has no equivalent"
                )
        chain = [e for e in entries if e["class_name"] != "InputLayer"]
        return input_cfg, chain, {}

    def _entry(self, layer: Any, index: int) -> dict[str, Any]:
        if not isinstance(layer, dict):
            return {"class_name": "?", "name": f"#{index}", "config": {}, "raw": {}}
        group = layer.get(H5_GROUP)
        layer, written_as = plain_rnn(layer)
        layer = {**layer, H5_GROUP: group} if group else layer
        config = layer.get("config") if isinstance(layer.get("config"), dict) else {}
        name = layer.get("name") or config.get("name")
        name = name if isinstance(name, str) and name else f"#{index}"
        class_name = layer.get("class_name")
        class_name = class_name if isinstance(class_name, str) else _show(class_name)
        # rnnspec's Keras programs register it as "rnnspec>AttentionPooling" (0.1 did not register it).
        if class_name not in KERAS_KINDS and layer.get("registered_name") in (
            "rnnspec>AttentionPooling",
            "AttentionPooling",
        ):
            class_name = "AttentionPooling"
        entry = {"class_name": class_name, "name": str(name), "config": config, "raw": layer}
        if written_as is not None:
            entry["written_as"] = written_as
            kind = KERAS_KINDS[class_name]
            self.notes.append(
                f"The Keras layer `{name}` is {written_as}, which is Keras's {class_name}: `{kind}` here."
            )
        return entry

    def _functional(self, inner, layers):
        entries = [self._entry(layer, index) for index, layer in enumerate(layers)]
        by_name = {entry["name"]: entry for entry in entries}
        # Every obstacle is listed, not only the first: inputs and outputs are checked here, and
        # each layer below whatever they hold.
        inputs = self._ends(inner.get("input_layers"), "inputs", "takes")
        outputs = self._ends(inner.get("output_layers"), "outputs", "returns")
        if inputs is None or outputs is None:
            raise ImportRefused(self.problems or ["the config names no model inputs or outputs"])
        input_names = {ref[0] for ref in inputs}
        if len(inputs) != 1:
            shown = ", ".join(f"`{ref[0]}`" for ref in inputs)
            self.problem(f"the model has {len(inputs)} inputs ({shown}); a spec has one")
            self._structural = True
        for ref in inputs:
            if ref[0] not in by_name or by_name[ref[0]]["class_name"] != "InputLayer":
                self.problem(f"the model's input `{ref[0]}` is not an InputLayer")
                self._structural = True
        input_entry = by_name.get(inputs[0][0]) if inputs else None
        if input_entry is None or input_entry["class_name"] != "InputLayer":
            input_entry = next((e for e in entries if e["class_name"] == "InputLayer"), None)
        if input_entry is None:
            raise ImportRefused(self.problems or ["the model has no InputLayer"])
        ops: dict[str, dict[str, Any]] = {}
        nodes: dict[str, tuple[list[Any], dict[str, Any]]] = {}
        for entry in entries:
            if entry is input_entry or (entry["class_name"] == "InputLayer" and entry["name"] in input_names):
                continue
            raw_nodes = entry["raw"].get("inbound_nodes")
            if not isinstance(raw_nodes, list) or not raw_nodes:
                self.problem(f"layer `{entry['name']}` is never called")
                continue
            if len(raw_nodes) > 1:
                self.problem(
                    f"layer `{entry['name']}` is called {len(raw_nodes)} times (shared weights); not a linear chain"
                )
            node = raw_nodes[0]
            if not isinstance(node, dict) or "args" not in node:
                raise ImportRefused(
                    ["the config uses the Keras 2 graph format; load the model in Keras 3 and save it again"]
                )
            args, kwargs = node.get("args") or [], node.get("kwargs") or {}
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                self.problem(f"layer `{entry['name']}`: its call in config.json is malformed (args, kwargs)")
                self._structural = True
                continue
            nodes[entry["name"]] = (args, kwargs)
            if str(entry["raw"].get("module", "")).startswith("keras.src.ops"):
                ops[entry["name"]] = entry
        self._ops, self._nodes, self._input_ref, self._outputs = ops, nodes, inputs[0], outputs
        names = [entry["name"] for entry in entries if entry["name"] in nodes and entry["name"] not in ops]
        # The graph must be a chain: each layer takes one tensor, the first output of the one before.
        consumers: dict[tuple[str, int, int], list[str]] = {}
        merges: list[str] = []
        for name in names:
            args, kwargs = nodes[name]
            refs = _all_refs(args)
            if len(args) != 1 or _ref(args[0]) is None:
                shown = ", ".join(f"`{r[0]}`" for r in refs) or "no tensor"
                merges.append(f"layer `{name}` takes {len(refs)} inputs ({shown}); a spec is a linear chain")
            for ref in dict.fromkeys(refs):  # a layer that takes one tensor twice is one consumer
                consumers.setdefault(ref, []).append(name)
            for key, value in kwargs.items():
                if key == "training" and value is True:
                    self.problem(f"layer `{name}` is called with training=True, which changes its output")
                elif key == "initial_state" and value is not None:
                    self.problem(f"layer `{name}` is called with an initial_state, which has no equivalent")
                elif key not in ("mask", "training", "initial_state"):
                    self.problem(f"layer `{name}` is called with `{key}`, which has no equivalent")
        for (source, _, index), takers in consumers.items():
            if len(takers) > 1:
                listed = ", ".join(f"`{t}`" for t in takers)
                self.problem(
                    f"the output of `{source}` feeds {len(takers)} layers ({listed}); a spec is a linear chain"
                )
                self._structural = True
            elif index != 0:
                self.problem(
                    f"layer `{takers[0]}` takes output {index} of `{source}`; a spec is a linear chain"
                )
                self._structural = True
        for message in merges:
            self.problem(message)
            self._structural = True
        if self._structural:
            return input_entry["config"], [by_name[name] for name in names], {}
        chain: list[dict[str, Any]] = []
        current = inputs[0]
        while consumers.get(current):
            name = consumers[current][0]
            chain.append(by_name[name])
            current = (name, 0, 0)
        on_chain = {entry["name"] for entry in chain}
        for name in names:
            if name not in on_chain:
                self.problem(f"layer `{name}` is not on the chain from the input to the output")
                self._structural = True
        mask_kwargs = {entry["name"]: nodes[entry["name"]][1].get("mask") for entry in chain}
        return input_entry["config"], chain, mask_kwargs

    def _ends(self, value: Any, what: str, verb: str) -> list[tuple[str, int, int]] | None:
        """The model's inputs or outputs as tensor references; a dict of them is a problem (a spec
        passes them in order, not by name), its tensors still read so that the rest is checked."""
        if isinstance(value, dict):
            names = ", ".join(f"`{key}`" for key in value)
            self.problem(
                f"the model {verb} its {what} as a dict ({names}); a spec {verb} them in order, not by name"
            )
            self._structural = True
            refs = _refs(list(value.values()))
            return refs if refs is not None else []
        refs = _refs(value)
        if refs is None:
            self.problem(f"the model's {what} are not a list of tensors: {_show(value)}")
        elif not refs:
            self.problem(f"the model lists no {what}")
        return refs

    def _preprocessing_front(self, input_cfg, chain):
        """The chain and input after cutting the preprocessing layers at the front (with
        `--after-preprocessing`; without it each is a problem that names the option)."""
        front = []
        for entry in chain:
            if entry["class_name"] not in PREPROCESSING:
                break
            front.append(entry)
        if not front:
            return input_cfg, chain
        if not self.after_preprocessing:
            for entry in front:
                entry["refused"] = True
                self.problem(
                    f"layer `{entry['name']}` ({entry['class_name']}): preprocessing has no equivalent; "
                    "`rnnspec import --after-preprocessing` imports the model from the first layer after it"
                )
            self._preprocessing_input = True  # its string input is part of what is refused
            return input_cfg, chain
        shape = input_cfg.get("batch_shape", input_cfg.get("batch_input_shape")) if input_cfg else None
        dims = list(shape[1:]) if isinstance(shape, list) else None
        dtype = None
        for entry in front:
            config, where = entry["config"], f"layer `{entry['name']}` ({entry['class_name']})"
            if entry["class_name"] == "Normalization":
                dtype = "float32"
                continue
            mode = config.get("output_mode", "int")
            if mode != "int" or config.get("invert") or config.get("ragged") or config.get("sparse"):
                self.problem(
                    f"{where}: with output_mode={_show(mode)}"
                    + (", invert" if config.get("invert") else "")
                    + (", ragged or sparse" if config.get("ragged") or config.get("sparse") else "")
                    + " it emits no token ids; only a front that emits ids (output_mode='int') can be cut"
                )
            if config.get("mask_token") is not None:
                self.problem(
                    f"{where}: its mask_token makes a mask the spec cannot take from its input; "
                    "use mask_zero=True on the Embedding instead"
                )
            dtype = "int64"
            if entry["class_name"] == "TextVectorization":
                length = config.get("output_sequence_length")
                dims = [length if isinstance(length, int) and length > 0 else None]
        cut = front[-1]
        self.cut = [f"`{entry['name']}` ({entry['class_name']})" for entry in front]
        self.cut_groups = [entry["raw"][H5_GROUP] for entry in front if entry["raw"].get(H5_GROUP)]
        self.notes.append(
            f"Imported after the preprocessing front {', '.join(self.cut)}: the spec's input `{cut['name']}` "
            f"is its output; run those layers in Keras and give the spec what `{cut['name']}` returns."
        )
        self._input_ref = (cut["name"], 0, 0)
        batch = [shape[0] if isinstance(shape, list) and shape else None]
        return {"batch_shape": batch + (dims or [None]), "dtype": dtype, "name": cut["name"]}, chain[
            len(front) :
        ]

    # -- one layer --------------------------------------------------------------------------

    def _item(self, entry: dict[str, Any]) -> Item | None:
        class_name, name, config = entry["class_name"], entry["name"], entry["config"]
        where = f"layer `{name}` ({class_name})"
        if entry.get("refused"):
            return None
        if class_name not in KERAS_KINDS:
            module = str(entry["raw"].get("module") or "")
            registered = entry["raw"].get("registered_name")
            # Keras writes the module of a class defined outside Keras, and for one defined in a
            # script (`__main__`) no module but its registered name.
            if (module and not module.startswith("keras")) or (not module and isinstance(registered, str)):
                origin = f"from `{module}`" if module else f"registered as `{registered}`"
                self.problem(
                    f"{where}: a user's layer class ({origin}): declare it in the spec with "
                    "`extern layer` and write the spec by hand (docs/custom-layers.md)"
                )
                return None
            if class_name == "RNN":
                self.problem(f"{where}: {cell_problem(entry['raw'])}")
                return None
            what = "a nested model" if class_name in ("Sequential", "Functional") else "the layer"
            self.problem(f"{where}: {what} has no equivalent in the language")
            return None
        attrs, problems, zero_output = _convert_options(class_name, config)
        inner_item = None
        if class_name == "Bidirectional":
            inner_item, inner_problems = self._bidirectional_inner(config)
            problems += inner_problems
        elif zero_output:
            entry["zero_output_for_mask"] = True
        for message in problems:
            self.problem(f"{where}: {message}")
        if problems:
            return None
        kind = KERAS_KINDS[class_name]
        if config.get("trainable") is False and (
            KINDS[kind].arrays or kind in (*RECURRENT_KINDS, "bidirectional")
        ):
            # Dropped with the options that do not change the forward pass; but fine-tuning the
            # PyTorch module would train what the Keras model keeps fixed.
            self.notes.append(
                f"The Keras layer `{name}` is frozen (trainable=False): the PyTorch module trains it unless its "
                "parameters are given requires_grad_(False)"
                + (
                    " (Keras also runs a frozen BatchNormalization in inference mode)"
                    if kind == "batch_normalization"
                    else ""
                )
                + "."
            )
        return Item(kind, attrs, name, class_name, inner_item)

    def _bidirectional_inner(self, config: dict[str, Any]) -> tuple[Item | None, list[str]]:
        forward, backward = config.get("layer"), config.get("backward_layer")
        if not isinstance(forward, dict):
            return None, ["the wrapped layer is missing"]
        if forward.get("class_name") == "RNN":
            forward, written_as = plain_rnn(forward)
            if written_as is None:
                return None, [f"the wrapped RNN: {cell_problem(forward)}"]
        if isinstance(backward, dict) and backward.get("class_name") == "RNN":
            backward, _ = plain_rnn(backward)
        f_class = forward.get("class_name")
        if f_class not in RNN_CLASSES:
            return None, [f"it wraps a `{f_class}`; only SimpleRNN, LSTM and GRU have an equivalent"]
        f_attrs, problems, _ = _convert_options(f_class, forward.get("config") or {})
        problems = [f"wrapped `{f_class}`: {p}" for p in problems]
        if isinstance(backward, dict):
            b_class = backward.get("class_name")
            differs: list[str] = []
            if b_class != f_class:
                differs.append(f"it is a `{b_class}`")
            else:
                b_attrs, b_problems, _ = _convert_options(b_class, backward.get("config") or {})
                if b_problems:
                    differs += b_problems
                for key in LAYER_SCHEMAS[KERAS_KINDS[f_class]].attrs:
                    if key == "go_backwards":
                        if b_attrs.get(key) == f_attrs.get(key):
                            differs.append("it runs in the same direction as the forward layer")
                    elif b_attrs.get(key) != f_attrs.get(key):
                        differs.append(
                            f"`{key}` is {_show(b_attrs.get(key))}, the forward layer's {_show(f_attrs.get(key))}"
                        )
            if differs:
                problems.append("a custom `backward_layer` has no equivalent (" + "; ".join(differs) + ")")
        if problems:
            return None, problems
        return Item(
            KERAS_KINDS[f_class], f_attrs, str((forward.get("config") or {}).get("name", "")), f_class
        ), []

    # -- masks ------------------------------------------------------------------------------

    def _mask_step(self, entry: dict[str, Any], item: Item | None, given: Any) -> None:
        """Follow the mask as Keras propagates it; a layer given any other mask is refused."""
        where = f"layer `{entry['name']}` ({entry['class_name']})"
        ref = _ref(given) if given is not None else None
        if given is not None and self._mask_source == "unknown":
            self._used_ops |= self._op_closure(ref)  # after a refused layer: already reported
        elif given is not None:
            matched = self._mask_ops(ref, self._mask_source, self._mask_input) if ref is not None else None
            if matched is None:
                self.problem(
                    f"{where}: it is given a mask other than the one Keras propagates, which has no equivalent"
                )
            else:
                self._used_ops |= matched
        if entry.get("zero_output_for_mask") and self._mask_source not in (None, "unknown"):
            self.problem(
                f"{where}: `zero_output_for_mask=true` on a masked sequence (masked timesteps output zeros) "
                "has no equivalent"
            )
        here = self._previous_ref
        self._previous_ref = (entry["name"], 0, 0)
        if item is None:
            self._mask_source = "unknown"
            return
        if item.kind == "embedding":
            self._mask_source = ("embedding", 0) if item.attrs["mask_zero"] else None
            self._mask_input = here
        elif item.kind == "masking":
            self._mask_source = ("masking", item.attrs["mask_value"])
            self._mask_input = here
        elif not KINDS[item.kind].keeps_mask(_as_layer(item)):
            self._mask_source = None

    def _op_closure(self, ref: tuple[str, int, int] | None) -> set[str]:
        found: set[str] = set()
        todo = [ref]
        while todo:
            one = todo.pop()
            if one is None or one[0] not in self._ops or one[0] in found:
                continue
            found.add(one[0])
            todo += _all_refs(self._nodes[one[0]][0])
        return found

    def _mask_ops(self, ref, source, source_input) -> set[str] | None:
        """The op nodes that compute the mask `ref`, if it is exactly the propagated mask; else None."""
        if source is None or source_input is None:
            return None
        ops, nodes = self._ops, self._nodes
        kind, value = source
        if kind == "embedding":
            if (
                ref[0] in ops
                and ops[ref[0]]["class_name"] == "NotEqual"
                and _is_not_equal(nodes[ref[0]], source_input, 0)
            ):
                return {ref[0]}
            return None
        # masking: any(not_equal(x, value), axis=-1)
        if ref[0] not in ops or ops[ref[0]]["class_name"] != "Any":
            return None
        any_config = ops[ref[0]]["config"]
        if any_config.get("axis") not in (-1, [-1]) or any_config.get("keepdims"):
            return None
        args, kwargs = nodes[ref[0]]
        if len(args) != 1 or kwargs or _ref(args[0]) is None:
            return None
        inner = _ref(args[0])[0]
        if (
            inner in ops
            and ops[inner]["class_name"] == "NotEqual"
            and _is_not_equal(nodes[inner], source_input, value)
        ):
            return {ref[0], inner}
        return None

    def _check_outputs(self, inner, chain, last: Item) -> None:
        rec = last.inner if last.inner is not None else last
        count = 1
        if last.kind == "bidirectional" and last.attrs["merge_mode"] == "none":
            count = 2
        if rec.kind in RECURRENT_KINDS and rec.attrs["return_state"]:
            count += (2 if rec.kind == "lstm" else 1) * (2 if last.kind == "bidirectional" else 1)
        name = chain[-1]["name"]
        expected = [(name, 0, index) for index in range(count)]
        main = 2 if last.kind == "bidirectional" and last.attrs["merge_mode"] == "none" else 1
        if count > main and self._outputs == expected[:main]:
            # The states are computed but not returned: the same function as return_state=false.
            rec.attrs["return_state"] = False
            self.notes.append(
                f"The model returns no states of `{name}`, so the spec leaves return_state off."
            )
        elif self._outputs != expected:
            shown = ", ".join(f"`{n}`[{i}]" for n, _, i in self._outputs)
            self.problem(
                f"the model returns {shown}; a spec returns every output of its last layer `{name}`, in order "
                f"({count} tensor{'s' if count > 1 else ''})"
            )

    # -- input and text ---------------------------------------------------------------------

    def _input(self, config: dict[str, Any] | None, items: list[Item | None]) -> str | None:
        if config is None:
            return None
        read = _input_config(self.problem, config, rank=1)
        if read is None:
            return None
        name, shape, dtype = read
        batch, dims = shape[0], shape[1:]
        first = next((item for item in items if item is not None), None)
        if dtype not in ("int32", "int64", "float32"):
            if (
                first is not None
                and first.kind == "embedding"
                and dtype in ("int8", "int16", "uint8", "uint16", "uint32")
            ):
                self.notes.append(f"The Keras input is {dtype}; the spec takes int32 token ids.")
                dtype = "int32"
            else:
                if not self._preprocessing_input:  # else part of the preprocessing front refused
                    self.problem(
                        f"input `{name}`: dtype `{dtype}` has no equivalent (int32, int64 or float32)"
                    )
                return None
        if dtype == "float32" and first is not None and first.kind == "embedding":
            # Keras's Embedding casts its input to int32; token ids are the same function.
            self.notes.append(
                "The Keras input is float32; its Embedding casts it to int32, so the spec takes int32 ids."
            )
            dtype = "int32"
        if dtype.startswith("int") and len(dims) != 1:
            self.problem(
                f"input `{name}`: an integer input of shape {_show(shape)} has no equivalent (token ids are [batch, time])"
            )
            return None
        if dtype == "float32" and (len(dims) not in (1, 2) or dims[-1] is None):
            self.problem(
                f"input `{name}`: the shape {_show(shape)} has no equivalent "
                "(float inputs are [batch, features] or [batch, time, features] with fixed features)"
            )
            return None
        stateful = any(
            item is not None
            and (item.inner or item).kind in RECURRENT_KINDS
            and (item.inner or item).attrs["stateful"]
            for item in items
        )
        self._batch = None
        if batch is not None:
            if stateful:
                self._batch = batch
            else:
                self.notes.append(
                    f"The Keras model fixes the batch size at {batch}; this stateless spec leaves it free."
                )
        self._input_name = _identifier(name, "x", "input")
        dims_text = ", ".join("*" if d is None else str(d) for d in dims)
        return f"input {self._input_name}: {dtype}[{dims_text}]"

    def _render(self, model_name: str, header: str, items: list[Item]) -> str:
        used = {self._input_name}
        counts: dict[str, int] = {}
        lines = []
        for item in items:
            counts[item.kind] = counts.get(item.kind, 0) + 1
            auto = f"{item.kind}_{counts[item.kind]}"
            name = _identifier(item.keras_name, item.kind, "layer")
            base, n = name, 1
            while name in used:
                n += 1
                name = f"{base}_{n}"
            used.add(name)
            if name != item.keras_name:
                self.notes.append(f"The Keras layer `{item.keras_name}` is `{name}` here.")
            item.name = name
            alias = "" if name == auto else f" as {name}"
            lines.append(f"    {_call(item)}{alias}")
        options = f"(batch_size={self._batch})" if self._batch is not None else ""
        version = f" (Keras {self.keras_version})" if self.keras_version else ""
        # Names from the archive are printable and on one line in a comment: none can start a
        # statement of the spec.
        head = [f"# {comment_text(f'Imported by rnnspec from {self.source_name}{version}.')}"]
        head += [f"# {comment_text(note)}" for note in self.notes]
        return "\n".join([*head, f"model {model_name}{options} {{", f"    {header}", *lines, "}"]) + "\n"


def _as_layer(item: Item) -> Layer:
    """An import item as the IR layer it will be, for asking its kind."""
    inner = _as_layer(item.inner) if item.inner is not None else None
    return Layer(item.name or item.keras_name, item.kind, item.attrs, Pos(1, 1), inner=inner)


def _is_not_equal(node, source_input, value) -> bool:
    args, kwargs = node
    if kwargs or len(args) != 2 or _ref(args[0]) != source_input:
        return False
    other = args[1]
    return isinstance(other, (int, float)) and not isinstance(other, bool) and float(other) == float(value)


def _all_refs(value: Any) -> list[tuple[str, int, int]]:
    """Every tensor reference in a node's (nested) arguments, in order."""
    if _is_tensor_ref(value):
        ref = _ref(value)
        return [ref] if ref is not None else []
    if isinstance(value, (list, tuple)):
        return [ref for one in value for ref in _all_refs(one)]
    if isinstance(value, dict):
        return [ref for one in value.values() for ref in _all_refs(one)]
    return []


def _refs(value: Any) -> list[tuple[str, int, int]] | None:
    """input_layers / output_layers: one [name, node, index] or a list of them."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        value = [value]
    if not isinstance(value, list):
        return None
    refs = [_history(one) for one in value]
    return None if any(ref is None for ref in refs) else refs


def spec_literal(value: Any) -> str:
    if isinstance(value, tuple):  # reshape's sizes: one argument each
        return ", ".join(spec_literal(one) for one in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        assert _NUMBER.match(text), text
        return text
    assert isinstance(value, str) and value.isidentifier(), value
    return value


def _spec_attr(attr: Attr, value: Any) -> str:
    """One argument's value as a spec writes it: a 2-D window's (height, width) as `[h, w]`."""
    if attr.type == "size_2d" and isinstance(value, tuple):
        return "[" + ", ".join(spec_literal(one) for one in value) + "]"
    return spec_literal(value)


def _call(item: Item) -> str:
    schema = LAYER_SCHEMAS[item.kind]
    args = []
    for key in schema.positional:
        if key == "layer" and isinstance(item.attrs.get(key), dict):  # time_distributed(dense(...))
            args.append(_call(Item("dense", item.attrs[key], "", "Dense")))
        elif key == "layer":
            assert item.inner is not None
            args.append(_call(item.inner))
        else:
            args.append(_spec_attr(schema.attrs[key], item.attrs[key]))
    for key, attr in schema.attrs.items():
        if key in schema.positional or item.attrs[key] == attr.default:
            continue
        args.append(f"{key}={_spec_attr(attr, item.attrs[key])}")
    return f"{item.kind}({', '.join(args)})"


MAX_ARCHIVE_ENTRIES = 1_000


def _zip_entries(path: Path) -> int | None:
    """The number of files a zip archive lists, from its end record, before zipfile reads its whole
    central directory (a million empty entries cost zipfile seconds and hundreds of MB)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - (22 + 65535)))
            tail = handle.read()
    except OSError:
        return None  # zipfile will say what is wrong
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 12:
        return None
    count = int.from_bytes(tail[at + 10 : at + 12], "little")
    return None if count == 0xFFFF else count  # 0xFFFF: a zip64 count, which zipfile reads


def read_member(archive: zipfile.ZipFile, name: str, limit: int, path: Path) -> bytes:
    """One file of a zip archive, refusing more than `limit` bytes uncompressed (a zip bomb
    declares a small size or none; the bytes are counted as they come)."""
    try:
        with archive.open(name) as handle:
            data = handle.read(limit + 1)
    except RuntimeError as exc:  # an encrypted member: zipfile asks for a password
        raise UsageError(f"{path}: error: cannot read {name} from the archive: {exc}") from None
    if len(data) > limit:
        raise UsageError(
            f"{path}: error: {name} in the archive unpacks to more than {limit:,} bytes; "
            "rnnspec refuses to read it (a damaged or hostile archive?)"
        )
    return data


def read_keras_archive(path: Path) -> tuple[dict[str, Any], str | None]:
    """The config and Keras version of a `.keras` archive, with no framework imported."""
    require_regular_file(path)
    entries = _zip_entries(path)
    if entries is not None and entries > MAX_ARCHIVE_ENTRIES:
        raise UsageError(
            f"{path}: error: the archive lists {entries:,} files; a .keras archive holds 3 "
            f"(rnnspec reads archives of at most {MAX_ARCHIVE_ENTRIES:,})"
        )
    try:
        if not zipfile.is_zipfile(path):
            with open(path, "rb") as handle:
                magic = handle.read(8)
            if magic == b"\x89HDF\r\n\x1a\n" and path.name.lower().endswith(".weights.h5"):
                raise UsageError(
                    f"{path}: error: a .weights.h5 file holds weights, not the architecture: import the "
                    "model's `.keras` archive (`model.save('model.keras')`), or write the spec and bring these "
                    f"weights with `rnnspec port SPEC --from {path} --to OUT`"
                )
            if magic == b"\x89HDF\r\n\x1a\n":
                raise UsageError(
                    f"{path}: error: this is a legacy HDF5 model file; load it in Keras and save it as .keras"
                )
            if magic.startswith(b"PK\x03\x04"):  # a zip's first entry, but no directory at its end
                raise UsageError(
                    f"{path}: error: the .keras archive is truncated or damaged (the zip has no central "
                    "directory at its end); copy or save it again"
                )
            raise UsageError(f"{path}: error: not a .keras archive (a zip file holding config.json)")
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "config.json" not in names:
                raise UsageError(f"{path}: error: the archive holds no config.json; is it a .keras model?")
            config = json.loads(read_member(archive, "config.json", MAX_CONFIG_BYTES, path))
            why = check_config_shape(config)
            if why:
                raise UsageError(f"{path}: error: {why}")
            version = None
            if "metadata.json" in names:
                try:
                    version = json.loads(read_member(archive, "metadata.json", 1 << 20, path)).get(
                        "keras_version"
                    )
                except (ValueError, AttributeError, RecursionError, UsageError):
                    version = None
    except OSError as exc:
        raise UsageError(f"{path}: error: cannot read the file: {exc.strerror or exc}") from None
    except (ValueError, zipfile.BadZipFile, RecursionError, NotImplementedError, EOFError) as exc:
        detail = "it nests too deeply" if isinstance(exc, RecursionError) else exc
        raise UsageError(f"{path}: error: the archive's config.json cannot be read: {detail}") from None
    if not isinstance(config, dict):
        raise UsageError(f"{path}: error: config.json does not describe a model")
    return config, version if isinstance(version, str) else None


def import_model(path: Path, after_preprocessing: bool = False) -> Imported:
    """The spec for a `.keras` file; ImportRefused lists every part without an equivalent.

    With `after_preprocessing`, the model's preprocessing front (TextVectorization and the like)
    is cut and the spec starts at the first layer after it."""

    config, version = read_keras_archive(path)
    try:
        imported = _Converter(config, path.name, version, after_preprocessing).run()
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError) as exc:
        # A config no Keras wrote: wrong types in places the checks above do not look.
        raise ImportRefused(
            [
                f"config.json is malformed ({type(exc).__name__}: {str(exc)[:200]}); "
                "was the archive written by Keras 3's model.save()?"
            ]
        ) from None
    try:
        load_model(imported.text)
    except SpecError as exc:
        raise ImportRefused(
            [f"rnnspec refuses the spec it would need: {d.message}" for d in exc.diagnostics]
        ) from None
    return imported


# ---------------------------------------------------------------------------------------------
# Functional graphs
# ---------------------------------------------------------------------------------------------
# `rnnspec import` of a functional model that is not a chain: the v1 spec of its graph.
#
# Several inputs and outputs (a list, or a dict whose keys become comments), merges, layers called
# more than once (shared weights), `initial_state=[...]`, explicit `mask=` inputs, and outputs
# other than a layer's first (states). The layers themselves are converted as the chain importer
# converts them (above: one problem per option without an equivalent).
#
# Masks: a layer call's `mask` in config.json is either a bool `Input` (an explicit mask, `mask=m`
# in the spec) or a tensor Keras computed itself when it passed the input's mask on (ops such as
# NotEqual, LogicalOr, Any); the spec derives the latter as Keras does. Next to `initial_state`,
# Keras passes no mask by itself (tests/test_keras_facts.py, fact 30), so a computed mask there was
# the user's own: refused.

Ref = tuple[str, int, int]


def is_graph_config(inner: dict[str, Any], layers: list[Any]) -> bool:
    """Whether a functional config needs the graph form: not one input feeding a chain to one output."""

    inputs, outputs = _refs(inner.get("input_layers")), _refs(inner.get("output_layers"))
    named = isinstance(inner.get("output_layers"), dict) or isinstance(inner.get("input_layers"), dict)
    if named or inputs is None or outputs is None:
        return named
    if len(inputs) != 1 or len(outputs) != 1 or outputs[0][2] != 0:
        return True
    takers: dict[Ref, int] = {}
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        nodes = layer.get("inbound_nodes")
        if not isinstance(nodes, list):
            continue
        if len(nodes) > 1:
            return True
        if str(layer.get("module", "")).startswith("keras.src.ops"):
            continue  # a mask computation
        for node in nodes:
            if not isinstance(node, dict):
                continue
            args, kwargs = node.get("args") or [], node.get("kwargs") or {}
            if isinstance(kwargs, dict) and kwargs.get("initial_state") is not None:
                return True
            refs = _all_refs(args)
            if len(refs) != 1 or any(ref[2] != 0 for ref in refs):
                return True
            for ref in refs:
                takers[ref] = takers.get(ref, 0) + 1
    return any(count > 1 for count in takers.values())


def convert_graph(conv: _Converter, inner: dict[str, Any], layers: list[Any]) -> str | None:
    """The spec text of a functional graph; problems go to `conv.problem` (None when any)."""

    entries = [conv._entry(layer, index) for index, layer in enumerate(layers)]
    by_name = {entry["name"]: entry for entry in entries}
    raw_outputs = inner.get("output_layers")
    keys: list[str] = []
    if isinstance(raw_outputs, dict):
        keys = [str(key) for key in raw_outputs]
        raw_outputs = list(raw_outputs.values())
    raw_inputs = inner.get("input_layers")
    input_keys: list[str] = []
    if isinstance(raw_inputs, dict):  # the spec takes them in this order, as the note says
        input_keys = [str(key) for key in raw_inputs]
        raw_inputs = list(raw_inputs.values())
    inputs, outputs = _refs(raw_inputs), _refs(raw_outputs)
    if inputs is None or outputs is None:
        conv.problem("the model's inputs or outputs are not tensors")
        return None
    ops = {e["name"] for e in entries if str(e["raw"].get("module", "")).startswith("keras.src.ops")}
    # Every call of every layer: (layer name, node index) -> (args, kwargs).
    calls: dict[tuple[str, int], tuple[list[Any], dict[str, Any]]] = {}
    order: list[tuple[str, int]] = []
    for entry in entries:
        if entry["class_name"] == "InputLayer":
            continue
        raw_nodes = entry["raw"].get("inbound_nodes")
        if not isinstance(raw_nodes, list) or not raw_nodes:
            conv.problem(f"layer `{entry['name']}` is never called")
            continue
        for index, node in enumerate(raw_nodes):
            if not isinstance(node, dict) or "args" not in node:
                conv.problem(
                    "the config uses the Keras 2 graph format; load the model in Keras 3 and save it again"
                )
                return None
            args, kwargs = node.get("args") or [], node.get("kwargs") or {}
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                conv.problem(f"layer `{entry['name']}`: its call in config.json is malformed (args, kwargs)")
                return None
            calls[(entry["name"], index)] = (args, kwargs)
            if entry["name"] not in ops:
                order.append((entry["name"], index))
    conv._ops = {name: by_name[name] for name in ops}  # for conv._op_closure
    conv._nodes = {name: calls[(name, 0)] for name in ops if (name, 0) in calls}
    # Inputs, in the model's order.
    names: dict[Ref, str] = {}
    taken: set[str] = set()
    header: list[str] = []
    for ref in inputs:
        entry = by_name.get(ref[0])
        if entry is None or entry["class_name"] != "InputLayer":
            conv.problem(f"input `{ref[0]}` is not an InputLayer")
            continue
        line = _input_line(conv, entry["config"], taken)
        if line is not None:
            header.append(line)
            names[ref] = line.split()[1].rstrip(":")
            taken.add(names[ref])
    # Topological order of the calls (the config lists layers as they were created).
    done: set[tuple[str, int]] = set()
    ordered: list[tuple[str, int]] = []
    pending = list(order)
    while pending:
        progressed = False
        for call in list(pending):
            args, kwargs = calls[call]
            needs = {
                (ref[0], ref[1])
                for ref in _all_refs([args, kwargs.get("initial_state")])
                if ref[0] not in ops and (ref[0], ref[1]) in calls
            }
            if needs <= done:
                done.add(call)
                ordered.append(call)
                pending.remove(call)
                progressed = True
        if not progressed:
            conv.problem("the model's graph has a cycle")
            return None
    items: dict[str, Item | None] = {}
    layer_names: dict[str, str] = {}
    lines: list[str] = []
    masks_used: set[str] = set()
    read: set[str] = set()  # the values some call takes
    for layer_name, index in ordered:
        entry = by_name[layer_name]
        if layer_name not in items:
            items[layer_name] = conv._item(entry)
            base = _identifier(layer_name, "layer", "layer")
            name = base
            n = 1
            while name in taken or name in layer_names.values():
                n += 1
                name = f"{base}_{n}"
            if name != layer_name:
                conv.notes.append(f"The Keras layer `{layer_name}` is `{name}` here.")
            layer_names[layer_name] = name
        item = items[layer_name]
        args, kwargs = calls[(layer_name, index)]
        where = f"layer `{layer_name}`" + (f" (call {index + 1})" if index else "")
        if item is None:
            continue
        values = _all_refs(args)
        if any(ref[0] in ops for ref in values):
            conv.problem(
                f"{where} takes a tensor computed by an operation (`{values[0][0]}`), which has no equivalent"
            )
            continue
        parts = [names.get(ref) for ref in values]
        if None in parts:
            continue  # its input was refused
        read.update(parts)  # type: ignore[arg-type]
        state = kwargs.get("initial_state")
        state_refs = _all_refs(state) if state is not None else []
        extra: list[str] = []
        if state_refs:
            state_names = [names.get(ref) for ref in state_refs]
            if None in state_names:
                continue
            extra.append(f"initial_state=[{', '.join(state_names)}]")  # type: ignore[arg-type]
            read.update(state_names)  # type: ignore[arg-type]
        mask = kwargs.get("mask")
        mask_refs = _all_refs(mask) if mask is not None else []
        if mask_refs:
            source = mask_refs[0]
            source_entry = by_name.get(source[0])
            if source_entry is not None and source_entry["class_name"] == "InputLayer" and source in names:
                extra.append(f"mask={names[source]}")
                read.add(names[source])
            elif source[0] in ops and not state_refs:
                masks_used |= conv._op_closure(source)  # the mask Keras passed on itself
            else:
                conv.problem(
                    f"{where} is given a mask computed in the model next to its initial_state (Keras passes "
                    "none there by itself); declare it as a bool input to import it"
                )
                continue
        for key, value in kwargs.items():
            if key == "training" and value is True:
                conv.problem(f"{where} is called with training=True, which changes its output")
            elif key not in ("mask", "training", "initial_state"):
                conv.problem(f"{where} is called with `{key}`, which has no equivalent")
        layer = _as_layer_named(item, layer_names[layer_name])
        count = len(output_names(layer)) if layer.kind not in MERGE_KINDS else 1
        targets = []
        for position in range(count):
            ref = (layer_name, index, position)
            if position == 0:
                base = layer_names[layer_name] if index == 0 else f"{layer_names[layer_name]}_{index}"
            else:
                base = f"{layer_names[layer_name]}{'_' + str(index) if index else ''}_{output_names(layer)[position]}"
            target = base
            n = 1
            while target in taken:
                n += 1
                target = f"{base}_{n}"
            taken.add(target)
            names[ref] = target
            targets.append(target)
        call_text = f"{targets[0] if count == 1 else ', '.join(targets)} = "
        inputs_text = ", ".join([*parts, *extra])  # type: ignore[list-item]
        if index == 0:
            # A merge has no weights: it is left for Keras to name, as the spec's unnamed merges
            # are (an explicit `concatenate` could clash with the ops of a masked Concatenate).
            unnamed = item.kind in MERGE_KINDS and len([c for c in ordered if c[0] == layer_name]) == 1
            alias = "" if unnamed else f" as {layer_names[layer_name]}"
            item.name = layer_names[layer_name]
            call_text += f"{_call(item)}({inputs_text}){alias}"
        else:
            call_text += f"{layer_names[layer_name]}({inputs_text})"
        lines.append(call_text)
    for op in ops - masks_used:
        conv.problem(f"operation `{op}` ({by_name[op]['class_name']}) has no equivalent")
    shown = [names.get(ref) for ref in outputs]
    if None in shown or conv.problems:
        return None
    read.update(shown)  # type: ignore[arg-type]
    lines = [_drop_unread(line, read) for line in lines]  # a spec warns about names nothing reads
    stateful = any(item is not None and (item.inner or item).attrs.get("stateful") for item in items.values())
    if conv._batch is not None and not stateful:
        conv.notes.append(
            f"The Keras model fixes the batch size at {conv._batch}; this stateless spec leaves it free."
        )
        conv._batch = None
    if input_keys:
        conv.notes.append(
            "The model's inputs are named; the spec takes them in this order: "
            + ", ".join(f"{k} -> `{ref[0]}`" for k, ref in zip(input_keys, inputs))
        )
    if keys:
        conv.notes.append(
            "The model's outputs are named: " + ", ".join(f"{k} -> `{v}`" for k, v in zip(keys, shown))
        )
    body = [*header, *lines, f"output {', '.join(shown)}"]  # type: ignore[arg-type]
    return "\n".join(f"    {line}" for line in body)


def _drop_unread(line: str, read: set[str]) -> str:
    targets, rest = line.split(" = ", 1)
    parts = targets.split(", ")
    if len(parts) == 1:
        return line
    return ", ".join(p if p in read else "_" for p in parts) + " = " + rest


def _as_layer_named(item: Item, name: str):

    layer = _as_layer(item)
    layer.name = name
    return layer


def _input_config(
    problem: Callable[[str], None], config: dict[str, Any], rank: int
) -> tuple[str, list[int | None], Any] | None:
    """An InputLayer's name, batch shape (at least `rank` long) and dtype; what has no equivalent
    reported."""
    shape = config.get("batch_shape", config.get("batch_input_shape"))
    dtype = config.get("dtype", "float32")
    if isinstance(dtype, dict):
        dtype = (dtype.get("config") or {}).get("name")
    name = str(config.get("name") or "x")
    for key in ("sparse", "ragged", "optional"):
        if config.get(key):
            problem(f"input `{name}`: `{key}=true` has no equivalent")
    if (
        not isinstance(shape, list)
        or len(shape) < rank
        or not all(d is None or isinstance(d, int) for d in shape)
    ):
        problem(f"input `{name}`: the shape {_show(shape)} has no equivalent")
        return None
    return name, shape, dtype


def _input_line(conv: _Converter, config: dict[str, Any], taken: set[str]) -> str | None:
    read = _input_config(conv.problem, config, rank=2)
    if read is None:
        return None
    raw, shape, dtype = read
    dims = shape[1:]
    if dtype not in ("int32", "int64", "float32", "bool"):
        conv.problem(f"input `{raw}`: dtype `{dtype}` has no equivalent (int32, int64, float32 or bool)")
        return None
    if dtype != "float32" and len(dims) != 1:
        conv.problem(
            f"input `{raw}`: a {dtype} input of shape {_show(shape)} has no equivalent ([batch, time])"
        )
        return None
    if dtype == "float32" and dims[-1] is None:
        conv.problem(
            f"input `{raw}`: the shape {_show(shape)} has no equivalent (the last dimension must be fixed)"
        )
        return None
    if shape[0] is not None:
        conv._batch = shape[0]
    name = _identifier(raw, "x", "input")
    base, n = name, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    if name != raw:
        conv.notes.append(f"The Keras input `{raw}` is `{name}` here.")
    return f"input {name}: {dtype}[{', '.join('*' if d is None else str(d) for d in dims)}]"
