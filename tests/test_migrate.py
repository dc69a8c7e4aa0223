"""`rnnspec import` and `rnnspec port`: a trained Keras model moved to PyTorch, and its weights back."""

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rnnspec.check import load_model
from rnnspec.cli import main
from rnnspec.compiler import generate
from rnnspec.equivalence.harness import configure_frameworks, load_program
from rnnspec.ir import MERGE_KINDS
from rnnspec.verify import prefix_model
from tests.golden import EXAMPLES, example_models

configure_frameworks()
np = pytest.importorskip("numpy")
keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

# Keras 3.15's own saving code trips numpy 2's __array__ deprecation; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

VOCAB, STEPS = 40, 9

TRAINED_SPEC = """\
# Imported by rnnspec from trained.keras (Keras {version}).
# The Keras model `tagger-v2` is `tagger_v2` here.
model tagger_v2 {{
    input tokens: int32[*]
    embedding(40, 8, mask_zero=true) as embedding
    bidirectional(lstm(6, return_sequences=true)) as encoder
    gru(5) as gru
    dense(3, activation=softmax) as dense
}}
"""


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def padded_ids(seed: int, rows: int = 8) -> np.ndarray:
    """Token ids with right padding, left padding, holes, a full row, an empty row (id 0 is padding)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCAB, size=(rows, STEPS)).astype("int32")
    ids[0, 5:] = 0  # right padding
    ids[1, :4] = 0  # left padding
    ids[2, [1, 4, 6]] = 0  # holes
    ids[3, :2] = 0
    ids[3, -2:] = 0  # both sides
    ids[5, :] = 0  # nothing but padding
    return ids


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Embedding(mask_zero) -> Bidirectional LSTM(return_sequences) -> GRU -> Dense, trained a few steps."""
    keras.utils.set_random_seed(1)
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(VOCAB, 8, mask_zero=True, name="embedding")(tokens)
    x = keras.layers.Bidirectional(keras.layers.LSTM(6, return_sequences=True), name="encoder")(x)
    x = keras.layers.GRU(5, name="gru")(x)
    x = keras.layers.Dense(3, activation="softmax", kernel_constraint="non_neg", name="dense")(x)
    model = keras.Model(tokens, x, name="tagger-v2")
    model.compile(
        optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy", run_eagerly=True
    )
    data = np.concatenate([padded_ids(seed) for seed in range(8)])
    labels = data[:, :3].sum(axis=1) % 3
    before = [w.copy() for w in model.get_weights()]
    model.fit(data, labels, batch_size=16, epochs=2, verbose=0)
    assert all(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # it trained
    directory = tmp_path_factory.mktemp("trained")
    model.save(directory / "trained.keras")
    return model, directory


@pytest.fixture(scope="module")
def migrated(trained):
    """The three commands of docs/migration.md, run in-process."""
    _, directory = trained
    spec, pt = directory / "model.rnn", directory / "model.pt"
    assert main(["import", str(directory / "trained.keras"), "-o", str(spec)]) == 0
    assert main(["compile", str(spec), "--target", "pytorch", "-o", str(directory / "model_torch.py")]) == 0
    assert main(["port", str(spec), "--from", str(directory / "trained.keras"), "--to", str(pt)]) == 0
    return spec, pt


def test_import_writes_the_spec_with_names_kept(trained, migrated):
    spec, _ = migrated
    assert spec.read_text() == TRAINED_SPEC.format(version=keras.__version__)


def test_trained_keras_model_runs_in_pytorch_with_the_same_outputs(trained, migrated):
    model, directory = trained
    spec, pt = migrated
    program = load_program((directory / "model_torch.py").read_text(), "tagger_torch")
    module = program.build_model()
    module.load_state_dict(torch.load(pt, weights_only=True), strict=True)
    module.eval()
    ids = padded_ids(seed=100)
    with torch.no_grad():
        got = module(torch.from_numpy(ids)).numpy()
    want = np.asarray(model(ids, training=False))
    assert got.shape == want.shape == (8, 3)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)

    # Every timestep of the bidirectional encoder too (zeros at padded steps, as in Keras).
    ir = load_model(spec.read_text())
    cut = prefix_model(ir, 2)
    prefix = load_program(generate(cut, "pytorch", "model.rnn"), "tagger_prefix").build_model()
    state = torch.load(pt, weights_only=True)
    prefix.load_state_dict({k: v for k, v in state.items() if k.split(".")[0] in ("embedding", "encoder")})
    with torch.no_grad():
        got_seq = prefix(torch.from_numpy(ids)).numpy()
    encoder = keras.Model(model.input, model.get_layer("encoder").output)
    want_seq = np.asarray(encoder(ids, training=False))
    assert got_seq.shape == want_seq.shape == (8, STEPS, 12)
    np.testing.assert_allclose(got_seq, want_seq, rtol=0, atol=1e-5)
    assert not got_seq[ids == 0].any() and got_seq[ids != 0].any()


def test_port_back_to_keras_gives_the_trained_arrays_exactly(trained, migrated, capsys):
    model, directory = trained
    spec, pt = migrated
    back = directory / "back.weights.h5"
    code, out, err = run(capsys, "port", spec, "--from", pt, "--to", back)
    assert (code, err) == (0, "")
    assert out == f"{pt} -> {back}: 12 arrays, 1,343 parameters of `tagger_v2` (PyTorch -> Keras)\n"
    fresh = keras.Model.from_config(model.get_config())  # new, untrained weights
    fresh.load_weights(back)
    for original, loaded in zip(model.layers, fresh.layers):
        for a, b in zip(original.get_weights(), loaded.get_weights(), strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b), original.name


def test_port_output_names_the_files_and_counts(trained, migrated, capsys):
    _, directory = trained
    spec, _ = migrated
    out_pt = directory / "again.pt"
    code, out, err = run(capsys, "port", spec, "--from", directory / "trained.keras", "--to", out_pt)
    assert (code, err) == (0, "")
    # torch has 15 arrays: each LSTM direction's one Keras bias becomes bias_ih + bias_hh (zero), GRU keeps two.
    assert (
        out
        == f"{directory / 'trained.keras'} -> {out_pt}: 15 arrays, 1,343 parameters of `tagger_v2` (Keras -> PyTorch)\n"
    )
    assert sorted(p.name for p in directory.iterdir() if p.name.startswith(".")) == []  # no temporaries left


def test_verify_passes_on_the_trained_weights(trained, migrated, capsys):
    _, directory = trained
    spec, pt = migrated
    for weights in (directory / "trained.keras", pt):
        code, out, err = run(capsys, "verify", spec, "--weights", weights)
        assert (code, err) == (0, ""), out
        assert out.startswith(f"{spec}: tagger_v2: ok ") and out.endswith(
            f"; trained weights from {weights}\n"
        )


def test_verify_weights_needs_one_model(tmp_path, trained, capsys):
    _, directory = trained
    spec = tmp_path / "two.rnn"
    spec.write_text(
        "model a {\n    input x: float32[*, 4]\n    lstm(3)\n}\nmodel b {\n    input x: float32[*, 4]\n    gru(3)\n}\n"
    )
    code, out, err = run(capsys, "verify", spec, "--weights", directory / "trained.keras")
    assert (code, out) == (2, "")
    assert (
        err
        == "rnnspec verify: error: --weights needs exactly one model; this run has 2 (a, b); choose one with --model\n"
    )


def test_port_refuses_a_shape_mismatch(trained, migrated, capsys):
    _, directory = trained
    spec, pt = migrated
    wider = directory / "wider.rnn"
    wider.write_text(spec.read_text().replace("gru(5)", "gru(7)"))
    target = directory / "never.weights.h5"
    code, out, err = run(capsys, "port", wider, "--from", pt, "--to", target)
    assert (code, out) == (2, "")
    assert err == (
        f"{pt}: error: the weights do not fit the spec's model `tagger_v2` ({wider}):\n"
        "  gru.weight_ih_l0: the spec needs shape (21, 12), the file has (15, 12)\n"
        "  gru.weight_hh_l0: the spec needs shape (21, 7), the file has (15, 5)\n"
        "  gru.bias_ih_l0: the spec needs shape (21,), the file has (15,)\n"
        "  gru.bias_hh_l0: the spec needs shape (21,), the file has (15,)\n"
        "  dense.weight: the spec needs shape (3, 7), the file has (3, 5)\n"
    )
    assert not target.exists()
    # Entries missing from the file, and entries the spec has no place for.
    state = torch.load(pt, weights_only=True)
    state["head.weight"] = state.pop("dense.weight")
    edited = directory / "edited.pt"
    torch.save(state, edited)
    code, out, err = run(capsys, "port", spec, "--from", edited, "--to", target)
    assert (code, out) == (2, "")
    assert err.splitlines()[1:] == [
        "  dense.weight: the spec needs shape (3, 5), the file has no such entry",
        "  head.weight: the file has an entry of shape (3, 5) that the spec has no place for",
    ]
    # From Keras files, the arrays are named as Keras names them.
    keras_file = directory / "shapes.weights.h5"  # this test's own (tests may run in any order)
    assert run(capsys, "port", spec, "--from", pt, "--to", keras_file, "--force")[0] == 0
    code, out, err = run(capsys, "port", wider, "--from", keras_file, "--to", target)
    assert (code, out) == (2, "")
    assert err.splitlines()[1:] == [
        "  gru.kernel: the spec needs shape (12, 21), the file has (12, 15)",
        "  gru.recurrent_kernel: the spec needs shape (7, 21), the file has (5, 15)",
        "  gru.bias: the spec needs shape (2, 21), the file has (2, 15)",
        "  dense.kernel: the spec needs shape (7, 3), the file has (5, 3)",
    ]
    assert not target.exists()


def test_port_from_keras_refuses_a_spec_that_computes_something_else(trained, migrated, capsys):
    _, directory = trained
    spec, _ = migrated
    other = directory / "other.rnn"
    other.write_text(spec.read_text().replace("activation=softmax", "activation=sigmoid"))
    code, out, err = run(
        capsys, "port", other, "--from", directory / "trained.keras", "--to", directory / "x.pt"
    )
    assert (code, out) == (2, "")
    assert err == (
        f"{directory / 'trained.keras'}: error: the model in this file computes another function than "
        "the spec `tagger_v2`:\n"
        "  layer 4 (`dense`): `activation` is sigmoid in the spec, softmax in the file\n"
    )
    fewer = directory / "fewer.rnn"
    fewer.write_text(spec.read_text().replace("    gru(5) as gru\n", ""))
    code, out, err = run(
        capsys, "port", fewer, "--from", directory / "trained.keras", "--to", directory / "x.pt"
    )
    assert (code, out) == (2, "")
    assert err.splitlines()[1:] == [
        "  the spec has embedding, bidirectional(lstm), dense; the file has embedding, bidirectional(lstm), gru, dense"
    ]


def test_port_refuses_to_overwrite_without_force(trained, migrated, capsys):
    _, directory = trained
    spec, pt = migrated
    target = directory / "exists.pt"
    target.write_bytes(b"keep me")
    code, out, err = run(capsys, "port", spec, "--from", directory / "trained.keras", "--to", target)
    assert (code, out, err) == (2, "", f"{target}: error: the file exists; pass --force to overwrite it\n")
    assert target.read_bytes() == b"keep me"
    code, out, err = run(
        capsys, "port", spec, "--from", directory / "trained.keras", "--to", target, "--force"
    )
    assert code == 0 and err == ""
    assert torch.load(target, weights_only=True).keys() == torch.load(pt, weights_only=True).keys()
    # Never the input weights or the spec, --force or not.
    for protected in (pt, spec):
        before = protected.read_bytes()
        code, out, err = run(capsys, "port", spec, "--from", pt, "--to", protected, "--force")
        assert code == 2 and "refusing to overwrite an input file" in err
        assert protected.read_bytes() == before


def test_import_refuses_to_overwrite_without_force(trained, capsys):
    _, directory = trained
    target = directory / "kept.rnn"
    target.write_text("# mine\n")
    code, out, err = run(capsys, "import", directory / "trained.keras", "-o", target)
    assert (code, out, err) == (2, "", f"{target}: error: the file exists; pass --force to overwrite it\n")
    assert target.read_text() == "# mine\n"
    assert run(capsys, "import", directory / "trained.keras", "-o", target, "--force")[0] == 0
    assert target.read_text() == TRAINED_SPEC.format(version=keras.__version__)


def test_a_missing_input_is_told_before_an_output_in_the_way(trained, migrated, tmp_path, capsys):
    """With the input missing and the output there, the message is the missing input (was "pass
    --force", and only with --force did the user learn the input was missing)."""
    spec, _ = migrated
    kept = tmp_path / "kept.pt"
    kept.write_bytes(b"mine")
    missing = tmp_path / "missing.keras"
    for argv in (["import", missing, "-o", kept], ["port", spec, "--from", missing, "--to", kept]):
        code, out, err = run(capsys, *argv)
        assert (code, out, err) == (
            2,
            "",
            f"{missing}: error: cannot read the file: No such file or directory\n",
        )
    assert kept.read_bytes() == b"mine"


def test_import_refuses_every_part_without_an_equivalent(tmp_path, capsys):
    x = keras.Input(shape=(None, 4), name="x")
    h = keras.layers.Conv1D(8, 3, padding="same", groups=2, name="conv")(x)
    h = keras.layers.LSTM(6, return_sequences=True, dtype="mixed_float16", name="lstm")(h)
    backward = keras.layers.GRU(7, return_sequences=True, go_backwards=True)
    h = keras.layers.Bidirectional(
        keras.layers.GRU(5, return_sequences=True), backward_layer=backward, name="bi"
    )(h)
    h = keras.layers.Dense(3, activation="hard_silu", kernel_constraint="non_neg", name="dense")(h)
    skip = keras.layers.Dense(3, name="skip")(x)
    h = keras.layers.Add(name="add")([h, skip])
    path = tmp_path / "bad.keras"
    keras.Model(x, h, name="bad").save(path)
    code, out, err = run(capsys, "import", path)
    assert (code, out) == (2, "")
    assert err == (
        f"{path}: error: cannot import the model; these have no equivalent in the language:\n"
        "  layer `conv` (Conv1D): `groups=2`: grouped convolution (groups > 1) has no equivalent\n"
        "  layer `lstm` (LSTM): dtype policy `mixed_float16` has no equivalent (rnnspec computes in float32)\n"
        "  layer `bi` (Bidirectional): a custom `backward_layer` has no equivalent (`units` is 7, the forward "
        "layer's 5)\n"
        '  layer `dense` (Dense): `activation="hard_silu"`: the activation has no equivalent\n'
    )


def _edit_config(source: Path, target: Path, edit) -> None:
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_import_refuses_options_keras_3_no_longer_writes(trained, tmp_path, capsys):
    """Configs edited by hand (or from other writers): time_major, implementation, zero_output_for_mask."""
    _, directory = trained

    def edit(config):
        layers = {layer["name"]: layer for layer in config["config"]["layers"]}
        layers["gru"]["config"].update(
            time_major=True, implementation=1, use_cudnn=True, zero_output_for_mask=True
        )
        layers["dense"]["config"]["lora_rank"] = 4
        layers["embedding"]["config"]["embeddings_constraint"] = {"class_name": "NonNeg", "config": {}}

    path = tmp_path / "edited.keras"
    _edit_config(directory / "trained.keras", path, edit)
    code, out, err = run(capsys, "import", path)
    assert (code, out) == (2, "")
    assert err.splitlines()[1:] == [
        "  layer `gru` (GRU): `time_major=true`: a time-major layout has no equivalent (specs are batch-first)",
        "  layer `gru` (GRU): `implementation=1`: only Keras's default implementation=2 is supported",
        "  layer `gru` (GRU): `zero_output_for_mask=true` on a masked sequence (masked timesteps output zeros) "
        "has no equivalent",
        "  layer `dense` (Dense): `lora_rank=4`: LoRA adapters have no equivalent",
    ]


def test_import_refuses_inputs_without_an_equivalent(tmp_path, capsys):
    """Input configs edited by hand: sparse, ragged and optional inputs, a shape without a time axis;
    in a stack and in a graph."""
    x = keras.Input((None,), dtype="int32", name="tokens")
    h = keras.layers.LSTM(3, name="lstm")(keras.layers.Embedding(10, 4, name="embedding")(x))
    keras.Model(x, h, name="one").save(tmp_path / "one.keras")
    a, b = keras.Input((None, 2), name="a"), keras.Input((None, 2), name="b")
    y = keras.layers.LSTM(3, name="lstm")(keras.layers.Add(name="add")([a, b]))
    keras.Model([a, b], y, name="two").save(tmp_path / "two.keras")

    def edit_one(config):
        config["config"]["layers"][0]["config"].update(sparse=True, ragged=True)

    def edit_two(config):
        layers = config["config"]["layers"]
        layers[0]["config"]["optional"] = True
        layers[1]["config"]["batch_shape"] = [None]

    _edit_config(tmp_path / "one.keras", tmp_path / "one_bad.keras", edit_one)
    _edit_config(tmp_path / "two.keras", tmp_path / "two_bad.keras", edit_two)
    head = "error: cannot import the model; these have no equivalent in the language:"
    assert run(capsys, "import", tmp_path / "one_bad.keras") == (
        2,
        "",
        f"{tmp_path / 'one_bad.keras'}: {head}\n"
        "  input `tokens`: `sparse=true` has no equivalent\n"
        "  input `tokens`: `ragged=true` has no equivalent\n",
    )
    assert run(capsys, "import", tmp_path / "two_bad.keras") == (
        2,
        "",
        f"{tmp_path / 'two_bad.keras'}: {head}\n"
        "  input `a`: `optional=true` has no equivalent\n"
        "  input `b`: the shape [null] has no equivalent\n",
    )


def test_import_of_a_stateful_sequential_model(tmp_path, capsys):
    model = keras.Sequential(
        [
            keras.Input(shape=(10, 4), batch_size=2, name="frames"),
            keras.layers.Masking(mask_value=-1.0, name="pad"),
            keras.layers.SimpleRNN(
                4, activation="relu", stateful=True, return_sequences=True, unroll=True, name="rnn"
            ),
            keras.layers.Dropout(0.25, name="dropout_1"),
            keras.layers.LSTM(
                3, stateful=True, use_bias=False, recurrent_activation="hard_sigmoid", name="lstm_1"
            ),
            keras.layers.Dense(2, activation="swish", use_bias=False, name="head"),
        ],
        name="streamer",
    )
    path = tmp_path / "stateful.keras"
    model.save(path)
    spec = tmp_path / "stateful.rnn"
    code, out, err = run(capsys, "import", path, "-o", spec)
    assert (code, out, err) == (0, "", "")
    assert spec.read_text() == (
        f"# Imported by rnnspec from stateful.keras (Keras {keras.__version__}).\n"
        "model streamer(batch_size=2) {\n"
        "    input frames: float32[10, 4]\n"
        "    masking(mask_value=-1.0) as pad\n"
        "    simple_rnn(4, activation=relu, return_sequences=true, stateful=true, unroll=true) as rnn\n"
        "    dropout(0.25)\n"
        "    lstm(3, use_bias=false, stateful=true, recurrent_activation=hard_sigmoid)\n"
        "    dense(2, activation=swish, use_bias=false) as head\n"
        "}\n"
    )
    # The Keras model's own weights, carried across batches, agree with the generated PyTorch.
    code, out, err = run(capsys, "verify", spec, "--weights", path)
    assert (code, err) == (0, ""), out
    assert "chunk" in out and "after reset" in out


# `import` reads built-in Keras layers only: a user's layer classes are the user's to declare.
@pytest.mark.parametrize(
    "path, name",
    [(p, m) for p, m in example_models() if "extern layer" not in p.read_text()],
    ids=lambda v: v if isinstance(v, str) else v.stem,
)
def test_import_of_each_generated_keras_model_gives_back_its_spec(path, name, tmp_path, capsys):
    """compile -> Keras -> .keras -> import: the same model, layer for layer (graphs included)."""
    example = path.name
    original = load_model(path.read_text(), name)
    program = load_program(generate(original, "keras", example), f"roundtrip_{original.name}")
    path = tmp_path / f"{original.name}.keras"
    program.build_model().save(path)
    code, out, err = run(capsys, "import", path)
    assert (code, err) == (0, "")
    back = load_model(out)
    assert back.name == original.name and back.batch_size == original.batch_size
    assert [(v.name, v.dtype, v.shape) for v in back.inputs] == [
        (v.name, v.dtype, v.shape) for v in original.inputs
    ]
    ordered = lambda m: sorted(m.layers, key=lambda layer: (layer.kind, layer.name))  # noqa: E731
    for a, b in zip(ordered(back), ordered(original), strict=True):
        # (an unnamed merge is named by Keras: `concatenate` for the spec's `concatenate_1`)
        assert (a.kind, a.attrs) == (b.kind, b.attrs) and (a.name == b.name or a.kind in MERGE_KINDS)
        assert (a.inner and (a.inner.kind, a.inner.attrs)) == (b.inner and (b.inner.kind, b.inner.attrs))
    if original.is_graph:  # the same graph: each layer applied as often, outputs in order
        calls = lambda m: sorted((n.layer.kind, n.call_index) for n in m.nodes)  # noqa: E731
        assert calls(back) == calls(original) and len(back.outputs) == len(original.outputs)
        assert [back.values[k].shape for k in back.outputs] == [
            original.values[k].shape for k in original.outputs
        ]
        return
    # `as NAME` exactly where the example has one: Keras names equal to KIND_N need none.
    aliases = re.compile(r"\) as \w+$", re.MULTILINE)
    assert len(aliases.findall(out)) == len(aliases.findall((EXAMPLES / example).read_text()))


def test_import_and_compile_import_no_framework(trained):
    _, directory = trained
    code = (
        "import sys\n"
        "from rnnspec.cli import main\n"
        f"assert main(['import', {str(directory / 'trained.keras')!r}]) == 0\n"
        "loaded = {'keras', 'tensorflow', 'torch', 'numpy', 'h5py'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == TRAINED_SPEC.format(version=keras.__version__)


def test_import_of_a_functional_graph(tmp_path, capsys):
    """Several inputs, a shared embedding, a merge of masked values, an encoder's states as a
    decoder's initial_state, a state among the outputs, outputs named in a dict."""
    a = keras.Input((None,), dtype="int32", name="a")
    b = keras.Input((None,), dtype="int32", name="b")
    embed = keras.layers.Embedding(10, 4, mask_zero=True, name="embed")
    ea, eb = embed(a), embed(b)
    both = keras.layers.Add(name="both")([ea, eb])
    _, h, c = keras.layers.LSTM(3, return_state=True, name="enc")(both)
    y = keras.layers.LSTM(3, return_sequences=True, name="dec")(eb, initial_state=[h, c])
    path = tmp_path / "g.keras"
    keras.Model([a, b], {"tags": y, "state": h}, name="g").save(path)
    code, out, err = run(capsys, "import", path)
    assert (code, err) == (0, "")
    assert out == (
        f"# Imported by rnnspec from g.keras (Keras {keras.__version__}).\n"
        "# The model's outputs are named: tags -> `dec`, state -> `enc_h`\n"
        "model g {\n"
        "    input a: int32[*]\n"
        "    input b: int32[*]\n"
        "    embed = embedding(10, 4, mask_zero=true)(a) as embed\n"
        "    embed_1 = embed(b)\n"
        "    both = add()(embed, embed_1)\n"
        "    _, enc_h, enc_c = lstm(3, return_state=true)(both) as enc\n"
        "    dec = lstm(3, return_sequences=true)(embed_1, initial_state=[enc_h, enc_c]) as dec\n"
        "    output dec, enc_h\n"
        "}\n"
    )
    spec = tmp_path / "g.rnn"
    spec.write_text(out)
    code, out, err = run(capsys, "verify", spec, "--weights", path)
    assert code == 0 and ": ok  max |diff| " in out, out + err


def test_import_refuses_a_computed_mask_next_to_initial_state(tmp_path, capsys):
    x = keras.Input((None,), dtype="int32", name="x")
    h0 = keras.Input((3,), name="h0")
    e = keras.layers.Embedding(10, 4, name="e")(x)
    y = keras.layers.GRU(3, name="gru")(e, initial_state=[h0], mask=keras.ops.not_equal(x, 0))
    path = tmp_path / "m.keras"
    keras.Model([x, h0], y, name="m").save(path)
    code, out, err = run(capsys, "import", path)
    assert (code, out) == (2, "")
    lines = err.splitlines()
    assert lines[:2] == [
        f"{path}: error: cannot import the model; these have no equivalent in the language:",
        "  layer `gru` is given a mask computed in the model next to its initial_state (Keras passes none "
        "there by itself); declare it as a bool input to import it",
    ]
    assert (
        re.fullmatch(r"  operation `not_equal(_\d+)?` \(NotEqual\) has no equivalent", lines[2])
        and len(lines) == 3
    )


def test_hdf5_files_are_refused_with_what_to_do_instead(trained, migrated, tmp_path, capsys):
    """A legacy `.h5` model and a `.weights.h5` given to the wrong command each get what to run
    instead (were: `import x.weights.h5` called it "a legacy HDF5 model file", and `port`/`verify`
    called a `.h5` "unknown weights format"; found by a new-user trial)."""
    model, _ = trained
    spec, _ = migrated
    legacy, weights = tmp_path / "old.h5", tmp_path / "w.weights.h5"
    model.save(legacy)
    model.save_weights(weights)
    assert run(capsys, "import", weights) == (
        2,
        "",
        f"{weights}: error: a .weights.h5 file holds weights, not the architecture: import the model's "
        "`.keras` archive (`model.save('model.keras')`), or write the spec and bring these weights with "
        f"`rnnspec port SPEC --from {weights} --to OUT`\n",
    )
    refused = (
        f"{legacy}: error: a legacy HDF5 file (`model.save` or `save_weights` to .h5) is not read; load it "
        "in Keras and save it as .keras (`keras.saving.load_model(...).save('old.keras')`) or its weights "
        "with `save_weights('old.weights.h5')`\n"
    )
    assert run(capsys, "port", spec, "--from", legacy, "--to", tmp_path / "m.pt") == (2, "", refused)
    assert run(capsys, "verify", spec, "--weights", legacy) == (2, "", refused)
    target = tmp_path / "new.h5"
    assert run(capsys, "port", spec, "--from", weights, "--to", target) == (
        2,
        "",
        f"{target}: error: Keras 3 saves and loads weights only under a name ending in .weights.h5: write "
        "new.weights.h5\n",
    )
    assert not target.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["old.h5", "w.weights.h5"]
