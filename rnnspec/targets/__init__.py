"""One module per target: checked IR -> template context -> code.

Each target declares the names its programs bind at module level (`MODULE_NAMES`); the checker
asks here, so a spec name that would shadow one is refused whatever a target adds later.
"""

from __future__ import annotations

TARGETS = ("keras", "pytorch")


def reserved_input_names() -> dict[str, str]:
    """Names an input may not take, each with the target whose program uses it."""
    from rnnspec.targets import keras, pytorch

    found = {name: "Keras" for name in keras.MODULE_NAMES}
    found.update({name: "PyTorch" for name in pytorch.MODULE_NAMES | pytorch.FORWARD_PARAMETERS})
    return found


def reserved_class_names() -> frozenset[str]:
    """Names the PyTorch program's model class may not take."""
    from rnnspec.targets import pytorch

    return pytorch.MODULE_NAMES
