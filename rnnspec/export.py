"""`rnnspec export`: the PyTorch program as a deployable artefact, proved equal to Keras.

    rnnspec export examples/masking.rnn --format onnx -o masking.onnx
    rnnspec export examples/sentiment.rnn --format torch-export --weights trained.keras -o s.pt2

The program is built with the weights of the proof (`--weights FILE`'s trained weights, else
random ones drawn from `--seed`, as `verify` draws them), exported with a free batch dimension
and, where the spec leaves it free, a free time dimension, written to a temporary file, loaded
back from it, and run on `verify`'s batches (padding on either side, holes, fully padded rows)
against the Keras program with the same weights. Only an artefact that agrees at every position
is moved into place: exit 0; a mismatch writes nothing and exits 1; a spec, option or file
mistake, or a program the exporter refuses, exits 2.

The artefact takes the spec's inputs in declaration order, under their names (explicit mask and
state inputs included), and returns the spec's outputs in `output` order. The batch is free and
shared; every `*` of an input's shape is free on its own (a seq2seq's source and target may differ
in length). A stateful model's artefact takes the carried states as inputs after the spec's and
returns the new states after its outputs (neither format keeps buffers between calls): start from
zeros, feed each call's returned states to the next, and zeros again to reset.
"""

from __future__ import annotations

import contextlib
import io
import logging
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnspec.graph import shown
from rnnspec.ir import Model
from rnnspec.options import VerifyOptions

FORMATS = {"onnx": ".onnx", "torch-export": ".pt2", "torchscript": ".pt"}


class ExportFailed(Exception):
    """The exporter refused the program, or the artefact does not load or run (exit 2)."""


class _Mismatch(Exception):
    """Raised inside the output's write to leave the output as it was."""


@dataclass
class Exported:
    """What `export` did: the proof's result, and the artefact's input and output names."""

    result: Any  # an equivalence.harness.Result
    inputs: list[str]
    outputs: list[str]


def state_buffers(module: Any) -> list[str]:
    """The names of a generated module's carried states, in order: its own buffers (a layer's
    buffers, as batch normalisation's moving statistics, are weights, not states)."""
    return [name for name, _ in module.named_buffers() if "." not in name]


def deployable(module: Any, states: list[str] | None = None) -> Any:
    """The module as the exporters are to trace it, its `forward` run under torch's
    size-oblivious reasoning (`size_oblivious`).

    Without carried states, a shallow copy of the module (the same parameters and submodules,
    under the same names) whose own `forward` calls its class's under `size_oblivious`, with
    the same signature; `torch.jit.script` compiles the class's. With states, a module whose
    `forward` takes the model's inputs, then its carried states (named `states`, by default
    after the buffers), and returns the model's outputs, then the new states; the model is its
    `model`. Either `forward` names nothing an input or state could be named (an input is
    never `self`, and names starting with `__` are refused)."""
    import copy
    import functools
    import inspect

    import torch

    names = state_buffers(module)
    if not names:
        program = copy.copy(module)
        run, oblivious = type(module).forward.__get__(program), _oblivious()

        @functools.wraps(run)  # (its signature: the artefact's inputs keep their names)
        def forward(*args: Any, **kwargs: Any) -> Any:
            with oblivious():
                return run(*args, **kwargs)

        def prepare_scriptable() -> Any:
            plain = copy.copy(program)
            del plain.forward, plain.__prepare_scriptable__
            return plain

        program.forward = forward
        program.__prepare_scriptable__ = prepare_scriptable
        return program
    inputs = list(inspect.signature(module.forward).parameters)
    states = states or public_names(names, inputs)
    # A forward with one named parameter per input and state: the artefact's inputs carry them.
    # It reads only `self` and its parameters (builtins and helpers are the method's).
    source = (
        f"def forward(self, {', '.join([*inputs, *states])}):\n"
        f"    return self.run(({''.join(s + ', ' for s in inputs)}), ({''.join(s + ', ' for s in states)}))\n"
    )
    scope: dict[str, Any] = {"__builtins__": {}}
    exec(compile(source, f"<rnnspec export of {type(module).__name__}>", "exec"), scope)

    class Deployable(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = module
            self.names = names
            self.oblivious = _oblivious()

        forward = scope["forward"]

        def run(self, inputs: tuple[Any, ...], states: tuple[Any, ...]) -> tuple[Any, ...]:
            with self.oblivious():
                for name, value in zip(self.names, states, strict=True):
                    setattr(self.model, name, value)
                outputs = self.model(*inputs)
                outputs = outputs if isinstance(outputs, tuple) else (outputs,)
                return (*outputs, *(getattr(self.model, name) for name in self.names))

    return Deployable().eval()


def size_oblivious() -> contextlib.AbstractContextManager[Any]:
    """torch's size-oblivious reasoning (`backed_size_oblivious`) for the sizes the program
    computes from its inputs', where torch has that setting (newer torch; elsewhere, nothing).

    torch assumes an input's free length is not 0 or 1 (the program it traces holds for those
    too), but a length computed from it (a strided or `valid` convolution's, a pooling's) may be
    1 on the example, and torch's choices of strides and views (whether a size is 1) then add
    guards the artefact checks on every call: a `conv1d(strides=2)` then `lstm` exported on 7
    timesteps refused 3 and 4 (`x.size()[1] >= 5`). Size-oblivious, those choices take the case
    that holds for every size instead, and guard nothing. It is on wherever it is entered:
    `deployable`'s `forward` enters it on every call, eager ones too, where no size is symbolic
    and it changes nothing. The exporter makes the inputs' sizes before that `forward` runs,
    with torch's usual assumptions (made size-oblivious too, torch would guard a time axis
    against 1 in its convolution's own checks).
    """
    return _oblivious()()


def _oblivious() -> Callable[[], contextlib.AbstractContextManager[Any]]:
    """What makes `size_oblivious`'s context: found once, outside any trace."""
    import functools
    import importlib

    try:
        config = importlib.import_module("torch.fx.experimental._config")
    except ImportError:
        return contextlib.nullcontext
    if not hasattr(config, "backed_size_oblivious") or not hasattr(config, "patch"):
        return contextlib.nullcontext
    return functools.partial(config.patch, backed_size_oblivious=True)


def public_names(buffers: list[str], taken: list[str]) -> list[str]:
    """The names the artefact gives a module's carried states (`_lstm_1_h` -> `lstm_1_h`),
    clear of the names in `taken`."""
    found: list[str] = []
    for buffer in buffers:
        found.append(_unique(buffer.lstrip("_"), taken + found, "_state"))
    return found


def artefact_names(model: Model, buffers: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(inputs, outputs, states) of the artefact, each name once, as an ONNX graph needs: the
    spec's inputs; the spec's outputs (`x_out` where a rebound `x` is output beside input `x`);
    the carried states as inputs (`lstm_1_h`) and, returned, `lstm_1_h_next`."""
    inputs = [value.name for value in model.inputs]
    outputs: list[str] = []
    for key in model.outputs:
        outputs.append(_unique(shown(key), inputs + outputs, "_out"))
    states = public_names(buffers, inputs + outputs)
    taken = inputs + outputs + states
    returned: list[str] = []
    for state in states:
        returned.append(_unique(f"{state}_next", taken + returned, "_next"))
    return [*inputs, *states], [*outputs, *returned], states


def _unique(name: str, taken: list[str], suffix: str) -> str:
    while name in taken:
        name += suffix
    return name


def _example_and_shapes(
    model: Model, module: Any, arrays: tuple[Any, ...]
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The example arguments (inputs, then states), and their dynamic dimensions: the batch,
    shared by every input (fixed for a stateful model), and every `*` of an input's shape (a
    sequence's time axis). A free length is `Dim.DYNAMIC`, not a named `Dim`: lengths the
    program ties together (a mask and its sequence, a merge) do not fail the export, and a
    length the program would fix does."""
    import torch

    batch = torch.export.Dim("batch")
    shapes: list[Any] = []
    for inp in model.inputs:
        dims: dict[int, Any] = {}
        if not model.stateful:
            dims[0] = batch
        for axis, size in enumerate(inp.shape, start=1):
            if size is None:
                dims[axis] = torch.export.Dim.DYNAMIC
        shapes.append(dims)
    states = [module.get_buffer(name).clone() for name in state_buffers(module)]
    shapes.extend({} for _ in states)
    return (*(torch.from_numpy(a) for a in arrays), *states), tuple(shapes)


def _write_artefact(
    fmt: str, module: Any, example: tuple, shapes: tuple, path: Path, names: tuple[list[str], list[str]]
) -> None:
    import torch

    torch._dynamo.reset()  # a scan traced for an earlier program must not be reused
    quiet = io.StringIO()
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(quiet),
        contextlib.redirect_stderr(quiet),
        _quiet_logger("torch"),  # the exporters' notes (torchvision's absence, guards)
    ):
        warnings.simplefilter("ignore")
        if fmt == "torchscript":
            torch.jit.save(torch.jit.script(module), str(path))
        elif fmt == "torch-export":
            program = torch.export.export(module, example, dynamic_shapes=shapes)
            torch.export.save(program, str(path))
        else:
            program = torch.onnx.export(
                module,
                example,
                dynamic_shapes=shapes,
                dynamo=True,
                verbose=False,
                input_names=names[0],
                output_names=names[1],
            )
            program.save(str(path), external_data=False)


@contextlib.contextmanager
def _private_temp_dir() -> Iterator[None]:
    """The exporters' and onnxruntime's scratch files (torch inductor's cache, onnxruntime's
    `.ses`) go to a directory of our own, removed afterwards, not into the user's TMPDIR."""
    import os
    import shutil
    import tempfile

    scratch = tempfile.mkdtemp(prefix="rnnspec-export-")
    saved = {key: os.environ.get(key) for key in ("TMPDIR", "TORCHINDUCTOR_CACHE_DIR")}
    saved_tempdir = tempfile.tempdir
    os.environ["TMPDIR"] = scratch
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(scratch, "inductor")
    tempfile.tempdir = scratch
    try:
        yield
    finally:
        tempfile.tempdir = saved_tempdir
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _load_artefact(fmt: str, path: Path) -> tuple[Callable[..., list[Any]], Callable[[], None] | None]:
    """A function of numpy arrays (input, states) -> numpy arrays, running the artefact, and
    what forgets the states a TorchScript artefact carries in its buffers (None elsewhere)."""
    import numpy as np

    if fmt in ("torch-export", "torchscript"):
        import torch

        reset = None
        if fmt == "torchscript":
            loaded = torch.jit.load(str(path))
            loaded.eval()
            reset = getattr(loaded, "reset_states", None)
        else:
            loaded = torch.export.load(str(path)).module()

        def run(*arrays: Any) -> list[Any]:
            with torch.no_grad():
                out = loaded(*(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays))
            out = out if isinstance(out, (tuple, list)) else (out,)
            return [o.detach().numpy() for o in out]

        return run, reset
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run_onnx(*arrays: Any) -> list[Any]:
        return session.run(None, dict(zip(names, (np.ascontiguousarray(a) for a in arrays), strict=True)))

    return run_onnx, None


def prove(
    model: Model,
    pair: Any,
    run: Callable[..., list[Any]],
    states: list[Any],
    options: VerifyOptions,
    weights: dict[str, list[Any]],
    reset: Callable[[], None] | None = None,
) -> Any:
    """Compare the artefact with Keras on verify's batches (its first plan), in eval mode.

    A stateful artefact takes its `states` as inputs and returns the new ones after its
    outputs, or, with `reset`, keeps them itself (TorchScript keeps buffers)."""
    from rnnspec.equivalence import harness

    result = harness.Result(model.name, outputs=[shown(key) for key in model.outputs])
    result.modes = ["eval"]
    (_, steps), *_ = harness.plans(model, options, "")
    result.cases = [label for label, _ in steps][1 if model.stateful else 0 :]
    pair.set_weights(weights)
    pair.set_mode(False)
    carried = [s.copy() for s in states]
    for label, case in steps:
        if case is None:
            # (Keras's only: the module's buffers were traced by the exporter.)
            pair.keras_program.reset_states(pair.keras_model)
            carried = [s.copy() * 0 for s in states]
            if reset is not None:
                reset()
            continue
        keras_out = pair.run_keras(case.array, False)
        try:
            arrays = case.array if isinstance(case.array, tuple) else (case.array,)
            found = run(*arrays, *carried)
        except Exception as exc:
            result.passed = False
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            result.problem = f"the artefact raised {detail} on batch '{label}', which Keras computes"
            return result
        if states:
            found, carried = found[: -len(states)], found[-len(states) :]
        result.batches_run += 1
        harness.compare(result, label, keras_out, found, options.atol, options.rtol)
        if result.problem is not None:
            return result
    return result


def export(
    model: Model,
    spec_path: str,
    fmt: str,
    output: str,
    options: VerifyOptions,
    weights_path: str | None = None,
) -> Exported:
    """Build, export, load back and prove the artefact; move it to `output` only if it agrees."""
    from rnnspec.equivalence import harness
    from rnnspec.files import check_output

    spec = Path(spec_path)
    check_output(output, [spec] + ([Path(weights_path)] if weights_path else []))
    harness.configure_frameworks()
    with _private_temp_dir():  # onnxruntime writes its `.ses` when it is imported
        _import_frameworks(fmt)
        return _export(model, spec, spec_path, fmt, output, options, weights_path)


def _export(
    model: Model,
    spec: Path,
    spec_path: str,
    fmt: str,
    output: str,
    options: VerifyOptions,
    weights_path: str | None,
) -> Exported:
    from rnnspec.compiler import generate
    from rnnspec.equivalence import extern as extern_mod
    from rnnspec.equivalence import harness
    from rnnspec.equivalence import inputs as inputs_mod
    from rnnspec.equivalence import weights as weights_mod
    from rnnspec.files import replacing

    programs = harness.Programs(generate(model, "keras", spec.name), generate(model, "pytorch", spec.name))
    with extern_mod.user_code_path(spec, model), harness.one_torch_thread():
        pair = harness.Pair(model, programs)
        if weights_path:
            from rnnspec.port import read_weights

            weights = read_weights(model, Path(weights_path), spec_path)
        else:
            weights = weights_mod.random_keras_weights(model, options.seed)
            weights.update(extern_mod.random_weights(model, pair.keras_model, options.seed))
        pair.set_weights(weights)
        pair.set_mode(False)
        first = (
            inputs_mod.chunks(model, 1, options.time, options.seed)[0]
            if model.stateful
            else inputs_mod.cases(model, max(options.batch, 2), options.time, options.seed)[0]
        )
        arrays = first.array if isinstance(first.array, tuple) else (first.array,)
        example, shapes = _example_and_shapes(model, pair.torch_module, arrays)
        inputs, outputs, carried = artefact_names(model, state_buffers(pair.torch_module))
        if fmt == "torchscript":
            # A TorchScript module keeps its buffers: a stateful one carries its states itself,
            # from zeros, and `reset_states()` forgets them.
            module, states = pair.torch_module, []
            if carried:
                module.reset_states()
            inputs, outputs = inputs[: len(model.inputs)], outputs[: len(model.outputs)]
        else:
            module = deployable(pair.torch_module, carried)
            states = [s.numpy() * 0 for s in example[len(arrays) :]]
        names = (inputs, outputs)
        try:
            with replacing(output, [spec], suffix=FORMATS[fmt]) as tmp:
                try:
                    _write_artefact(fmt, module, example, shapes, tmp, names)
                    run, reset = _load_artefact(fmt, tmp)
                except Exception as exc:
                    detail = _script_reason(exc) if fmt == "torchscript" else _reason(exc)
                    raise ExportFailed(
                        f"{spec_path}: error: {fmt} cannot export `{model.name}`: {detail}"
                    ) from exc
                result = prove(model, pair, run, states, options, weights, reset)
                if not result.passed:
                    raise _Mismatch
        except _Mismatch:
            pass
    return Exported(result, inputs, outputs)


def _reason(exc: BaseException) -> str:
    """The first line of the innermost cause: the ONNX exporter wraps torch.export's error in
    its own, whose first line only says which step failed."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = str(exc).strip().splitlines() or [""]
    return f"{type(exc).__name__}: {lines[0]}"


def _script_reason(exc: BaseException) -> str:
    """TorchScript's message without its call schema and source excerpt, where it is: its
    errors read `message:`, then `  File "path", line N` and the code, often a schema first."""
    import re

    text = str(exc).strip()
    head, _, rest = text.partition('\n  File "')
    lines = [line.strip() for line in head.splitlines() if line.strip()]
    # A schema such as `f(__torch__.m.M self, Tensor x) -> Tensor:` says which call, not why.
    lines = [line for line in lines if not re.search(r"\) -> .*:$", line)] or lines[:1]
    message = " ".join(lines).rstrip(":").strip() or type(exc).__name__
    found = re.match(r'([^"]+)", line (\d+)', rest)
    if found and Path(found[1]).is_file():  # (not a program held in memory, `<rnnspec ...>`)
        message += f" ({found[1]}:{found[2]})"
    return f"{type(exc).__name__}: {message}"


def _import_frameworks(fmt: str) -> None:
    from rnnspec.verify import VerifyError, import_frameworks

    import_frameworks()
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
            import onnxscript  # noqa: F401
        except ImportError as exc:
            raise VerifyError(
                f"--format onnx needs onnx, onnxscript and onnxruntime ({exc}); install them with "
                "`pip install onnx onnxscript onnxruntime`"
            ) from None


def describe(exported: Exported, spec_path: str, fmt: str, output: str) -> str:
    result = exported.result
    if result.problem:
        return f"{spec_path}: {result.name}: MISMATCH {result.problem}; nothing written"
    worst = result.worst
    where = f"output `{result.outputs[worst.output]}`, row {worst.row}" + (
        f", timestep {worst.timestep}" if worst.timestep is not None else ""
    )
    head = "ok" if result.passed else "MISMATCH"
    line = (
        f"{spec_path}: {result.name}: {fmt} {head}  max |diff| {result.max_abs_diff:.3g} vs Keras "
        f"({where}, batch '{worst.case}'); {result.batches_run} batches: {', '.join(result.cases)}"
    )
    if not result.passed:
        return line + "; nothing written"
    line += f"\n  wrote {output}: inputs {', '.join(exported.inputs)}; outputs {', '.join(exported.outputs)}"
    return line
