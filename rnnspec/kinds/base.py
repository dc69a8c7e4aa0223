"""What every layer kind declares, once: `LayerKind`.

A kind is one object holding everything the tools need to know about it, so that no module keeps
its own `if kind == ...` chain:

- `schema`: its arguments (type, Keras default, allowed values), bound by rnnspec/build.py;
- `infer`: the values it produces from the value it receives (shape, mask), for rnnspec/check.py;
- `keras_class`, `h5_name`, `keras_fixed`: how Keras names it in a program, in a `.weights.h5`
  file, and which of its Keras options have an equivalent at one value only (rnnspec/importer.py);
- `keras_weights`, `keras_to_torch`, `torch_to_keras`: its Keras arrays and their mapping to the
  generated PyTorch module's parameters, both ways (rnnspec/equivalence/weights.py, port.py);
- `torch_extra_parameters`: how many more parameters torch keeps than Keras (review's summary);
- `keeps_mask`, `reads_mask`: how a mask flows through it.

How a target writes it is the target's (one emitter per kind per target); a kind a target has no
emitter for is refused there with `Unsupported`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rnnspec.errors import Reporter
from rnnspec.ir import Layer, LayerSchema, Model, TensorValue

if TYPE_CHECKING:
    import numpy as np


@dataclass
class Context:
    """What shape inference may look at besides the layer: the model, the layer before, the report."""

    model: Model
    previous: Layer | None
    report: Reporter


@dataclass(frozen=True)
class KerasArray:
    """One array of `layer.get_weights()`, and the torch parameter it becomes.

    `torch_key` is relative to the layer's module; `transpose` when torch keeps it transposed;
    `present` says whether the layer has it (a bias under `use_bias=false` does not).
    """

    name: str
    shape: Callable[[Layer, int], tuple[int, ...]]  # (layer, input width) -> shape
    torch_key: str
    transpose: bool = False
    present: Callable[[Layer], bool] = lambda layer: True
    positive: bool = False  # a variance: random weights for a proof draw it above zero
    buffer: bool = False  # torch keeps it as a buffer (moving statistics), not a parameter


class LayerKind:
    """One built-in layer kind. Subclasses override what differs from a weightless, mask-keeping,
    shape-keeping layer."""

    name: str = ""
    schema: LayerSchema
    keras_class: str = ""  # as the generated Keras program names it: `keras.layers.Dense`
    h5_name: str = ""  # the base of Keras's automatic layer names, which `.weights.h5` groups use
    # Keras options with an equivalent at one value only: {option: (allowed values, why not others)}
    keras_fixed: ClassVar[dict[str, tuple[tuple[Any, ...], str]]] = {}
    needs_sequence = False  # its input must be [timesteps, features]
    takes_ids = False  # its input is token ids (int32/int64)
    reads_mask = False  # its computation uses the incoming mask
    drops_mask = False  # Keras calls it without masking support: a mask ends here, with a warning
    mixes_rows_in_training = False  # training mode uses batch statistics: rows are not independent
    arrays: tuple[KerasArray, ...] = ()

    @property
    def keras_class_name(self) -> str:
        """The `class_name` of its entry in a `.keras` archive's config.json."""
        return self.keras_class.rsplit(".", 1)[-1]

    # -- shapes and masks -----------------------------------------------------------------

    def infer(self, layer: Layer, current: TensorValue, ctx: Context) -> list[TensorValue] | None:
        """The values `layer` produces from `current` (main output first); None after reporting."""
        return [TensorValue(layer.name, "float32", current.shape, self.mask_out(layer, current.masked))]

    def mask_out(self, layer: Layer, masked_in: bool) -> bool:
        """Whether a mask flows out, given whether one flows in."""
        return masked_in

    def keeps_mask(self, layer: Layer) -> bool:
        """Whether the incoming mask passes through unchanged (and unread, unless `reads_mask`)."""
        return True

    def random_in_training(self, layer: Layer) -> bool:
        """Whether its training-mode output is random (noise, dropped units)."""
        return False

    def steps_out(self, layer: Layer, steps: int) -> int:
        """How many timesteps it outputs for `steps` timesteps in (on a sequence it keeps as one)."""
        return steps

    def min_steps(self, layer: Layer) -> int:
        """The fewest timesteps it accepts."""
        return 1

    # -- Keras program --------------------------------------------------------------------

    def keras_value(self, key: str, value: Any) -> Any:
        """An argument's value as the Keras constructor takes it."""
        return value

    def keras_wrapped(self, layer: Layer) -> tuple[str, dict[str, Any]] | None:
        """The layer it wraps, for the Keras program: (Keras class, its arguments); None if none."""
        return None

    # -- weights --------------------------------------------------------------------------

    def keras_weights(self, layer: Layer, width: int) -> list[tuple[str, tuple[int, ...]]]:
        """Name and shape of each array `get_weights()` gives, in order; `width` is the input's last axis."""
        return [(a.name, a.shape(layer, width)) for a in self.arrays if a.present(layer)]

    def torch_buffers(self, layer: Layer) -> list[bool]:
        """Per array of `keras_weights`: whether torch keeps it as a buffer, not a parameter."""
        return [a.buffer for a in self.arrays if a.present(layer)]

    def positive_weights(self, layer: Layer) -> list[bool]:
        """Per array of `keras_weights`: whether it must be positive (a variance)."""
        return [a.positive for a in self.arrays if a.present(layer)]

    def h5_paths(self, layer: Layer, group: str, count: int) -> list[str]:
        """Where a `.weights.h5` file keeps the arrays, under the layer's group."""
        return [f"{group}/vars/{i}" for i in range(count)]

    def keras_to_torch(self, layer: Layer, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Keras arrays -> the module's state_dict entries (keys relative to the layer's module)."""
        present = [a for a in self.arrays if a.present(layer)]
        return {a.torch_key: (array.T if a.transpose else array) for a, array in zip(present, arrays)}

    def torch_to_keras(self, layer: Layer, state: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The inverse of keras_to_torch (`state` keys relative to the layer's module)."""
        return [
            state[a.torch_key].T if a.transpose else state[a.torch_key]
            for a in self.arrays
            if a.present(layer)
        ]

    def torch_extra_parameters(self, layer: Layer) -> int:
        """How many more parameters the PyTorch module holds than Keras (a second bias, say)."""
        return 0


def describe(value: TensorValue) -> str:
    """`float32[*, 8]`: a value's type as messages show it."""
    dims = ", ".join("*" if d is None else str(d) for d in value.shape)
    return f"{value.dtype}[{dims}]"


def needs_sequence_message(layer: Layer, current: TensorValue, previous: Layer | None) -> str:
    """Why `layer` cannot take `current`, which is not a sequence, and the fix."""
    what = "a recurrent layer" if layer.recurrent is not None else f"`{layer.kind}`"
    if (
        previous is not None
        and previous.recurrent is not None
        and not previous.recurrent.attrs["return_sequences"]
    ):
        fix = (
            f"`{previous.name}` returns only its last output ({describe(current)}); "
            f"set `return_sequences=true` on `{previous.name}`"
        )
        return f"{what} needs a sequence [timesteps, features], but {fix} so that `{layer.name}` gets one"
    source = f"`{previous.name}`" if previous is not None else f"input `{current.name}`"
    return (
        f"{what} needs a sequence [timesteps, features]; `{layer.name}` receives {describe(current)} "
        f"from {source}"
    )
