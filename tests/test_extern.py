"""User layers (`extern layer`): the checks on what reaches generated code, the wiring, and verify's
proof that a user's two classes agree, or its report of the first place where they do not."""

import shutil
import textwrap

import pytest

from rnnspec.check import load_models
from rnnspec.cli import main
from rnnspec.errors import SpecError
from rnnspec.review import format_source
from tests.golden import EXAMPLES

SPEC = """extern layer Pool {{
    keras = {keras}
    pytorch = pkg.torch_layers:Pool
    mask = {mask}
    output = {output}
{extra}}}

model m {{
    input x: {inp}
    {call}
}}
"""


def first_error(**fields) -> str:
    values = dict(
        keras="pkg.keras_layers:Pool",
        mask="consume",
        output="[features]",
        extra="    size: int = 2\n",
        inp="float32[*, 4]",
        call="Pool(3)",
    )
    values.update(fields)
    source = SPEC.format(**values)
    with pytest.raises(SpecError) as info:
        load_models(source)
    return info.value.render("m.rnn", source).splitlines()[0]


# Every way to smuggle code through a class path, an argument or a weight name is refused at
# FILE:LINE:COL; nothing but checked identifiers and numbers reaches the generated programs.
@pytest.mark.parametrize(
    "fields, message",
    [
        (
            {"keras": '"pkg.keras_layers:Pool"'},
            "m.rnn:2:13: error: strings are not part of the language: write names and numbers without quotes",
        ),
        (
            {"keras": "pkg.__init__:Pool"},
            "m.rnn:2:13: error: `keras` of `Pool`: `__init__` in `pkg.__init__:Pool` starts with `__`, which "
            "Python reserves; it cannot be imported",
        ),
        (
            {"keras": "pkg.import:Pool"},
            "m.rnn:2:13: error: `keras` of `Pool`: `import` in `pkg.import:Pool` is a Python keyword; it cannot "
            "be imported",
        ),
        (
            {"keras": "pkg.mod:Pool; import os"},
            "m.rnn:2:25: error: a statement ends at the end of its line: drop the `;`",
        ),
        ({"keras": "os:system()"}, "m.rnn:2:22: error: expected `}` or a name, found `(`"),
        (
            {"keras": "pkg.mod:__class__"},
            "m.rnn:2:21: error: `keras` of `Pool`: `__class__` in `pkg.mod:__class__` starts with `__`, which "
            "Python reserves; it cannot be imported",
        ),
        (
            {"keras": "pkg.mod:Pool__"},
            "m.rnn:2:21: error: `keras` of `Pool`: `Pool__` in `pkg.mod:Pool__` ends with `__`, which Python "
            "reserves; it cannot be imported",
        ),
        (
            {"keras": "pkg.mod:x"},
            "m.rnn:2:21: error: `keras` of `Pool`: the class `x` must start with an uppercase letter, so that "
            "it cannot clash with a local name of the generated programs",
        ),
        (
            {"keras": "pkg.mod:F"},
            "m.rnn:2:5: error: class `F` of `Pool` would shadow a name the generated programs use; import it "
            "from a module under another name",
        ),
        (
            {"keras": "pkg.mod"},
            "m.rnn:2:13: error: `keras` of `Pool` must be `package.module:Class`, got `pkg.mod`",
        ),
        (
            {"extra": "    scale: float = 1e39\n", "call": "Pool()"},
            "m.rnn:6:20: error: `scale` of `Pool` must be a number finite in float32, got `1e39`",
        ),
        (
            {"extra": "    scale: float = 1e400\n", "call": "Pool()"},
            "m.rnn:6:20: error: `scale` of `Pool` must be a number finite in float32, got `1e400`",
        ),
        (
            {"extra": "    mode: one_of(max, mean) = max\n", "call": "Pool(mode=min)"},
            "m.rnn:11:15: error: `mode` of `Pool` must be one of max, mean; got `min`",
        ),
        (
            {"extra": "    mode: one_of(max, __import__)\n", "call": "Pool(mode=max)"},
            "m.rnn:6:23: error: `one_of` takes names, such as `one_of(max, mean)`; got `__import__`",
        ),
        (
            {"extra": "    __init__: int\n", "call": "Pool(1)"},
            "m.rnn:6:5: error: argument name `__init__` of `Pool` starts with `__`, which Python reserves; "
            "choose another name",
        ),
        (
            {"extra": "    name: int\n", "call": "Pool(1)"},
            "m.rnn:6:5: error: argument name `name` of `Pool` is taken by keras.layers.Layer (or by rnnspec); "
            "choose another name",
        ),
        (
            {"extra": "    features: int\n", "call": "Pool(1)"},
            "m.rnn:6:5: error: argument name `features` of `Pool` is a word of `output` (the input's feature "
            "width); choose another name",
        ),
        (
            {"extra": "    size: str\n", "call": "Pool(1)"},
            "m.rnn:6:11: error: unknown argument type `str` for `size` of `Pool`: use int, float, bool or "
            "one_of(NAME, ...)",
        ),
        (
            {"extra": "    size: int\n", "call": "Pool(1.5)"},
            "m.rnn:11:10: error: `size` of `Pool` must be an integer, got `1.5`",
        ),
        (
            {"extra": "    size: int\n", "call": "Pool(os.system)"},
            "m.rnn:11:12: error: expected `,` or `)`, found `.`: is a `)` missing?",
        ),
        (
            {"extra": "    weights = [transpose(__dict__.x)]\n", "call": "Pool()"},
            "m.rnn:6:26: error: parameter `__dict__.x` of `Pool`: `__dict__` starts with `__`, which Python "
            "reserves",
        ),
        (
            {"extra": "    weights = [eval(proj.weight)]\n", "call": "Pool()"},
            "m.rnn:6:16: error: `weights` of `Pool` lists parameter names such as `proj.bias`, or "
            "`transpose(proj.weight)`; got `eval(proj.weight)`",
        ),
        (
            {"extra": "    kerass = a.b:C\n", "call": "Pool()"},
            "m.rnn:6:5: error: `extern layer` has no field `kerass` (did you mean `keras`?); it takes keras, "
            "pytorch, mask, output, weights, pytorch_input_size, and arguments as `name: type = default`",
        ),
        (
            {"mask": "keepp", "extra": "", "call": "Pool()"},
            "m.rnn:4:12: error: `mask` of `Pool` must be consume, keep or produce, got `keepp` (did you mean "
            "`keep`?)",
        ),
        (
            {"mask": "keep", "extra": "", "call": "Pool()"},
            "m.rnn:5:5: error: `Pool` keeps the mask (`mask = keep`), so its output keeps the time axis: write "
            "`output = [time, ...]`",
        ),
        (
            {
                "mask": "produce",
                "output": "[time, features]",
                "extra": "",
                "call": "Pool()",
                "inp": "float32[4]",
            },
            "m.rnn:10:5: error: `Pool` (`mask = produce`) needs a sequence [timesteps, features]; `pool_1` "
            "receives float32[4] from input `x`",
        ),
        (
            {"output": "[time, size]", "call": "Pool(0)"},
            "m.rnn:11:10: error: `size` of `pool_1` sets its output width, so it must be a positive integer, got `0`",
        ),
        ({"call": "Pol(3)"}, "m.rnn:11:5: error: unknown layer kind `Pol` (did you mean `Pool`?)"),
        (
            {"extra": "    pytorch_input_size = [1]\n", "call": "Pool()"},
            "m.rnn:6:26: error: `pytorch_input_size` of `Pool` must be `true` or `false`, got `[1]`",
        ),
        (
            {"inp": "int32[*]"},
            "m.rnn:11:5: error: input `x` holds token ids (int32[*]) and must be followed by `embedding(...)`, "
            "not `Pool`",
        ),
    ],
)
def test_what_reaches_generated_code_is_checked(fields, message):
    assert first_error(**fields) == message


def test_two_classes_of_one_name_and_a_lowercase_kind_are_refused():
    source = textwrap.dedent(
        """\
        extern layer A {
            keras = a.b:C
            pytorch = a.b:C
            mask = keep
            output = [time, features]
        }
        extern layer B {
            keras = a.c:C
            pytorch = a.b:C
            mask = keep
            output = [time, features]
        }
        extern layer pool {
        }
        model m {
            input x: float32[*, 2]
            A()
        }
        """
    )
    with pytest.raises(SpecError) as info:
        load_models(source)
    lines = [line for line in info.value.render("m.rnn", source).splitlines() if ": error: " in line]
    assert lines[:2] == [
        "m.rnn:8:5: error: two keras classes named `C` (a.b and a.c) cannot both be imported into one program; "
        "rename one of them",
        "m.rnn:13:14: error: extern layer name `pool` must start with an uppercase letter: it names a class in "
        "the generated programs, and lowercase names are the built-in layers'",
    ]


def test_a_model_using_a_broken_extern_block_gets_no_second_message():
    source = SPEC.format(keras="pkg.mod:Pool", mask="keepp", output="[features]", extra="", inp="float32[*, 4]",
                         call="Pool()")  # fmt: skip
    with pytest.raises(SpecError) as info:
        load_models(source)
    assert [d.message for d in info.value.diagnostics] == [
        "`mask` of `Pool` must be consume, keep or produce, got `keepp` (did you mean `keep`?)"
    ]


def test_an_injection_attempt_exits_2_with_no_traceback(tmp_path, capsys):
    spec = tmp_path / "evil.rnn"
    spec.write_text(SPEC.format(keras="pkg.mod:Pool\n    import os", mask="consume", output="[features]",
                                extra="", inp="float32[*, 4]", call="Pool()"))  # fmt: skip
    for command in (["compile", str(spec), "--target", "keras"], ["verify", str(spec)]):
        assert main(command) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert (
            err
            == f"{spec}:3:12: error: expected `:` or `=`, found `os`\n        import os\n               ^\n"
        )


def test_generated_programs_import_the_users_classes_and_wire_the_mask():
    from rnnspec.compiler import compile_source

    source = (EXAMPLES / "silence.rnn").read_text()
    keras_code = compile_source(source, "keras", "silence.rnn")
    torch_code = compile_source(source, "pytorch", "silence.rnn")
    assert "from my_layers.keras_layers import ScaleShift, SilenceMask\n" in keras_code
    assert '    x = SilenceMask(threshold=1.0, name="silence_mask_1")(frames)\n' in keras_code
    assert "from my_layers.torch_layers import ScaleShift, SilenceMask\n" in torch_code
    assert "        self.scale_shift_1 = ScaleShift(input_size=4)\n" in torch_code
    assert (
        "        mask = self.silence_mask_1.compute_mask(frames, None)\n"
        "        x = self.silence_mask_1(frames)\n"
    ) in torch_code
    assert "self.scale_shift_1(x, mask=mask)" in torch_code


def test_fmt_lays_out_an_extern_block_and_keeps_its_comments():
    messy = (
        "extern   layer A {  # mine\n  keras=a.b:A\n\n  # torch half\n  pytorch = a.c :A\n mask=keep\n"
        " output=[ time,features ]\n  weights = [ transpose( p.w ), p.b ]\n    w :  one_of( x, y )=x\n}\n"
        "model m {\ninput x: float32[*, 3]\n A(w=y)\n}\n"
    )
    assert format_source(messy) == (
        "extern layer A {  # mine\n    keras = a.b:A\n\n    # torch half\n    pytorch = a.c:A\n    mask = keep\n"
        "    output = [time, features]\n    weights = [transpose(p.w), p.b]\n    w: one_of(x, y) = x\n}\n\n"
        "model m {\n    input x: float32[*, 3]\n    A(w=y)\n}\n"
    )


# --- verify: the user's two classes, proved or caught -----------------------------------------


@pytest.fixture
def user_dir(tmp_path):
    """A copy of the examples' user layers next to a spec, to edit one half of."""
    shutil.copytree(EXAMPLES / "my_layers", tmp_path / "my_layers")
    return tmp_path


def edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def verify(capsys, spec, *extra):
    code = main(["verify", str(spec), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_produced_mask_that_differs_is_named_with_its_first_position(user_dir, capsys):
    shutil.copy(EXAMPLES / "silence.rnn", user_dir)
    edit(
        user_dir / "my_layers" / "torch_layers.py",
        "self.threshold).any(dim=-1)",
        "self.threshold).all(dim=-1)",
    )
    code, out, err = verify(capsys, user_dir / "silence.rnn")
    assert (code, err) == (1, "")
    assert out.splitlines()[-1] == (
        "  first layer that diverges: `silence_mask_1` (your layer `SilenceMask`: "
        "my_layers.keras_layers:SilenceMask in Keras, my_layers.torch_layers:SilenceMask in PyTorch); "
        "its mask first differs at row 0, timestep 1 of batch 'mixed padding': keras True, pytorch False"
    )


def test_a_consumer_that_ignores_the_mask_is_named(user_dir, capsys):
    shutil.copy(EXAMPLES / "temporal_softmax.rnn", user_dir)
    edit(user_dir / "my_layers" / "torch_layers.py", "        if mask is not None:\n            exp = exp *", "        if False:\n            exp = exp *")  # fmt: skip
    code, out, err = verify(capsys, user_dir / "temporal_softmax.rnn")
    assert (code, err) == (1, "")
    assert out.splitlines()[-1] == (
        "  first layer that diverges: `temporal_softmax_1` (your layer `TemporalSoftmax`: "
        "my_layers.keras_layers:TemporalSoftmax in Keras, my_layers.torch_layers:TemporalSoftmax in PyTorch); "
        "its output first differs at row 1, timestep 0, feature 0 of batch 'mixed padding': "
        "keras 1, pytorch 0.1133175"
    )


def test_a_produced_mask_combined_with_an_incoming_one_is_proved(user_dir, capsys):
    (user_dir / "ids.rnn").write_text(
        (EXAMPLES / "silence.rnn").read_text().replace(
            "    input frames: float32[*, 4]\n", "    input ids: int32[*]\n    embedding(20, 4, mask_zero=true)\n"
        ).replace("SilenceMask(threshold=1.0)", "SilenceMask(threshold=0.3)")
    )  # fmt: skip
    code, out, err = verify(capsys, user_dir / "ids.rnn")
    assert (code, err) == (0, ""), out
    from rnnspec.compiler import compile_source

    torch_code = compile_source((user_dir / "ids.rnn").read_text(), "pytorch", "ids.rnn")
    # Both the output and the new mask come from the incoming mask, as in Keras.
    assert (
        "        x, mask = (\n"
        "            self.silence_mask_1(x, mask=mask),\n"
        "            self.silence_mask_1.compute_mask(x, mask),\n"
        "        )\n"
    ) in torch_code


# How the example torch layers declare a mask argument (typed, so that torch.jit.script compiles them).
TYPED = "x: torch.Tensor, mask: torch.Tensor | None = None"


@pytest.mark.parametrize(
    "spec, half, old, new, message",
    [
        (
            "silence.rnn",
            "keras_layers.py",
            "        super().__init__(**kwargs)\n        self.supports_masking = True\n",
            "        super().__init__(**kwargs)\n",
            "  my_layers.keras_layers:ScaleShift must set `self.supports_masking = True` (mask = keep); "
            "without it Keras drops the mask after the layer",
        ),
        (
            "silence.rnn",
            "torch_layers.py",
            f"    def compute_mask(self, {TYPED}) -> torch.Tensor:\n        loud",
            f"    def mask_of(self, {TYPED}) -> torch.Tensor:\n        loud",
            "  my_layers.torch_layers:SilenceMask must define `compute_mask(x, mask=None)` (mask = produce)",
        ),
        (
            "temporal_softmax.rnn",
            "torch_layers.py",
            f"class TemporalSoftmax(nn.Module):\n    def forward(self, {TYPED}) -> torch.Tensor:",
            "class TemporalSoftmax(nn.Module):\n    def forward(self, x: torch.Tensor, padding=None) -> torch.Tensor:",
            "  my_layers.torch_layers:TemporalSoftmax.forward must take `mask=None`, as Keras's call does",
        ),
    ],
)
@pytest.mark.filterwarnings("ignore:Layer 'scale_shift_1' .* does not support masking")
def test_a_class_that_breaks_its_declared_mask_contract_exits_2(
    user_dir, capsys, spec, half, old, new, message
):
    shutil.copy(EXAMPLES / spec, user_dir)
    edit(user_dir / "my_layers" / half, old, new)
    code, out, _ = verify(capsys, user_dir / spec)
    assert code == 2
    assert message in out.splitlines()


def test_weights_without_a_table_or_hook_and_a_short_table_exit_2(user_dir, capsys):
    shutil.copy(EXAMPLES / "silence.rnn", user_dir)
    edit(user_dir / "my_layers" / "torch_layers.py", "def keras_to_torch(arrays)", "def to_torch(arrays)")
    code, out, _ = verify(capsys, user_dir / "silence.rnn")
    assert code == 2
    assert out.endswith(
        "ERROR the programs did not run: layer `scale_shift_1` (your layer `ScaleShift`: "
        "my_layers.keras_layers:ScaleShift in Keras, my_layers.torch_layers:ScaleShift in PyTorch) has 2 Keras "
        "weight arrays, and nothing says where they go in PyTorch: add a `weights = [...]` table to "
        "`extern layer ScaleShift`, or a `keras_to_torch(arrays)` static method to "
        "my_layers.torch_layers:ScaleShift\n"
    )
    shutil.copy(EXAMPLES / "attention_pool.rnn", user_dir)
    edit(user_dir / "attention_pool.rnn", ", transpose(score.weight)]", "]")
    code, out, _ = verify(capsys, user_dir / "attention_pool.rnn")
    assert code == 2
    assert out.endswith(
        "its Keras layer has 3 weight arrays, and the `weights` table of `AttentionPool` lists 2\n"
    )


def test_trained_weights_of_user_layers_port_and_verify(user_dir, capsys):
    """A trained Keras model with user layers -> .pt (the hook) -> .weights.h5 (its inverse): the
    arrays come back, and verify proves each file on the PyTorch program."""
    import numpy as np

    from rnnspec.compiler import compile_source
    from rnnspec.equivalence.extern import user_code_path
    from rnnspec.equivalence.harness import configure_frameworks, load_program

    configure_frameworks()
    spec = user_dir / "silence.rnn"
    shutil.copy(EXAMPLES / "silence.rnn", spec)
    model = load_models(spec.read_text())[0]
    with user_code_path(spec, model):
        program = load_program(compile_source(spec.read_text(), "keras", spec.name), "trained_silence")
        trained = program.build_model()
        rng = np.random.default_rng(7)
        trained.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in trained.get_weights()])
        trained.save(user_dir / "trained.keras")
        arrays = trained.get_weights()
    assert (
        main(["port", str(spec), "--from", str(user_dir / "trained.keras"), "--to", str(user_dir / "t.pt")])
        == 0
    )
    assert (
        main(["port", str(spec), "--from", str(user_dir / "t.pt"), "--to", str(user_dir / "back.weights.h5")])
        == 0
    )
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines()[0].endswith("12 arrays, 2,161 parameters of `silence` (Keras -> PyTorch)")
    with user_code_path(spec, model):
        again = program.build_model()
        again.load_weights(user_dir / "back.weights.h5")
    for a, b in zip(arrays, again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert main(["import", str(user_dir / "trained.keras")]) == 2
    assert capsys.readouterr().err.splitlines()[1] == (
        "  layer `silence_mask_1` (SilenceMask): a user's layer class (from `my_layers.keras_layers`): "
        "declare it in the spec with `extern layer` and write the spec by hand (docs/custom-layers.md)"
    )
    for weights in ("trained.keras", "t.pt", "back.weights.h5"):
        code, out, err = verify(capsys, spec, "--weights", str(user_dir / weights))
        assert (code, err) == (0, ""), out
        assert out.rstrip().endswith(f"trained weights from {user_dir / weights}")


# `slow`: 13-45 s each; the default tier proves gradients in tests/test_gradients.py and user
# layers' forward proofs here.
@pytest.mark.slow
@pytest.mark.parametrize("example", ["silence.rnn", "attention_pool.rnn"])
def test_gradients_of_user_layers_with_random_weights(capsys, example):
    """`verify --gradients` draws a user layer's weights as the forward proof does (from the built
    layer, mapped by its table or hook), for the examples with weights of both kinds."""
    code = main(["verify", "--gradients", str(EXAMPLES / example)])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert [line.split(":")[0].strip() for line in out.splitlines() if "gradients:" in line] == ["gradients"]
    assert "ERROR" not in out


def test_a_user_layer_that_raises_is_a_mismatch_naming_it(user_dir, capsys):
    shutil.copy(EXAMPLES / "silence.rnn", user_dir)
    edit(
        user_dir / "my_layers" / "torch_layers.py",
        "return loud if mask is None else loud & mask",
        "return loud if mask is None else loud & mask\n\n    def forward(self, x, mask=None):\n"
        "        raise ValueError('boom')",
    )
    code, out, err = verify(capsys, user_dir / "silence.rnn")
    assert (code, err) == (1, "")
    assert out.splitlines()[1].startswith(
        "  first layer that diverges: `silence_mask_1` (your layer `SilenceMask`: "
    )
    assert out.splitlines()[1].endswith(
        "PyTorch raised ValueError: boom on batch 'mixed padding', which Keras computes"
    )
