"""`rnnspec import` of what real recurrent models save: RNN(cell) layers, several inputs or dict
outputs (every obstacle listed), user-written classes (named)."""

from pathlib import Path

import pytest

from rnnspec.cli import main
from rnnspec.equivalence.harness import configure_frameworks

configure_frameworks()
np = pytest.importorskip("numpy")
keras = pytest.importorskip("keras")
L = keras.layers

pytestmark = [
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*does not support masking:UserWarning"),
]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def refusal(capsys, path):
    code, out, err = run(capsys, "import", path)
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert lines[0] == f"{path}: error: cannot import the model; these have no equivalent in the language:"
    return lines[1:]


def test_several_inputs_are_no_obstacle_and_every_real_one_is_listed(tmp_path, capsys):
    """A graph of two inputs is imported as a graph spec (rnnspec/import_graph.py): a refusal lists
    only what has no equivalent, each once (was: only "the model has 2 inputs")."""
    a = keras.Input((None,), dtype="int32", name="a")
    b = keras.Input((None, 3), name="b")
    x = L.Concatenate(name="join")([L.Embedding(10, 3, name="emb")(a), b])
    x = L.LSTM(4, dtype="mixed_float16", name="lstm")(x)
    keras.Model([a, b], L.Dense(2, activation="hard_silu", name="out")(x)).save(tmp_path / "multi.keras")
    assert refusal(capsys, tmp_path / "multi.keras") == [
        "  layer `lstm` (LSTM): dtype policy `mixed_float16` has no equivalent (rnnspec computes in float32)",
        '  layer `out` (Dense): `activation="hard_silu"`: the activation has no equivalent',
    ]


@pytest.fixture(scope="module")
def cell_model(tmp_path_factory):
    """Embedding(mask_zero) -> Bidirectional(RNN(GRUCell)) -> RNN(LSTMCell) -> RNN(SimpleRNNCell), trained."""
    keras.utils.set_random_seed(3)
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    x = L.Embedding(30, 6, mask_zero=True, name="embedding")(tokens)
    x = L.Bidirectional(L.RNN(L.GRUCell(5, reset_after=False), return_sequences=True), name="encoder")(x)
    x = L.RNN(L.LSTMCell(4, dropout=0.1, unit_forget_bias=False), return_sequences=True, name="rnn")(x)
    x = L.RNN(L.SimpleRNNCell(3, activation="relu"), go_backwards=True, name="last")(x)
    model = keras.Model(tokens, L.Dense(2, name="dense")(x), name="cells")
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse", run_eagerly=True)
    ids = np.random.default_rng(0).integers(0, 30, size=(32, 7))
    model.fit(ids, np.zeros((32, 2)), epochs=1, verbose=0)
    directory = tmp_path_factory.mktemp("cells")
    model.save(directory / "cells.keras")
    return directory


def test_rnn_of_a_keras_cell_is_imported_as_its_layer(cell_model, capsys):
    code, out, err = run(capsys, "import", cell_model / "cells.keras")
    assert (code, err) == (0, "")
    assert out.splitlines()[1:] == [
        "# The Keras layer `rnn` is RNN(LSTMCell), which is Keras's LSTM: `lstm` here.",
        "# The Keras layer `last` is RNN(SimpleRNNCell), which is Keras's SimpleRNN: `simple_rnn` here.",
        "model cells {",
        "    input tokens: int32[*]",
        "    embedding(30, 6, mask_zero=true) as embedding",
        "    bidirectional(gru(5, return_sequences=true, reset_after=false)) as encoder",
        "    lstm(4, dropout=0.1, return_sequences=true, unit_forget_bias=false) as rnn",
        "    simple_rnn(3, activation=relu, go_backwards=true) as last",
        "    dense(2) as dense",
        "}",
    ]


def test_rnn_of_a_keras_cell_verifies_and_ports_with_its_trained_weights(cell_model, capsys):
    spec = cell_model / "cells.rnn"
    assert main(["import", str(cell_model / "cells.keras"), "-o", str(spec), "--force"]) == 0
    code, out, err = run(capsys, "verify", spec, "--weights", cell_model / "cells.keras")
    assert code == 0, err
    assert f"trained weights from {cell_model / 'cells.keras'}" in out
    code, out, err = run(
        capsys, "port", spec, "--from", cell_model / "cells.keras", "--to", cell_model / "c.pt"
    )
    assert code == 0, err
    assert "(Keras -> PyTorch)" in out


def test_rnn_of_other_cells_is_refused_naming_the_cell(tmp_path, capsys):
    class PeepholeCell(L.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units, self.state_size = units, units

        def call(self, x, states):
            return x[..., : self.units], states

    x = keras.Input((None, 4), name="x")
    y = L.RNN(PeepholeCell(2), name="custom")(x)
    y = L.RNN(L.StackedRNNCells([L.LSTMCell(3), L.GRUCell(3)]), return_sequences=True, name="stacked")(
        L.RepeatVector(3)(y)
    )
    keras.Model(x, y).save(tmp_path / "cells.keras")
    lines = refusal(capsys, tmp_path / "cells.keras")
    assert lines[0] == (
        "  layer `custom` (RNN): its cell is a user's class `PeepholeCell` (from `tests.test_import_layers`); "
        "only Keras's LSTMCell, GRUCell and SimpleRNNCell have an equivalent"
    )
    assert lines[-1] == (
        "  layer `stacked` (RNN): a stack of cells in one RNN has no equivalent; write one recurrent layer per cell"
    )


@pytest.fixture(scope="module")
def nested_models(tmp_path_factory):
    """A Functional model holding a nested Functional model that holds a Sequential one, and a
    Sequential model holding a Sequential one; masks flow through both, weights trained."""
    keras.utils.set_random_seed(4)
    directory = tmp_path_factory.mktemp("nested")
    ids = np.random.default_rng(1).integers(0, 20, size=(16, 6))
    inner_seq = keras.Sequential([L.Dense(5, activation="tanh", name="deep")], name="deepest")
    block_in = keras.Input((None, 6), name="block_in")
    block = keras.Model(block_in, inner_seq(L.Dense(6, name="proj")(block_in)), name="block")
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    x = block(L.Embedding(20, 6, mask_zero=True, name="embedding")(tokens))
    functional = keras.Model(tokens, L.GRU(3, name="gru")(x), name="outer")
    stack = keras.Sequential(
        [
            keras.Input((None,), dtype="int32", name="ids"),
            L.Embedding(20, 4, mask_zero=True, name="emb"),
            keras.Sequential([L.Dense(4, name="d1"), L.Dense(4, name="d2")], name="pair"),
            L.LSTM(2, name="lstm"),
        ],
        name="stack",
    )
    for model, name, width in [(functional, "functional", 3), (stack, "sequential", 2)]:
        model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse", run_eagerly=True)
        model.fit(ids, np.ones((16, width)), epochs=1, verbose=0)
        model.save(directory / f"{name}.keras")
    return directory


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "functional",
            [
                "# The nested Keras model `deepest` is flattened: its layers `deep` stand in the spec.",
                "# The nested Keras model `block` is flattened: its layers `proj`, `deepest` stand in the spec.",
                "model outer {",
                "    input tokens: int32[*]",
                "    embedding(20, 6, mask_zero=true) as embedding",
                "    dense(6) as proj",
                "    dense(5, activation=tanh) as deep",
                "    gru(3) as gru",
                "}",
            ],
        ),
        (
            "sequential",
            [
                "# The nested Keras model `pair` is flattened: its layers `d1`, `d2` stand in the spec.",
                "model stack {",
                "    input ids: int32[*]",
                "    embedding(20, 4, mask_zero=true) as emb",
                "    dense(4) as d1",
                "    dense(4) as d2",
                "    lstm(2) as lstm",
                "}",
            ],
        ),
    ],
)
def test_nested_models_are_flattened_and_verify_with_their_weights(nested_models, capsys, name, expected):
    archive = nested_models / f"{name}.keras"
    code, out, err = run(capsys, "import", archive)
    assert (code, err) == (0, "")
    assert out.splitlines()[1:] == expected
    spec = nested_models / f"{name}.rnn"
    spec.write_text(out)
    code, out, err = run(capsys, "verify", spec, "--weights", archive)
    assert code == 0, err
    assert f"trained weights from {archive}" in out
    code, out, err = run(capsys, "port", spec, "--from", archive, "--to", nested_models / f"{name}.pt")
    assert (code, err) == (0, "")


TEXTS = [["the cat sat"], ["a dog ran far away today"], [""], ["the the dog"]]


def texts():
    import tensorflow as tf

    return tf.constant(TEXTS)


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    """Strings -> TextVectorization -> Embedding(mask_zero) -> LSTM -> Dense, trained."""
    keras.utils.set_random_seed(5)
    vectorize = L.TextVectorization(max_tokens=50, output_sequence_length=8, name="vectorize")
    vectorize.adapt(["the cat sat", "a dog ran far away", "the dog sat"])
    text = keras.Input((1,), dtype="string", name="text")
    x = L.Embedding(50, 4, mask_zero=True, name="embedding")(vectorize(text))
    model = keras.Model(text, L.Dense(2, name="dense")(L.LSTM(3, name="lstm")(x)), name="reviews")
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse", run_eagerly=True)
    model.fit(texts(), np.ones((4, 2)), epochs=2, verbose=0)
    directory = tmp_path_factory.mktemp("text")
    model.save(directory / "reviews.keras")
    return model, directory


def test_a_preprocessing_front_is_refused_naming_the_option(text_model, capsys):
    _, directory = text_model
    assert refusal(capsys, directory / "reviews.keras") == [
        "  layer `vectorize` (TextVectorization): preprocessing has no equivalent; "
        "`rnnspec import --after-preprocessing` imports the model from the first layer after it"
    ]


def test_after_preprocessing_imports_from_the_first_layer_after_it(text_model, capsys):
    import torch

    from rnnspec.check import load_model
    from rnnspec.compiler import generate
    from rnnspec.equivalence.harness import load_program

    model, directory = text_model
    archive, spec = directory / "reviews.keras", directory / "reviews.rnn"
    code, out, err = run(capsys, "import", archive, "--after-preprocessing", "-o", spec)
    assert (code, out) == (0, "")
    assert err == (
        f"{archive}: note: cut the preprocessing front `vectorize` (TextVectorization); the spec takes what "
        "`vectorize` emits. Run it in Keras, e.g. keras.Model(model.inputs, model.get_layer('vectorize')"
        ".output)(raw_inputs), and give the spec its output.\n"
    )
    assert spec.read_text().splitlines()[1:] == [
        "# Imported after the preprocessing front `vectorize` (TextVectorization): the spec's input "
        "`vectorize` is its output; run those layers in Keras and give the spec what `vectorize` returns.",
        "model reviews {",
        "    input vectorize: int64[8]",
        "    embedding(50, 4, mask_zero=true) as embedding",
        "    lstm(3) as lstm",
        "    dense(2) as dense",
        "}",
    ]
    code, out, err = run(capsys, "verify", spec, "--weights", archive)
    assert code == 0, err
    pt = directory / "reviews.pt"
    assert main(["port", str(spec), "--from", str(archive), "--to", str(pt)]) == 0
    # As the note says: the Keras front's ids through the PyTorch program give the Keras model's outputs.
    ids = np.asarray(keras.Model(model.inputs, model.get_layer("vectorize").output)(texts()))
    assert ids.dtype == np.int64 and (ids == 0).any() and (ids != 0).any()
    module = load_program(generate(load_model(spec.read_text()), "pytorch", "reviews.rnn"), "reviews")
    torch_model = module.build_model()
    torch_model.load_state_dict(torch.load(pt, weights_only=True), strict=True)
    with torch.no_grad():
        got = torch_model.eval()(torch.from_numpy(ids)).numpy()
    np.testing.assert_allclose(got, np.asarray(model(texts())), rtol=0, atol=1e-6)


def test_a_front_that_emits_no_ids_cannot_be_cut(tmp_path, capsys):
    chars = keras.Input((None,), dtype="string", name="chars")
    lookup = L.StringLookup(vocabulary=["a", "b"], mask_token="", name="lookup")
    keras.Model(chars, L.GRU(2, name="gru")(L.Embedding(5, 3, name="emb")(lookup(chars)))).save(
        tmp_path / "masked.keras"
    )
    code, out, err = run(capsys, "import", tmp_path / "masked.keras", "--after-preprocessing")
    assert (code, out) == (2, "")
    assert err.splitlines()[1:] == [
        "  layer `lookup` (StringLookup): its mask_token makes a mask the spec cannot take from its input; "
        "use mask_zero=True on the Embedding instead"
    ]


def test_a_layer_class_written_in_a_script_is_named(tmp_path, capsys):
    import subprocess
    import sys

    script = """
import keras
class Doubler(keras.layers.Layer):
    def call(self, x):
        return x * 2
@keras.saving.register_keras_serializable(package="Mine")
class Halver(keras.layers.Layer):
    def call(self, x):
        return x / 2
x = keras.Input((None, 3), name="x")
keras.Model(x, keras.layers.LSTM(2, name="lstm")(Halver(name="half")(Doubler(name="double")(x)))).save("user.keras")
"""
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True, capture_output=True)
    assert refusal(capsys, tmp_path / "user.keras") == [
        "  layer `double` (Doubler): a user's layer class (registered as `Doubler`): declare it in the spec "
        "with `extern layer` and write the spec by hand (docs/custom-layers.md)",
        "  layer `half` (Halver): a user's layer class (registered as `Mine>Halver`): declare it in the spec "
        "with `extern layer` and write the spec by hand (docs/custom-layers.md)",
    ]


@pytest.fixture(scope="module")
def layers_model(tmp_path_factory):
    """A trained Keras model with every one-input layer of v1 (BatchNormalization's moving
    statistics moved by training), saved as .keras."""
    keras.utils.set_random_seed(6)
    x = keras.Input((None, 6), name="features")
    h = L.Conv1D(8, 3, padding="causal", activation="relu", name="conv")(x)
    h = L.BatchNormalization(name="norm")(h)
    h = L.MaxPooling1D(2, padding="same", name="max_pool")(h)
    h = L.Conv1D(8, 2, padding="same", strides=2, use_bias=False, name="conv_2")(h)
    h = L.AveragePooling1D(2, strides=1, name="avg_pool")(h)
    h = L.SpatialDropout1D(0.2, name="channels")(h)
    h = L.GaussianNoise(0.1, name="noise")(h)
    h = L.RNN(L.LSTMCell(5), return_sequences=True, name="rnn")(h)
    h = L.TimeDistributed(L.Dense(4, activation="tanh"), name="per_step")(h)
    h = L.LeakyReLU(name="leaky")(h)
    h = L.Activation("mish", name="act")(h)
    h = L.GlobalMaxPooling1D(name="max_over_time")(h)
    h = L.BatchNormalization(center=False, name="norm_2")(h)
    h = L.RepeatVector(3, name="repeat")(h)
    h = L.GRU(4, return_sequences=True, name="gru")(h)
    h = L.Flatten(name="flat")(h)
    h = L.Reshape((2, -1), name="shape")(h)
    h = L.ReLU(max_value=6.0, name="relu6")(h)
    model = keras.Model(x, L.Dense(2, activation="log_softmax", name="out")(h), name="front")
    model.compile(optimizer="adam", loss="mse", run_eagerly=True)
    rng = np.random.default_rng(2)
    model.fit(rng.normal(size=(32, 12, 6)), np.zeros((32, 2, 2)), epochs=2, verbose=0)
    assert not np.allclose(model.get_layer("norm").get_weights()[2], 0)  # moving mean trained
    directory = tmp_path_factory.mktemp("layers")
    model.save(directory / "front.keras")
    return model, directory


def test_every_one_input_layer_imports_verifies_and_ports(layers_model, capsys):
    import torch

    from rnnspec.check import load_model
    from rnnspec.compiler import generate
    from rnnspec.equivalence.harness import load_program

    model, directory = layers_model
    archive, spec = directory / "front.keras", directory / "front.rnn"
    code, out, err = run(capsys, "import", archive, "-o", spec)
    assert (code, out, err) == (0, "", "")
    assert spec.read_text().splitlines()[1:] == [
        "# The Keras layer `rnn` is RNN(LSTMCell), which is Keras's LSTM: `lstm` here.",
        "model front {",
        "    input features: float32[*, 6]",
        "    conv1d(8, 3, padding=causal, activation=relu) as conv",
        "    batch_normalization() as norm",
        "    max_pooling1d(2, padding=same) as max_pool",
        "    conv1d(8, 2, strides=2, padding=same, use_bias=false) as conv_2",
        "    average_pooling1d(2, strides=1) as avg_pool",
        "    spatial_dropout1d(0.2) as channels",
        "    gaussian_noise(0.1) as noise",
        "    lstm(5, return_sequences=true) as rnn",
        "    time_distributed(dense(4, activation=tanh)) as per_step",
        "    leaky_relu(0.3) as leaky",
        "    activation(mish) as act",
        "    global_max_pooling() as max_over_time",
        "    batch_normalization(center=false) as norm_2",
        "    repeat_vector(3) as repeat",
        "    gru(4, return_sequences=true) as gru",
        "    flatten() as flat",
        "    reshape(2, -1) as shape",
        "    relu(max_value=6.0) as relu6",
        "    dense(2, activation=log_softmax) as out",
        "}",
    ]
    code, out, err = run(capsys, "verify", spec, "--weights", archive)
    assert code == 0, err
    assert f"trained weights from {archive}" in out
    pt, back = directory / "front.pt", directory / "back.weights.h5"
    assert main(["port", str(spec), "--from", str(archive), "--to", str(pt)]) == 0
    state = torch.load(pt, weights_only=True)
    # The moving statistics are the torch module's buffers, carried both ways.
    np.testing.assert_array_equal(
        state["norm.running_mean"].numpy(), model.get_layer("norm").moving_mean.numpy()
    )
    np.testing.assert_array_equal(
        state["norm.running_var"].numpy(), model.get_layer("norm").moving_variance.numpy()
    )
    assert main(["port", str(spec), "--from", str(pt), "--to", str(back)]) == 0
    program = load_program(generate(load_model(spec.read_text()), "keras", "front.rnn"), "front_keras")
    again = program.build_model()
    again.load_weights(back)
    for a, b in zip(model.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # The PyTorch program with the ported weights on fresh inputs, against the trained model.
    module = load_program(generate(load_model(spec.read_text()), "pytorch", "front.rnn"), "front_torch")
    torch_model = module.build_model().eval()
    torch_model.load_state_dict(state, strict=True)
    x = np.random.default_rng(9).normal(size=(3, 17, 6)).astype("float32")
    with torch.no_grad():
        got = torch_model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, np.asarray(model(x)), rtol=0, atol=1e-5)


def test_options_of_the_new_layers_without_an_equivalent_are_listed_together(tmp_path, capsys):
    x = keras.Input((None, 4), name="x")
    h = L.Conv1D(4, 2, groups=2, name="grouped")(x)
    h = L.BatchNormalization(renorm=True, name="renorm")(h)
    h = L.TimeDistributed(L.Dropout(0.1), name="wrapped")(h)
    h = L.Activation("hard_silu", name="act")(L.GlobalMaxPooling1D(keepdims=True, name="gmp")(h))
    keras.Model(x, h).save(tmp_path / "options.keras")
    assert refusal(capsys, tmp_path / "options.keras") == [
        "  layer `grouped` (Conv1D): `groups=2`: grouped convolution (groups > 1) has no equivalent",
        "  layer `renorm` (BatchNormalization): `renorm=true`: batch renormalisation (renorm=True) has no equivalent",
        "  layer `wrapped` (TimeDistributed): it wraps a `Dropout`; only Dense has an equivalent",
        "  layer `gmp` (GlobalMaxPooling1D): `keepdims=true`: keepdims=True has no equivalent",
        '  layer `act` (Activation): `activation="hard_silu"`: the activation has no equivalent',
    ]


def test_the_refusal_in_docs_migration_md_is_what_import_prints(tmp_path, capsys):
    from tests.golden import ROOT

    tokens = keras.Input((None,), dtype="int32", name="tokens")
    x = L.Embedding(2000, 32, mask_zero=True, name="embedding")(tokens)
    x = L.Conv1D(32, 3, groups=4, padding="same", name="conv1d")(x)
    x = L.LSTM(64, return_sequences=True, dtype="mixed_float16", name="lstm")(x)
    x = L.MultiHeadAttention(2, 16, name="attention")(x, x)
    x = L.GlobalMaxPooling1D(name="pool")(x)
    keras.Model(tokens, L.Dense(4, activation="hard_silu", name="dense")(x)).save(
        tmp_path / "conv_lstm.keras"
    )
    code, _, err = run(capsys, "import", tmp_path / "conv_lstm.keras")
    assert code == 2
    doc = (ROOT / "docs" / "migration.md").read_text()
    shown = doc.split("$ rnnspec import conv_lstm.keras\n", 1)[1].split("```", 1)[0]
    assert err.replace(f"{tmp_path}/", "") == shown


def test_a_conv2d_front_imports_and_verifies_with_its_weights(tmp_path, capsys):
    """The front of the Keras OCR and speech examples, from a 2-D input: Reshape to an image,
    Conv2D / MaxPooling2D, Reshape back to a sequence, a recurrent layer."""
    keras.utils.set_random_seed(7)
    x = keras.Input((16, 12), name="spectrogram")
    h = L.Reshape((16, 12, 1), name="image")(x)
    h = L.Conv2D(4, 3, padding="same", activation="relu", name="conv_1")(h)
    h = L.MaxPooling2D(name="pool_1")(h)
    h = L.Conv2D(3, (2, 2), strides=(2, 2), padding="same", use_bias=False, name="conv_2")(h)
    h = L.BatchNormalization(name="norm")(h)
    h = L.Reshape((4, -1), name="to_sequence")(h)
    h = L.Bidirectional(L.GRU(5, return_sequences=True), name="rnn")(h)
    model = keras.Model(x, L.Dense(6, activation="log_softmax", name="chars")(h), name="ocr")
    model.compile(optimizer="adam", loss="mse", run_eagerly=True)
    model.fit(np.random.default_rng(3).normal(size=(16, 16, 12)), np.zeros((16, 4, 6)), epochs=1, verbose=0)
    model.save(tmp_path / "ocr.keras")
    code, out, err = run(capsys, "import", tmp_path / "ocr.keras")
    assert (code, err) == (0, "")
    assert out.splitlines()[1:] == [
        "model ocr {",
        "    input spectrogram: float32[16, 12]",
        "    reshape(16, 12, 1) as image",
        "    conv2d(4, 3, padding=same, activation=relu) as conv_1",
        "    max_pooling2d(2) as pool_1",
        "    conv2d(3, 2, strides=2, padding=same, use_bias=false) as conv_2",
        "    batch_normalization() as norm",
        "    reshape(4, -1) as to_sequence",
        "    bidirectional(gru(5, return_sequences=true)) as rnn",
        "    dense(6, activation=log_softmax) as chars",
        "}",
    ]
    spec = tmp_path / "ocr.rnn"
    spec.write_text(out)
    code, out, err = run(capsys, "verify", spec, "--weights", tmp_path / "ocr.keras")
    assert code == 0, err
    code, out, err = run(capsys, "port", spec, "--from", tmp_path / "ocr.keras", "--to", tmp_path / "ocr.pt")
    assert (code, err) == (0, "")
    code, out, err = run(capsys, "verify", spec, "--weights", tmp_path / "ocr.pt")
    assert code == 0, err


def test_a_normalization_front_is_cut_and_the_spec_takes_its_output(tmp_path, capsys):
    import torch

    from rnnspec.check import load_model
    from rnnspec.compiler import generate
    from rnnspec.equivalence.harness import load_program

    rng = np.random.default_rng(4)
    norm = L.Normalization(name="norm")
    norm.adapt(rng.normal(2.0, 3.0, size=(20, 5, 3)))
    x = keras.Input((None, 3), name="x")
    model = keras.Model(x, L.LSTM(2, name="lstm")(norm(x)), name="scaled")
    model.save(tmp_path / "scaled.keras")
    code, out, _ = run(capsys, "import", tmp_path / "scaled.keras", "--after-preprocessing")
    assert code == 0
    assert out.splitlines()[2:] == [
        "model scaled {",
        "    input norm: float32[*, 3]",
        "    lstm(2) as lstm",
        "}",
    ]
    spec = tmp_path / "scaled.rnn"
    spec.write_text(out)
    assert (
        main(["port", str(spec), "--from", str(tmp_path / "scaled.keras"), "--to", str(tmp_path / "s.pt")])
        == 0
    )
    module = load_program(generate(load_model(out), "pytorch", "scaled.rnn"), "scaled").build_model().eval()
    module.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    raw = rng.normal(2.0, 3.0, size=(4, 7, 3)).astype("float32")
    front = np.asarray(keras.Model(model.inputs, model.get_layer("norm").output)(raw))
    with torch.no_grad():
        got = module(torch.from_numpy(front)).numpy()
    np.testing.assert_allclose(got, np.asarray(model(raw)), rtol=0, atol=1e-6)


def test_a_speech_front_over_a_varying_length_imports_and_verifies(tmp_path, capsys):
    """The DeepSpeech2 example's shape (square kernels): Reshape((-1, F, 1)), Conv2D with strides,
    BatchNormalization, ReLU, Reshape((-1, F2)), a bidirectional GRU, over any number of frames."""
    keras.utils.set_random_seed(8)
    x = keras.Input((None, 12), name="frames")
    h = L.Reshape((-1, 12, 1), name="expand")(x)
    h = L.Conv2D(4, 3, strides=2, padding="same", use_bias=False, name="conv")(h)
    h = L.BatchNormalization(name="conv_bn")(h)
    h = L.ReLU(name="conv_relu")(h)
    h = L.Reshape((-1, 24), name="collapse")(h)
    h = L.Bidirectional(L.GRU(5, return_sequences=True, reset_after=True), name="birnn")(h)
    model = keras.Model(x, L.Dense(7, activation="softmax", name="chars")(h), name="speech")
    model.compile(optimizer="adam", loss="mse", run_eagerly=True)
    model.fit(np.random.default_rng(5).normal(size=(8, 10, 12)), np.zeros((8, 5, 7)), epochs=1, verbose=0)
    model.save(tmp_path / "speech.keras")
    code, out, err = run(capsys, "import", tmp_path / "speech.keras")
    assert (code, err) == (0, "")
    assert out.splitlines()[1:] == [
        "model speech {",
        "    input frames: float32[*, 12]",
        "    reshape(-1, 12, 1) as expand",
        "    conv2d(4, 3, strides=2, padding=same, use_bias=false) as conv",
        "    batch_normalization() as conv_bn",
        "    relu() as conv_relu",
        "    reshape(-1, 24) as collapse",
        "    bidirectional(gru(5, return_sequences=true)) as birnn",
        "    dense(7, activation=softmax) as chars",
        "}",
    ]
    spec = tmp_path / "speech.rnn"
    spec.write_text(out)
    code, out, err = run(capsys, "verify", spec, "--weights", tmp_path / "speech.keras")
    assert code == 0, err
    assert "260 timesteps" in out


def test_a_graph_with_rnn_cells_and_a_nested_model_ports_the_arrays_it_was_saved_with(tmp_path, capsys):
    """Several inputs make a graph spec, whose weights are taken by layer name: an RNN(LSTMCell) is
    the `lstm` it equals, a Bidirectional(RNN(GRUCell)) its `bidirectional(gru)`, and a layer inside
    a nested model is found there. The ported PyTorch program computes the saved model's function."""
    import torch

    from rnnspec.check import load_model
    from rnnspec.compiler import generate
    from rnnspec.equivalence.harness import load_program

    keras.utils.set_random_seed(4)
    a, b = keras.Input((None, 2), name="a"), keras.Input((None, 2), name="b")
    inner_in = keras.Input((None, 2))
    inner = keras.Model(inner_in, L.Dense(2, activation="tanh", name="proj")(inner_in), name="inner")
    h = L.Add(name="add")([inner(a), b])
    h = L.RNN(L.LSTMCell(3), return_sequences=True, name="rnn")(h)
    h = L.Bidirectional(L.RNN(L.GRUCell(3)), name="bi")(h)
    model = keras.Model([a, b], h, name="two")
    model.save(tmp_path / "two.keras")
    spec, pt = tmp_path / "two.rnn", tmp_path / "two.pt"
    code, out, err = run(capsys, "import", tmp_path / "two.keras", "-o", spec)
    assert (code, out, err) == (0, "", "")
    assert "    rnn = lstm(3, return_sequences=true)(add) as rnn" in spec.read_text().splitlines()
    code, out, err = run(capsys, "verify", spec, "--weights", tmp_path / "two.keras")
    assert code == 0, err
    code, out, err = run(capsys, "port", spec, "--from", tmp_path / "two.keras", "--to", pt)
    assert code == 0, err
    module = load_program(generate(load_model(spec.read_text()), "pytorch", "two.rnn"), "two_torch")
    torch_model = module.build_model().eval()
    torch_model.load_state_dict(torch.load(pt, weights_only=True), strict=True)
    x, y = np.random.default_rng(5).normal(size=(2, 3, 9, 2)).astype("float32")
    with torch.no_grad():
        got = torch_model(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    np.testing.assert_allclose(got, np.asarray(model([x, y])), rtol=0, atol=1e-6)


def test_a_graph_ports_back_to_a_keras_archive_and_a_stack_refuses_a_graph_archive(tmp_path, capsys):
    """PyTorch weights of a graph (two inputs, three outputs) back to a `.keras` archive that Keras
    loads and that computes the PyTorch program's function; and a one-input spec given a
    several-input archive lists the difference (both were internal errors)."""
    import torch

    from rnnspec.check import load_model
    from rnnspec.compiler import generate
    from rnnspec.equivalence.harness import load_program

    examples = Path(__file__).resolve().parent.parent / "examples"
    for stem in ("siamese", "three_heads"):  # two inputs; three outputs
        spec = examples / f"{stem}.rnn"
        model = load_model(spec.read_text())
        torch_model = load_program(generate(model, "pytorch", spec.name), stem).build_model().eval()
        torch.manual_seed(5)
        torch.save(torch_model.state_dict(), tmp_path / f"{stem}.pt")
        archive = tmp_path / f"{stem}.keras"
        code, out, err = run(capsys, "port", spec, "--from", tmp_path / f"{stem}.pt", "--to", archive)
        assert (code, err) == (0, ""), err
        keras_model = keras.saving.load_model(archive, compile=False)
        rng = np.random.default_rng(6)
        arrays = [
            rng.integers(1, 50, size=(3, 11)).astype("int32")
            if value.dtype.startswith("int")
            else rng.normal(size=(3, 11, *value.shape[1:])).astype("float32")
            for value in model.inputs
        ]
        with torch.no_grad():
            got = torch_model(*[torch.from_numpy(a) for a in arrays])
        want = keras_model(arrays if len(arrays) > 1 else arrays[0])
        got, want = (got, want) if isinstance(got, tuple) else ((got,), (want,))
        for mine, theirs in zip(got, want, strict=True):
            np.testing.assert_allclose(mine.numpy(), np.asarray(theirs), rtol=0, atol=1e-5)

    a, b = keras.Input((None, 2), name="a"), keras.Input((None, 2), name="b")
    keras.Model([a, b], L.LSTM(3, name="lstm")(L.Add(name="add")([a, b]))).save(tmp_path / "two.keras")
    stack = tmp_path / "one.rnn"
    stack.write_text("model one {\n    input x: float32[*, 2]\n    lstm(3) as lstm\n}\n")
    code, out, err = run(capsys, "verify", stack, "--weights", tmp_path / "two.keras")
    assert (code, out) == (2, "")
    assert err == (
        f"{tmp_path / 'two.keras'}: error: the model in this file is not the spec's model `one`:\n"
        "  the spec has one input; the file's model has 2 (`a`, `b`)\n"
    )


def test_a_graph_given_another_models_archive_lists_each_layer_once(tmp_path, capsys):
    a, b = keras.Input((None, 2), name="a"), keras.Input((None, 2), name="b")
    keras.Model([a, b], L.LSTM(3, name="lstm")(L.Add(name="add")([a, b]))).save(tmp_path / "two.keras")
    spec = tmp_path / "two.rnn"
    spec.write_text(
        "model two {\n    input a: float32[*, 2]\n    input b: float32[*, 2]\n    s = add()(a, b)\n"
        "    p = dense(2)(s) as proj\n    y = gru(3)(p) as lstm\n    output y\n}\n"
    )
    code, out, err = run(capsys, "verify", spec, "--weights", tmp_path / "two.keras")
    assert (code, out) == (2, "")
    assert err == (
        f"{tmp_path / 'two.keras'}: error: the weights do not fit the spec's model `two` ({spec}):\n"
        "  proj: the spec has this layer, the file has no layer of that name\n"
        "  lstm: the spec's layer is GRU, the file's is LSTM\n"
    )


def test_a_sequential_with_two_activation_layers_imports_and_verifies(tmp_path, capsys):
    """Keras names them `activation` and `activation_1`; the second was read as applying the first
    again, to a value `relu6`, and the import refused its own spec (found by a new-user trial)."""
    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [
            keras.Input((None, 4), name="x"),
            L.Dense(3, name="dense"),
            L.Activation("gelu", name="activation"),  # as Keras names them in a fresh session
            L.Activation("relu6", name="activation_1"),
            L.GRU(2, name="gru"),
        ],
        name="acts",
    )
    archive, spec = tmp_path / "acts.keras", tmp_path / "acts.rnn"
    model.save(archive)
    assert run(capsys, "import", archive, "-o", spec) == (0, "", "")
    assert spec.read_text().splitlines()[1:] == [
        "model acts {",
        "    input x: float32[*, 4]",
        "    dense(3) as dense",
        "    activation(gelu) as activation",
        "    activation(relu6) as activation_1",
        "    gru(2) as gru",
        "}",
    ]
    code, out, err = run(capsys, "verify", spec, "--weights", archive)
    assert code == 0, err
    assert out.startswith(f"{spec}: acts: ok ") and f"trained weights from {archive}" in out


def test_a_frozen_layer_is_noted_in_the_spec(tmp_path, capsys):
    """`trainable=False` changes no forward pass and is dropped, but fine-tuning the PyTorch module
    would train what the Keras model keeps fixed; the spec says so per frozen layer with weights
    (was silent; found by a new-user trial)."""
    emb = L.Embedding(30, 4, mask_zero=True, name="glove")
    norm = L.BatchNormalization(name="bn")
    emb.trainable = norm.trainable = False
    layers = [
        emb,
        L.LSTM(3, name="enc"),
        norm,
        L.Dropout(0.2, trainable=False, name="drop"),
        L.Dense(2, name="out"),
    ]
    keras.Sequential([keras.Input((None,), dtype="int32", name="ids"), *layers], name="frozen").save(
        tmp_path / "frozen.keras"
    )
    code, out, err = run(capsys, "import", tmp_path / "frozen.keras")
    assert (code, err) == (0, "")
    assert out.splitlines()[1:4] == [
        "# The Keras layer `glove` is frozen (trainable=False): the PyTorch module trains it unless its "
        "parameters are given requires_grad_(False).",
        "# The Keras layer `bn` is frozen (trainable=False): the PyTorch module trains it unless its "
        "parameters are given requires_grad_(False) (Keras also runs a frozen BatchNormalization in "
        "inference mode).",
        "model frozen {",
    ]


def test_inputs_given_as_a_dict_import_as_a_graph_in_the_dict_order(tmp_path, capsys):
    """Was refused with the chain's reasons too ("the model has 2 inputs; a spec has one", "a spec
    is a linear chain"), although a graph spec takes several inputs (found by a new-user trial)."""
    keras.utils.set_random_seed(5)
    tok = keras.Input((None,), dtype="int32", name="tok")
    feat = keras.Input((None, 3), name="feat")
    x = L.Concatenate(name="join")([L.Embedding(10, 3, mask_zero=True, name="emb")(tok), feat])
    archive, spec = tmp_path / "named.keras", tmp_path / "named.rnn"
    keras.Model({"feat": feat, "tok": tok}, L.GRU(2, name="gru")(x), name="named").save(archive)
    assert run(capsys, "import", archive, "-o", spec) == (0, "", "")
    assert spec.read_text().splitlines()[1:] == [
        "# The model's inputs are named; the spec takes them in this order: feat -> `feat`, tok -> `tok`",
        "model named {",
        "    input feat: float32[*, 3]",
        "    input tok: int32[*]",
        "    emb = embedding(10, 3, mask_zero=true)(tok) as emb",
        "    join = concatenate()(emb, feat)",
        "    gru = gru(2)(join) as gru",
        "    output gru",
        "}",
    ]
    code, out, err = run(capsys, "verify", spec, "--weights", archive)
    assert code == 0, err
    assert out.startswith(f"{spec}: named: ok ")
