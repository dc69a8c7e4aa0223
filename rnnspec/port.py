"""`rnnspec port`: trained weights between Keras (`.keras`, `.weights.h5`) and PyTorch (`.pt`).

Every array's name and shape is checked against the spec; the conversion is the IR-driven mapping
in rnnspec/equivalence/weights.py. Frameworks (keras, torch, numpy, h5py) are imported inside the
functions that need them only.
"""

from __future__ import annotations

import json
import re
import warnings
import zipfile
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnnspec.check import load_model
from rnnspec.compiler import generate
from rnnspec.equivalence.harness import load_program
from rnnspec.equivalence.weights import (
    get_keras_weights,
    keras_to_torch,
    keras_weight_shapes,
    load_torch_state,
    set_keras_weights,
    torch_to_keras,
)
from rnnspec.errors import Unsupported, first_lines
from rnnspec.errors import UserError as UsageError
from rnnspec.files import replacing, require_regular_file
from rnnspec.frameworks import import_frameworks, quiet_stderr
from rnnspec.importer import (
    CELL_LAYERS,
    Imported,
    ImportRefused,
    import_model,
    read_keras_archive,
    read_member,
    spec_literal,
)
from rnnspec.ir import MERGE_KINDS, Layer, Model
from rnnspec.kinds import kind_of
from rnnspec.text import escape_unprintable

if TYPE_CHECKING:
    import numpy as np

# ---------------------------------------------------------------------------------------------
# rnnspec port
# ---------------------------------------------------------------------------------------------

FORMATS = {".keras": "keras", ".weights.h5": "weights.h5", ".pt": "pt", ".pth": "pt"}
FRAMEWORK = {"keras": "Keras", "weights.h5": "Keras", "pt": "PyTorch"}
TOOL = "rnnspec port"


def weights_format(path: Path) -> str | None:
    name = path.name.lower()
    for suffix, fmt in FORMATS.items():
        if name.endswith(suffix) and len(name) > len(suffix):
            return fmt
    return None


def unknown_format(path: Path, writing: bool = False) -> UsageError:
    """The refusal of a weights file name no format has; a `.h5` gets what to do instead."""
    if path.suffix.lower() in (".h5", ".hdf5"):
        stem = path.name[: -len(path.suffix)]
        if writing:
            why = f"Keras 3 saves and loads weights only under a name ending in .weights.h5: write {stem}.weights.h5"
        else:
            why = (
                "a legacy HDF5 file (`model.save` or `save_weights` to .h5) is not read; load it in Keras "
                f"and save it as .keras (`keras.saving.load_model(...).save('{stem}.keras')`) or its weights "
                f"with `save_weights('{stem}.weights.h5')`"
            )
        return UsageError(f"{path}: error: {why}")
    return UsageError(f"{path}: error: unknown weights format; use a .keras, .weights.h5 or .pt file")


def keras_array_names(layer: Layer) -> list[str]:
    """Names for the arrays `get_weights()` gives for one spec layer, as messages show them."""
    if layer.extern is not None:
        return []
    return [f"{layer.name}.{name}" for name, _ in kind_of(layer, TOOL).keras_weights(layer, 0)]


def h5_paths(model: Model, groups: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Where Keras 3 keeps each spec layer's arrays in a `.weights.h5` file (layers named by class),
    or under `groups[layer name]`, where an imported archive keeps them (an RNN(LSTMCell) that is
    `lstm` here, a layer of a nested model)."""
    used: dict[str, int] = {}
    paths: dict[str, list[str]] = {}
    for layer in model.layers:
        kind = kind_of(layer, TOOL)
        base = kind.h5_name
        if not base:
            raise Unsupported.of(layer.kind, TOOL, layer.pos)
        if base in used:
            used[base] += 1
            base = f"{base}_{used[base]}"
        else:
            used[base] = 0
        group = groups[layer.name] if groups and groups.get(layer.name) else f"layers/{base}"
        count = len(keras_array_names(layer))
        if count:
            paths[layer.name] = kind.h5_paths(layer, group, count)
    return paths


def _shape(shape: Any) -> str:
    return str(tuple(int(d) for d in shape))


class WeightsMismatch(UsageError):
    """The arrays in a weights file do not fit the spec: one line per array."""


def _not_finite(array: np.ndarray) -> str | None:
    """Why float32 weights cannot be trained or compared (inf or NaN, or beyond float32), or None."""
    import numpy as np

    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        verb = "is" if bad == 1 else "are"
        return (
            f"{bad:,} of its {array.size:,} values {verb} not finite in float32 (inf, NaN, or beyond float32)"
        )
    return None


def _mismatch(path: Path, model: Model, spec_path: str, problems: list[str]) -> WeightsMismatch:
    head = f"{path}: error: the weights do not fit the spec's model `{model.name}` ({spec_path}):"
    # One line per problem: a key from the file cannot start a line of its own.
    shown = first_lines([f"  {escape_unprintable(p)}" for p in problems])
    return WeightsMismatch("\n".join([head, *shown]))


def _read_h5(
    model: Model,
    handle: Any,
    path: Path,
    spec_path: str,
    groups: dict[str, str] | None = None,
    ignored: tuple[str, ...] = (),
) -> dict[str, list[np.ndarray]]:
    """Keras arrays per spec layer from an open `.weights.h5`, every name and shape checked
    (arrays under the `ignored` groups excepted)."""
    try:
        _refuse_outside_references(handle, path)
        return _read_h5_arrays(model, handle, path, spec_path, groups, ignored)
    except WeightsMismatch:
        raise
    except (OSError, KeyError, RuntimeError, ValueError, TypeError, AttributeError, OverflowError) as exc:
        # h5py's errors for a damaged file: truncated data, a group where a dataset belongs, ...
        detail = (str(exc).splitlines() or [""])[0][:200]
        raise UsageError(
            f"{path}: error: the HDF5 weights cannot be read ({type(exc).__name__}: {detail})"
        ) from None


def _refuse_outside_references(handle: Any, path: Path) -> None:
    """Refuse HDF5 that reads from elsewhere: external links, external storage, virtual datasets.

    Keras writes none of them; following one would read (or block on) any file the user can
    open. Checked before any data is read, without resolving a link.
    """
    import h5py

    todo, seen = [("", handle)], 0
    while todo:
        prefix, group = todo.pop()
        for name in group.keys():
            seen += 1
            if seen > 100_000:
                raise UsageError(
                    f"{path}: error: the HDF5 file holds more than 100,000 objects; not a Keras file"
                )
            where = f"{prefix}/{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, (h5py.ExternalLink, h5py.SoftLink)):
                kind = "an external link" if isinstance(link, h5py.ExternalLink) else "a soft link"
                raise UsageError(f"{path}: error: {where} is {kind}; Keras weights files hold no links")
            obj = group.get(name)
            if isinstance(obj, h5py.Group):
                todo.append((where, obj))
            elif isinstance(obj, h5py.Dataset) and (obj.external or obj.is_virtual):
                kind = "stored in another file" if obj.external else "a virtual dataset"
                raise UsageError(
                    f"{path}: error: {where} is {kind}; port reads weights held in the file only"
                )


def expected_weight_bytes(model: Model) -> int:
    """About what a Keras weights file of this spec holds: its float32 arrays, plus HDF5's overhead."""
    arrays = [shape for shapes in keras_weight_shapes(model).values() for shape in shapes]
    return 4 * sum(prod(shape) for shape in arrays) + 4096 * (len(arrays) + len(model.layers)) + (1 << 20)


def _read_h5_arrays(
    model: Model,
    handle: Any,
    path: Path,
    spec_path: str,
    groups: dict[str, str] | None = None,
    ignored: tuple[str, ...] = (),
) -> dict[str, list[np.ndarray]]:
    import numpy as np

    shapes = keras_weight_shapes(model)
    paths = h5_paths(model, groups)
    problems: list[str] = []
    weights: dict[str, list[np.ndarray]] = {}
    expected: set[str] = set()
    for layer in model.layers:
        if layer.name not in paths or not paths[layer.name]:
            continue
        arrays = []
        for name, where, need in zip(keras_array_names(layer), paths[layer.name], shapes[layer.name]):
            expected.add(where)
            dataset = handle.get(where)
            if dataset is None or not hasattr(dataset, "shape"):
                problems.append(
                    f"{name}: the spec needs shape {_shape(need)}, the file has no such array ({where})"
                )
                continue
            if tuple(dataset.shape) != tuple(need):
                problems.append(
                    f"{name}: the spec needs shape {_shape(need)}, the file has {_shape(dataset.shape)}"
                )
                continue
            if dataset.dtype.kind != "f":
                problems.append(
                    f"{name}: the file holds {dataset.dtype} values; the spec needs floating point"
                )
                continue
            array = np.asarray(dataset[()], dtype=np.float32)
            why = _not_finite(array)
            if why:
                problems.append(f"{name}: {why}")
                continue
            arrays.append(array)
        weights[layer.name] = arrays
    extra: list[str] = []
    if "layers" in handle:

        def visit(name: str, obj: Any) -> None:
            full = f"layers/{name}"
            if any(full.startswith(f"{group}/") for group in ignored):
                return  # a preprocessing layer the spec starts after (import --after-preprocessing)
            if hasattr(obj, "shape") and full not in expected:
                extra.append(
                    f"{full}: the file has an array of shape {_shape(obj.shape)} that the spec has no place for"
                )

        handle["layers"].visititems(visit)
    problems += sorted(extra)
    if problems:
        raise _mismatch(path, model, spec_path, problems)
    return weights


def _torch_state_shapes(model: Model, programs: Any) -> dict[str, tuple[int, ...]]:
    module = programs.torch.build_model()
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


@dataclass
class _Programs:
    """The spec compiled and imported once: the Keras program and the PyTorch program."""

    model: Model
    keras: Any
    torch: Any


def programs_for(model: Model, source_name: str) -> _Programs:

    import_frameworks()
    with quiet_stderr():
        keras_program = load_program(generate(model, "keras", source_name), f"{model.name}_keras")
    torch_program = load_program(generate(model, "pytorch", source_name), f"{model.name}_pytorch")
    return _Programs(model, keras_program, torch_program)


def _same(a: dict[str, list[np.ndarray]], b: dict[str, list[np.ndarray]]) -> bool:
    import numpy as np

    return a.keys() == b.keys() and all(
        len(a[k]) == len(b[k]) and all(np.array_equal(x, y) for x, y in zip(a[k], b[k])) for k in a
    )


def _read_pt(model: Model, programs: _Programs, path: Path, spec_path: str) -> dict[str, list[np.ndarray]]:
    import numpy as np
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle that is not a plain state_dict, a corrupt file, ...
        # torch's own text is about re-running torch.load unsafely; what the user needs is which
        # object is in the way (a whole module pickled) or that the file is no torch.save file.
        pickled = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        why = (
            f"it pickles `{pickled.group(1)}`, not only tensors (a whole module saved with "
            "torch.save(module)?), and rnnspec loads .pt files with weights_only=True"
            if pickled
            else f"it is not a file torch.save wrote, or it is damaged ({type(exc).__name__})"
        )
        raise UsageError(
            f"{path}: error: cannot read a state_dict from the file: {why}; port reads files written by "
            "torch.save(module.state_dict(), PATH)"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(key, str) for key in state):
        raise UsageError(f"{path}: error: the file holds a {type(state).__name__}, not a state_dict")
    need = _torch_state_shapes(model, programs)
    problems: list[str] = []
    arrays: dict[str, np.ndarray] = {}
    for key, shape in need.items():
        if key not in state:
            problems.append(f"{key}: the spec needs shape {_shape(shape)}, the file has no such entry")
            continue
        value = state[key]
        if not isinstance(value, torch.Tensor):
            problems.append(f"{key}: the file holds a {type(value).__name__}, not a tensor")
        elif value.is_nested or value.layout != torch.strided:
            problems.append(f"{key}: the file holds a {value.layout} tensor; port needs a dense one")
        elif value.is_meta:
            problems.append(f"{key}: the file holds a meta tensor (a shape without values)")
        elif tuple(value.shape) != shape:
            problems.append(
                f"{key}: the spec needs shape {_shape(shape)}, the file has {_shape(value.shape)}"
            )
        elif not value.is_floating_point():
            problems.append(f"{key}: the file holds {value.dtype} values; the spec needs floating point")
        else:
            # resolve_*: a view with a lazy negation or conjugation bit has no numpy() of its own.
            array = value.detach().resolve_conj().resolve_neg().to(torch.float32).numpy().astype(np.float32)
            why = _not_finite(array)
            if why:
                problems.append(f"{key}: {why}")
            arrays[key] = array
    for key in state:
        if key not in need:
            value = state[key]
            if isinstance(value, torch.Tensor) and not value.is_nested:
                shown = _shape(value.shape)
            else:
                shown = "nested" if isinstance(value, torch.Tensor) else type(value).__name__
            problems.append(f"{key}: the file has an entry of shape {shown} that the spec has no place for")
    if problems:
        raise _mismatch(path, model, spec_path, problems)
    return torch_to_keras(model, arrays, programs.torch.build_model())


def _compare_architecture(model: Model, imported: Imported) -> tuple[list[str], list[str]]:
    """How the model saved in a .keras file differs from the spec, beyond names and training-only
    options: (differences in the layers themselves, differences in their options)."""
    other = load_model(imported.text)
    ignore = {"dropout", "recurrent_dropout", "unit_forget_bias", "rate"}
    layers: list[str] = []
    options: list[str] = []
    if len(other.inputs) != 1:
        names = ", ".join(f"`{value.name}`" for value in other.inputs)
        layers.append(f"the spec has one input; the file's model has {len(other.inputs)} ({names})")
        return layers, options
    (mine,), (theirs,) = model.inputs, other.inputs
    if (mine.dtype, mine.shape) != (theirs.dtype, theirs.shape):
        shown = lambda v: f"{v.dtype}[{', '.join('*' if d is None else str(d) for d in v.shape)}]"  # noqa: E731
        options.append(f"input: the spec has {shown(mine)}, the file {shown(theirs)}")
    if model.batch_size != other.batch_size and (model.stateful or other.stateful):
        options.append(f"batch_size: the spec has {model.batch_size}, the file {other.batch_size}")
    kinds = [(layer.kind, layer.inner and layer.inner.kind) for layer in model.layers]
    if kinds != [(layer.kind, layer.inner and layer.inner.kind) for layer in other.layers]:
        listed = lambda m: ", ".join(_call_kind(layer) for layer in m.layers)  # noqa: E731
        layers.append(f"the spec has {listed(model)}; the file has {listed(other)}")
        return layers, options
    for index, (a, b) in enumerate(zip(model.layers, other.layers)):
        where = f"layer {index + 1} (`{a.name}`" + (f", `{b.name}` in the file)" if a.name != b.name else ")")
        pairs = [(a, b, "")] + ([(a.inner, b.inner, f"{a.inner.kind} ")] if a.inner and b.inner else [])
        for x, y, prefix in pairs:
            for key in x.attrs:
                if key not in ignore and x.attrs[key] != y.attrs.get(key):
                    options.append(
                        f"{where}: {prefix}`{key}` is {spec_literal(x.attrs[key])} in the spec, "
                        f"{spec_literal(y.attrs[key])} in the file"
                    )
    return layers, options


def _call_kind(layer: Layer) -> str:
    return f"{layer.kind}({layer.inner.kind})" if layer.inner is not None else layer.kind


def _read_keras(
    model: Model, programs: _Programs, path: Path, fmt: str, spec_path: str
) -> dict[str, list[np.ndarray]]:
    import io

    import h5py

    if model.is_graph or any(layer.extern is not None for layer in model.layers):
        # A graph takes its layers' arrays by layer name: an inference model takes the trained
        # graph's (examples/seq2seq.rnn), whatever else the archive holds.
        return _read_keras_by_keras(model, programs, path, fmt, spec_path)
    if fmt == "keras":
        try:
            imported = import_model(path, after_preprocessing=True)  # the spec may start after it
        except ImportRefused as exc:
            raise UsageError(
                "\n".join(
                    [f"{path}: error: the model in this file has no equivalent spec:"]
                    + [f"  {p}" for p in exc.problems]
                )
            ) from None
        layer_differences, option_differences = _compare_architecture(model, imported)
        if layer_differences:
            raise UsageError(
                "\n".join(
                    [f"{path}: error: the model in this file is not the spec's model `{model.name}`:"]
                    + [f"  {d}" for d in layer_differences]
                )
            )
        try:
            with zipfile.ZipFile(path) as archive:
                # Bounded by what the spec's weights can take: a zip bomb stops here, not in memory.
                data = read_member(archive, "model.weights.h5", expected_weight_bytes(model), path)
        except KeyError:
            raise UsageError(f"{path}: error: the archive holds no model.weights.h5") from None
        except (zipfile.BadZipFile, NotImplementedError, EOFError, OSError) as exc:
            raise UsageError(f"{path}: error: the archive cannot be read: {exc}") from None
        try:
            handle = h5py.File(io.BytesIO(data), "r")
        except (OSError, OverflowError, ValueError) as exc:
            raise UsageError(
                f"{path}: error: the archive's model.weights.h5 is not readable HDF5 ({exc})"
            ) from None
        groups = {layer.name: group for layer, group in zip(model.layers, imported.h5_groups) if group}
        with handle:
            weights = _read_h5(model, handle, path, spec_path, groups, tuple(imported.cut_groups))
        if option_differences:
            raise UsageError(
                "\n".join(
                    [
                        f"{path}: error: the model in this file computes another function than the spec `{model.name}`:"
                    ]
                    + [f"  {d}" for d in option_differences]
                )
            )
        loaded = _load_keras_model(programs, path)
        # The same arrays through Keras itself, layer by layer along the chain: a check on the paths.
        found: dict[str, list[np.ndarray]] = {}
        for layer, keras_name in zip(model.layers, imported.keras_names):
            klayer = _find_layer(loaded, keras_name)
            if layer.inner is not None:
                found[layer.name] = klayer.forward_layer.get_weights() + klayer.backward_layer.get_weights()
            elif klayer.weights:
                found[layer.name] = klayer.get_weights()
    else:
        try:
            handle = h5py.File(path, "r")
        except OSError as exc:
            raise UsageError(f"{path}: error: not a readable HDF5 weights file ({exc})") from None
        with handle:
            weights = _read_h5(model, handle, path, spec_path)
        keras_model = programs.keras.build_model()
        try:
            keras_model.load_weights(str(path))
        except Exception as exc:
            raise UsageError(
                f"{path}: error: Keras cannot load the file into the spec's model: {exc}"
            ) from None
        found = get_keras_weights(model, keras_model)
    found = {name: arrays for name, arrays in found.items() if arrays}
    if not _same({k: v for k, v in weights.items() if v}, found):
        raise UsageError(
            f"{path}: error: Keras reads other arrays from this file than rnnspec does; not porting"
        )
    return weights


def _find_layer(model: Any, name: str) -> Any:
    """A layer of a loaded Keras model by name, looking inside nested models as import flattens them."""
    todo = [model]
    while todo:
        current = todo.pop(0)
        for layer in current.layers:
            if layer.name == name and not hasattr(layer, "layers"):
                return layer
            if hasattr(layer, "layers"):
                todo.append(layer)
    return model.get_layer(name)  # Keras's own error


def _keras_class(layer: Any, written: bool = False) -> str:
    """A loaded Keras layer's class as the spec's layer kinds name it: an `RNN(LSTMCell)` is the
    LSTM it equals (`import` writes it so); `written` gives it as the file has it."""
    name = type(layer).__name__
    cell = type(getattr(layer, "cell", None)).__name__
    if name == "RNN" and cell in CELL_LAYERS:
        return f"RNN({cell})" if written else CELL_LAYERS[cell]
    return name


def _read_keras_by_keras(
    model: Model, programs: _Programs, path: Path, fmt: str, spec_path: str
) -> dict[str, list[np.ndarray]]:
    """Trained arrays for a graph, or a model with user layers (only the user's Keras classes know
    their weights): Keras reads the file (into the spec's model, or as the saved model), and every
    layer's arrays are taken by layer name and checked, by class and shape, against the spec's
    model built from the spec."""
    built = programs.keras.build_model()
    expected = get_keras_weights(model, built)
    told: set[str] = set()  # layers with a problem listed: their arrays are not counted too
    if fmt == "keras":
        loaded = _load_keras_model(programs, path)
        found: dict[str, list[np.ndarray]] = {}
        problems: list[str] = []
        for layer in model.layers:
            if layer.kind in MERGE_KINDS:
                continue  # no weights (and an unnamed merge is named by Keras)
            try:
                klayer = _find_layer(loaded, layer.name)
            except ValueError:
                problems.append(f"{layer.name}: the spec has this layer, the file has no layer of that name")
                told.add(layer.name)
                continue
            want = type(built.get_layer(layer.name)).__name__
            if _keras_class(klayer) != want:
                problems.append(
                    f"{layer.name}: the spec's layer is {want}, the file's is {_keras_class(klayer, True)}"
                )
                told.add(layer.name)
            elif layer.inner is not None:
                found[layer.name] = klayer.forward_layer.get_weights() + klayer.backward_layer.get_weights()
            elif klayer.weights:
                found[layer.name] = klayer.get_weights()
    else:
        try:
            built.load_weights(str(path))
        except Exception as exc:
            raise UsageError(
                f"{path}: error: Keras cannot load the file into the spec's model: {exc}"
            ) from None
        found, problems = get_keras_weights(model, built), []
    for name, arrays in expected.items():
        if name in told:
            continue
        got = found.get(name, [])
        for index, (want, have) in enumerate(zip(arrays, got)):
            if want.shape != have.shape:
                problems.append(
                    f"{name} array {index}: the spec needs shape {_shape(want.shape)}, the file has {_shape(have.shape)}"
                )
        if len(got) != len(arrays):
            problems.append(f"{name}: the spec needs {len(arrays)} arrays, the file has {len(got)}")
    if problems:
        raise _mismatch(path, model, spec_path, problems)
    return {name: arrays for name, arrays in found.items() if arrays}


def _load_keras_model(programs: _Programs, path: Path) -> Any:
    import keras

    read_keras_archive(path)  # not a zip, truncated, a bomb: said in words before Keras reads it

    custom = {}
    if hasattr(programs.keras, "AttentionPooling"):
        custom["AttentionPooling"] = programs.keras.AttentionPooling
    for layer in programs.model.layers:  # a user's classes, as the generated program imports them
        if layer.extern is not None:
            custom[layer.extern.keras.name] = getattr(programs.keras, layer.extern.keras.name)
    try:
        with warnings.catch_warnings():
            # A nested model "destroys the mask", Keras warns while it rebuilds the graph; running,
            # it passes the mask on (tests/test_keras_facts.py), as the flattened spec does.
            warnings.filterwarnings("ignore", message=".*does not support masking", category=UserWarning)
            return keras.saving.load_model(path, custom_objects=custom, compile=False)
    except Exception as exc:
        raise UsageError(f"{path}: error: Keras cannot load the model: {exc}") from None


def read_weights(model: Model, path: Path, spec_path: str, programs: _Programs | None = None):
    """Trained Keras arrays per spec layer, from any supported weights file, checked against the spec."""
    require_regular_file(path, "weights file")  # what is missing first, then what it is
    fmt = weights_format(path)
    if fmt is None:
        raise unknown_format(path)
    if programs is None:
        programs = programs_for(model, Path(spec_path).name)
    if fmt == "pt":
        return _read_pt(model, programs, path, spec_path)
    return _read_keras(model, programs, path, fmt, spec_path)


def write_weights(
    model: Model,
    programs: _Programs,
    weights: dict[str, list[np.ndarray]],
    target: Path,
    inputs: list[Path] = (),
    *,
    force: bool = True,
) -> int:
    """Write `weights` (Keras arrays per layer) to `target` under the output rules (rnnspec/files.py);
    return the number of arrays."""
    fmt = weights_format(target)
    suffix = {"keras": ".keras", "weights.h5": ".weights.h5", "pt": target.suffix}[fmt]
    with replacing(target, inputs, force=force, suffix=suffix) as tmp:
        if fmt == "pt":
            import torch

            module = programs.torch.build_model()
            state = keras_to_torch(model, weights, module)
            load_torch_state(module, state)  # strict: every entry present, every shape right
            tensors = {key: value.detach().clone() for key, value in module.state_dict().items()}
            with open(tmp, "wb") as handle:  # a file object: the archive's inner folder is "archive"
                torch.save(tensors, handle)
            count = len(tensors)
        else:
            keras_model = programs.keras.build_model()
            set_keras_weights(model, keras_model, weights)
            if fmt == "keras":
                keras_model.save(tmp)
                _without_dates(tmp)
            else:
                keras_model.save_weights(tmp)
            count = sum(len(arrays) for arrays in weights.values())
    return count


# What port writes depends on the weights alone. Keras stamps a .keras archive with the time of
# saving (metadata.json's date_saved, the zip entry of model.weights.h5), with the memory address
# of each initializer (`shared_object_id`) and with the process's running count of op layers
# (`not_equal_3`). Dates become this one, ids and op names are numbered in order of appearance.
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
FIXED_DATE_SAVED = "1980-01-01@00:00:00"
_OP_NAME = re.compile(r"^(.*)_[0-9]+$")


def _canonical_config(config: Any) -> Any:
    """A Keras model config with its process-dependent numbers renumbered (same meaning)."""
    renamed: dict[str, str] = {}
    counts: dict[str, int] = {}
    for layer in config.get("config", {}).get("layers", []):
        name = layer.get("name")
        match = _OP_NAME.match(name or "")
        if str(layer.get("module", "")).startswith("keras.src.ops") and match:
            counts[match[1]] = counts.get(match[1], 0) + 1
            renamed[name] = f"{match[1]}_{counts[match[1]]}"
    ids: dict[Any, int] = {}

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            # `[name, node, index]`, or a graph's list of them (its inputs, its outputs)
            refs = key in ("keras_history", "input_layers", "output_layers")
            items = [walk(v, key if refs and isinstance(v, list) else "") for v in value]
            if refs and items and isinstance(items[0], str) and items[0] in renamed:
                items[0] = renamed[items[0]]
            return items
        if key == "shared_object_id":
            return ids.setdefault(value, len(ids) + 1)
        if key == "name" and value in renamed:
            return renamed[value]
        return value

    return walk(config)


def _without_dates(path: Path) -> None:
    """Rewrite a .keras archive with dates, object ids and op names fixed, otherwise unchanged."""
    with zipfile.ZipFile(path) as archive:
        entries = [(info, archive.read(info.filename)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in entries:
            if info.filename == "metadata.json":
                metadata = json.loads(data)
                if "date_saved" in metadata:
                    metadata["date_saved"] = FIXED_DATE_SAVED
                data = json.dumps(metadata).encode("utf-8")
            elif info.filename == "config.json":
                data = json.dumps(_canonical_config(json.loads(data))).encode("utf-8")
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_DATE)
            fixed.compress_type = info.compress_type
            fixed.external_attr = info.external_attr
            archive.writestr(fixed, data)
