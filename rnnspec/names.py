"""Names the generated programs reserve, declared per target, for the checker and `import` to ask.

Neutral ground: the targets take their declarations from here, and the checker asks here, so that
nothing on the front end imports a target. Kept in step with the templates by
tests/test_hardening.py.
"""

from __future__ import annotations

from rnnspec import runtime

# Every name the Keras program binds at module level; an input (a local of build_model) must not
# shadow them.
KERAS_MODULE_NAMES = frozenset({"keras", "ops", "AttentionPooling", "build_model", "reset_states"})

# Every name the PyTorch program binds at module level: imports, runtime helpers
# (rnnspec/runtime), and `build_model`. The model's class is named after the model (`class_name`)
# and must be none of these; an input (a parameter of forward) must not shadow them.
PYTORCH_MODULE_NAMES = runtime.module_names() | {"build_model"}

# forward(self, <input>): the input may not be called `self`.
PYTORCH_FORWARD_PARAMETERS = frozenset({"self"})

# Attributes of torch.nn.Module (torch 2.x) and of the generated module: a layer is `self.<name>`.
MODULE_ATTRIBUTES = frozenset(
    """T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda double
    dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half
    ipu load_state_dict modules mtia named_buffers named_children named_modules named_parameters parameters
    register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
    register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter register_state_dict_post_hook
    register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule share_memory state_dict to
    to_empty train training type xpu zero_grad reset_states""".split()
)


def reserved_input_names() -> dict[str, str]:
    """Names an input may not take, each with the target whose program uses it."""
    found = {name: "Keras" for name in KERAS_MODULE_NAMES}
    found.update({name: "PyTorch" for name in PYTORCH_MODULE_NAMES | PYTORCH_FORWARD_PARAMETERS})
    return found


def reserved_class_names() -> frozenset[str]:
    """Names the PyTorch program's model class may not take."""
    return PYTORCH_MODULE_NAMES


# Names an input may not take: each target's module-level names.
PROGRAM_NAMES = frozenset(reserved_input_names())
# Module-level names an extern layer's class, imported under its spec name, must not take.
IMPORTED_NAMES = PROGRAM_NAMES | reserved_class_names() | frozenset({"np"})


def camel_case(name: str) -> str:
    """`my_model` -> `MyModel`: the PyTorch class a model becomes."""
    parts = [p for p in name.split("_") if p]
    camel = "".join(p[0].upper() + p[1:] for p in parts) or "Model"
    return camel if camel[0].isalpha() else f"Model{camel}"
