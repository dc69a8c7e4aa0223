"""conv2d and max_pooling2d take (height, width) sizes as Keras does (issue #12): `kernel_size`,
`strides` and `pool_size` are one int for both axes or a list of two, carried through shape
inference, both programs, the weights, `import` and `fmt`."""

import pytest

from rnnspec.check import load_model, load_models
from rnnspec.cli import main
from rnnspec.equivalence.harness import configure_frameworks
from rnnspec.equivalence.inputs import min_steps
from rnnspec.errors import SpecError

configure_frameworks()
np = pytest.importorskip("numpy")
keras = pytest.importorskip("keras")
L = keras.layers

pytestmark = [
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*does not support masking:UserWarning"),
]


def model(*lines: str) -> str:
    body = "\n".join(f"    {line}" for line in lines)
    return f"model m {{\n{body}\n}}\n"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "lines, shapes",
    [
        (  # same: height ceil(9 / 2) = 5, padding (1, 2); width 10, padding (1, 1)
            [
                "input x: float32[9, 10]",
                "reshape(9, 10, 1)",
                "conv2d(3, [5, 3], strides=[2, 1], padding=same, activation=tanh) as conv",
                "reshape(5, 30)",
                "gru(2)",
            ],
            {"conv": (5, 10, 3)},
        ),
        (  # valid: height 9 - 4 + 1 = 6, width (10 - 2) // 3 + 1 = 3
            [
                "input x: float32[9, 10]",
                "reshape(9, 10, 1)",
                "conv2d(3, [4, 2], strides=[1, 3]) as conv",
                "reshape(6, 9)",
                "gru(2)",
            ],
            {"conv": (6, 3, 3)},
        ),
        (  # a varying height with a height stride: the helper pads it at run time
            [
                "input x: float32[*, 12]",
                "reshape(-1, 12, 1)",
                "conv2d(4, [5, 3], strides=[2, 1], padding=same) as conv",
                "max_pooling2d([2, 3], padding=same) as pool",
                "reshape(-1, 16)",
                "gru(2)",
            ],
            {"conv": (None, 12, 4), "pool": (None, 4, 4)},
        ),
        (  # non-square pools: valid, and same with its own strides
            [
                "input x: float32[*, 10]",
                "reshape(-1, 10, 1)",
                "conv2d(2, [1, 3], strides=[1, 2], padding=same) as conv",
                "max_pooling2d([3, 2], strides=[1, 2], padding=same) as pool",
                "max_pooling2d([1, 2]) as pool_2",
                "reshape(-1, 2)",
                "gru(2)",
            ],
            {"conv": (None, 5, 2), "pool": (None, 3, 2), "pool_2": (None, 1, 2)},
        ),
    ],
)
def test_non_square_windows_verify_equal_at_every_position(tmp_path, capsys, lines, shapes):
    source = model(*lines)
    spec = load_model(source)
    assert {name: spec.values[name].shape for name in shapes} == shapes
    path = tmp_path / "m.rnn"
    path.write_text(source)
    code, out, err = run(capsys, "verify", path)
    assert code == 0, err
    assert out.startswith(f"{path}: m: ok")


def test_the_programs_spell_both_sizes(capsys):
    source = model(
        "input x: float32[*, 12]",
        "reshape(-1, 12, 1)",
        "conv2d(4, [5, 3], strides=[2, 1], padding=same) as conv",
        "max_pooling2d([2, 3]) as pool",
        "reshape(-1, 16)",
        "gru(2)",
    )
    spec = load_model(source)
    from rnnspec.compiler import generate

    keras_program = generate(spec, "keras", "m.rnn")
    assert 'keras.layers.Conv2D(4, (5, 3), strides=(2, 1), padding="same", name="conv")' in keras_program
    assert 'keras.layers.MaxPooling2D((2, 3), name="pool")' in keras_program
    torch_program = generate(spec, "pytorch", "m.rnn")
    assert "nn.Conv2d(1, 4, (5, 3), stride=(2, 1))" in torch_program
    assert "pad_same_2d(torch.permute(y, (0, 3, 1, 2)), (5, 3), (2, 1))" in torch_program
    assert "F.max_pool2d(torch.permute(y, (0, 3, 1, 2)), (2, 3), (2, 3))" in torch_program


def test_the_shortest_sequence_fed_follows_the_kernel_height():
    spec = load_model(
        model("input x: float32[*, 4]", "reshape(-1, 4, 1)", "conv2d(2, [3, 1])", "reshape(-1, 8)", "gru(2)")
    )
    assert min_steps(spec) == 3


def errors(source: str) -> str:
    with pytest.raises(SpecError) as info:
        load_models(source)
    return info.value.render("m.rnn", source)


@pytest.mark.parametrize(
    "layer, message",
    [
        (
            "conv2d(2, [0, 3])",
            "m.rnn:4:15: error: `kernel_size` of `conv2d` must be a positive integer or a list of two, "
            "got `[0, 3]`",
        ),
        (
            "conv2d(2, [1, 2, 3])",
            "m.rnn:4:15: error: `kernel_size` of `conv2d` must be a positive integer or a list of two, "
            "got `[1, 2, 3]`",
        ),
        (
            "conv2d(2, 3, strides=[2, 1.5])",
            "m.rnn:4:26: error: `strides` of `conv2d` must be a positive integer or a list of two, "
            "got `[2, 1.5]`",
        ),
        (
            "max_pooling2d([2])",
            "m.rnn:4:19: error: `pool_size` of `max_pooling2d` must be a positive integer or a list of two, "
            "got `[2]`",
        ),
        (
            "max_pooling2d([7, 2])",
            "m.rnn:4:5: error: `max_pooling2d_1` needs at least 7 x 2 cells with padding=valid; "
            "it receives float32[6, 4, 1]",
        ),
    ],
)
def test_bad_sizes_are_refused_with_their_position(layer, message):
    assert errors(model("input x: float32[6, 4]", "reshape(6, 4, 1)", layer)).splitlines()[0] == message


def test_cli_refuses_a_bad_list_with_exit_2(tmp_path, capsys):
    path = tmp_path / "m.rnn"
    path.write_text(model("input x: float32[6, 4]", "reshape(6, 4, 1)", "conv2d(2, [0, 3])", "reshape(6, 8)"))
    code, out, err = run(capsys, "check", path)
    assert (code, out) == (2, "")
    assert err.splitlines()[0] == (
        f"{path}:4:15: error: `kernel_size` of `conv2d` must be a positive integer or a list of two, "
        "got `[0, 3]`"
    )


def test_fmt_prints_the_list(tmp_path, capsys):
    path = tmp_path / "m.rnn"
    path.write_text(
        "model m {\n  input x: float32[*, 12]\n  reshape(-1, 12, 1)\n"
        "  conv2d(4,[5,3],strides=[2 ,1],padding=same)\n  reshape(-1, 48)\n  gru(2)\n}\n"
    )
    assert run(capsys, "fmt", path)[0] == 0
    assert path.read_text() == model(
        "input x: float32[*, 12]",
        "reshape(-1, 12, 1)",
        "conv2d(4, [5, 3], strides=[2, 1], padding=same)",
        "reshape(-1, 48)",
        "gru(2)",
    )


def test_a_non_square_keras_front_imports_and_verifies_with_its_weights(tmp_path, capsys):
    """The Keras speech example's first convolution, scaled down: unequal sizes are imported as
    lists; equal ones keep the int form."""
    keras.utils.set_random_seed(9)
    x = keras.Input((None, 12), name="frames")
    h = L.Reshape((-1, 12, 1), name="expand")(x)
    h = L.Conv2D(4, [5, 3], strides=[2, 1], padding="same", use_bias=True, name="conv_1")(h)
    h = L.MaxPooling2D((1, 2), name="pool")(h)
    h = L.Conv2D(2, [3, 3], strides=[1, 2], padding="same", activation="relu", name="conv_2")(h)
    h = L.Reshape((-1, 6), name="collapse")(h)
    h = L.Bidirectional(L.GRU(5, return_sequences=True), name="birnn")(h)
    model_ = keras.Model(x, L.Dense(7, activation="softmax", name="chars")(h), name="speech")
    model_.compile(optimizer="adam", loss="mse", run_eagerly=True)
    model_.fit(np.random.default_rng(5).normal(size=(8, 10, 12)), np.zeros((8, 5, 7)), epochs=1, verbose=0)
    model_.save(tmp_path / "speech.keras")
    code, out, err = run(capsys, "import", tmp_path / "speech.keras")
    assert (code, err) == (0, "")
    assert out.splitlines()[1:] == [
        "model speech {",
        "    input frames: float32[*, 12]",
        "    reshape(-1, 12, 1) as expand",
        "    conv2d(4, [5, 3], strides=[2, 1], padding=same) as conv_1",
        "    max_pooling2d([1, 2]) as pool",
        "    conv2d(2, 3, strides=[1, 2], padding=same, activation=relu) as conv_2",
        "    reshape(-1, 6) as collapse",
        "    bidirectional(gru(5, return_sequences=true)) as birnn",
        "    dense(7, activation=softmax) as chars",
        "}",
    ]
    spec = tmp_path / "speech.rnn"
    spec.write_text(out)
    code, out, err = run(capsys, "verify", spec, "--weights", tmp_path / "speech.keras")
    assert code == 0, err
    code, out, err = run(capsys, "port", spec, "--from", tmp_path / "speech.keras", "--to", tmp_path / "s.pt")
    assert (code, err) == (0, "")
    code, out, err = run(capsys, "verify", spec, "--weights", tmp_path / "s.pt")
    assert code == 0, err
    # The torch weight is Keras's kernel (kh, kw, in, out) as (out, in, kh, kw).
    import torch

    state = torch.load(tmp_path / "s.pt", weights_only=True)
    kernel = model_.get_layer("conv_1").get_weights()[0]
    assert tuple(state["conv_1.weight"].shape) == (4, 1, 5, 3)
    np.testing.assert_array_equal(state["conv_1.weight"].numpy(), kernel.transpose(3, 2, 0, 1))
