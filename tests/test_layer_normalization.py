"""`layer_normalization`, the kind added through rnnspec/kinds/ alone (plus its PyTorch emitter):
compiled, proved by verify, summarised, imported from and ported to a real Keras model."""

from pathlib import Path

import pytest

from rnnspec.check import load_model
from rnnspec.cli import main
from rnnspec.compiler import generate
from rnnspec.equivalence.harness import configure_frameworks, load_program
from rnnspec.review import summary_rows

configure_frameworks()
np = pytest.importorskip("numpy")
keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SPEC = """\
model normed {
    input tokens: int32[*]
    embedding(30, 6, mask_zero=true)
    layer_normalization(epsilon=0.5) as norm
    lstm(5, return_sequences=true)
    layer_normalization(center=false)
    global_average_pooling()
    layer_normalization(scale=false, center=false)
    dense(2)
}

model features {
    input x: float32[7, 4]
    masking(mask_value=-1.0)
    layer_normalization(epsilon=4.0, scale=true)
    bidirectional(gru(3, return_sequences=true))
    layer_normalization()
}
"""


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_both_programs_construct_it_with_keras_arguments_and_torch_layer_norm():
    model = load_model(SPEC, "normed")
    keras_code = generate(model, "keras", "normed.rnn")
    torch_code = generate(model, "pytorch", "normed.rnn")
    assert '    x = keras.layers.LayerNormalization(epsilon=0.5, name="norm")(x)\n' in keras_code
    assert (
        '    x = keras.layers.LayerNormalization(center=False, name="layer_normalization_2")(x)\n'
        in keras_code
    )
    assert "        self.norm = nn.LayerNorm(6, eps=0.5)\n" in torch_code
    assert "        self.layer_normalization_2 = nn.LayerNorm(5, eps=0.001, bias=False)\n" in torch_code
    assert "            5, eps=0.001, elementwise_affine=False\n" in torch_code
    # The mask passes through it unread: the LSTM after it still gets the embedding's mask.
    assert "        x, _, _ = self.lstm_1.masked(self.norm(x), mask)\n" in torch_code


def test_summary_counts_gamma_and_beta_as_present():
    rows = {row[0]: row[1:] for row in summary_rows(load_model(SPEC, "normed"))}
    assert rows["norm"] == ("layer_normalization", "(None, None, 6)", 12, 12)
    assert rows["layer_normalization_2"] == ("layer_normalization", "(None, None, 5)", 5, 5)
    assert rows["layer_normalization_3"] == ("layer_normalization", "(None, 5)", 0, 0)


def test_verify_proves_both_models(tmp_path, capsys):
    spec = tmp_path / "normed.rnn"
    spec.write_text(SPEC)
    code, out, err = run(capsys, "verify", spec)
    assert (code, err) == (0, ""), out
    lines = out.splitlines()
    assert lines[0].startswith(f"{spec}: normed: ok  max |diff| ")
    assert lines[1].startswith(f"{spec}: features: ok  max |diff| ")


def test_pytorch_target_refuses_center_without_scale_by_name(tmp_path, capsys):
    spec = tmp_path / "m.rnn"
    spec.write_text("model m {\n    input x: float32[*, 4]\n    layer_normalization(scale=false)\n}\n")
    code, out, err = run(capsys, "compile", spec, "--target", "pytorch")
    assert (code, out) == (2, "")
    assert err == (
        f"{spec}:3:25: error: layer kind `layer_normalization` with center=true and scale=false is not "
        "supported by the PyTorch target\n"
        "        layer_normalization(scale=false)\n"
        "                            ^\n"
    )
    code, out, err = run(capsys, "compile", spec, "--target", "keras")
    assert (code, err) == (0, "") and "keras.layers.LayerNormalization(scale=False" in out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Masking -> LayerNormalization(epsilon, no beta) -> LSTM -> LayerNormalization -> Dense, random weights."""
    keras.utils.set_random_seed(5)
    inp = keras.Input(shape=(None, 4), name="x")
    h = keras.layers.Masking(mask_value=0.0, name="masking")(inp)
    h = keras.layers.LayerNormalization(epsilon=0.01, center=False, name="ln")(h)
    h = keras.layers.LSTM(3, return_sequences=True, name="lstm")(h)
    h = keras.layers.LayerNormalization(name="ln_out")(h)
    out = keras.layers.Dense(2, name="dense")(h)
    model = keras.Model(inp, out, name="normed")
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.7, size=w.shape).astype("float32") for w in model.get_weights()])
    directory = tmp_path_factory.mktemp("ln")
    model.save(directory / "trained.keras")
    return model, directory


def test_import_port_and_run_a_trained_keras_layer_normalization(trained, capsys):
    model, directory = trained
    spec, pt = directory / "model.rnn", directory / "model.pt"
    assert main(["import", str(directory / "trained.keras"), "-o", str(spec)]) == 0
    assert spec.read_text().split("\n", 1)[1] == (
        "model normed {\n"
        "    input x: float32[*, 4]\n"
        "    masking() as masking\n"
        "    layer_normalization(epsilon=0.01, center=false) as ln\n"
        "    lstm(3, return_sequences=true) as lstm\n"
        "    layer_normalization() as ln_out\n"
        "    dense(2) as dense\n"
        "}\n"
    )
    code, out, err = run(capsys, "port", spec, "--from", directory / "trained.keras", "--to", pt)
    assert (code, err) == (0, "")
    assert out.endswith(": 9 arrays, 114 parameters of `normed` (Keras -> PyTorch)\n")
    program = load_program(generate(load_model(spec.read_text()), "pytorch", "model.rnn"), "ln_torch")
    module = program.build_model().eval()
    module.load_state_dict(torch.load(pt, weights_only=True), strict=True)
    x = np.random.default_rng(1).normal(size=(3, 6, 4)).astype("float32")
    x[0, 4:] = 0.0  # right padding
    x[1, 1] = 0.0  # a hole
    with torch.no_grad():
        got = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, np.asarray(model(x)), rtol=0, atol=1e-5)

    back = directory / "back.weights.h5"
    code, out, err = run(capsys, "port", spec, "--from", pt, "--to", back)
    assert (code, err) == (0, "")
    fresh = keras.Model.from_config(model.get_config())
    fresh.load_weights(back)
    for a, b in zip(model.get_weights(), fresh.get_weights(), strict=True):
        assert np.array_equal(a, b)
    code, out, err = run(capsys, "verify", spec, "--weights", pt)
    assert (code, err) == (0, ""), out


def test_import_refuses_another_axis(tmp_path, capsys):
    inp = keras.Input(shape=(5, 4), name="x")
    out = keras.layers.LayerNormalization(axis=1, name="ln")(inp)
    path = tmp_path / "axis.keras"
    keras.Model(inp, out).save(path)
    code, out, err = run(capsys, "import", path)
    assert (code, out) == (2, "")
    assert err == (
        f"{Path(path)}: error: cannot import the model; these have no equivalent in the language:\n"
        "  layer `ln` (LayerNormalization): `axis=[1]`: only normalisation over the last axis (axis=-1) "
        "has an equivalent\n"
    )
