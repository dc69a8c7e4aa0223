"""Hostile and damaged archives and weight files: `import`, `port` and `verify --weights` answer
in words (exit 2), read nothing unbounded, and write byte-identical outputs for the same weights."""

from __future__ import annotations

import copy
import json
import random
import zipfile
from pathlib import Path

import pytest

from rnnspec import importer
from rnnspec.cli import main
from rnnspec.equivalence.harness import configure_frameworks

configure_frameworks()
CONFIGS = sorted((Path(__file__).parent / "data" / "configs").glob("*.json"))
SPEC = "model m {\n    input tokens: int32[*]\n    embedding(20, 4, mask_zero=true)\n    lstm(3)\n    dense(2)\n}\n"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def archive(path: Path, config_text: str | bytes, **members: bytes) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", config_text)
        for name, data in members.items():
            zf.writestr(name.replace("__", "."), data)
    return path


# --- config.json that no Keras wrote -----------------------------------------------------------------

ODD_VALUES = [None, 0, -1, 10**400, 1.5, float("nan"), "", "x", [], {}, [1, 2, 3], ["a", 0, 0], {"a": 1},
              True, "a" * 1000, ["x", "y", "z"], [[None]], [["a", "b", "c"]]]  # fmt: skip


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


def test_a_config_fuzzer_finds_no_crash(tmp_path, capsys):
    """Values of the wrong type anywhere in real configs: each import ends in a message (or works)."""
    rng = random.Random(1)
    configs = [json.loads(p.read_text()) for p in CONFIGS]
    for number in range(150):
        config = copy.deepcopy(rng.choice(configs))
        for _ in range(rng.randint(1, 3)):
            where = rng.choice(list(_paths(config))[1:])
            node = config
            for key in where[:-1]:
                node = node[key]
            node[where[-1]] = copy.deepcopy(rng.choice(ODD_VALUES))
        path = archive(tmp_path / f"f{number}.keras", json.dumps(config))
        code, _, err = run(capsys, "import", path)
        assert code in (0, 2), err
        assert "Traceback" not in err and "internal error" not in err, err
        if code == 2:
            assert err.startswith(f"{path}: error: "), err


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "error: the archive's config.json cannot be read: it nests too deeply"),
        ('{"a": ' + "[" * 70 + "1" + "]" * 70 + "}", "error: config.json nests deeper than 64 levels; Keras writes about 12"),
        (json.dumps({"class_name": "Functional", "config": {"layers": [0] * 100_001}}),
         "error: config.json holds a list of 100,001 items; rnnspec reads at most 100,000"),
        (b"\xff\xfe", "error: the archive's config.json cannot be read: "),
    ],
)  # fmt: skip
def test_configs_out_of_bounds(tmp_path, capsys, config, message):
    path = archive(tmp_path / "bad.keras", config)
    code, out, err = run(capsys, "import", path)
    assert (code, out) == (2, "")
    assert err.startswith(f"{path}: {message}"), err


def test_a_zip_bomb_config_is_refused_before_it_is_read(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(importer, "MAX_CONFIG_BYTES", 10_000)
    path = archive(tmp_path / "bomb.keras", " " * 10_001 + "{}")
    code, _, err = run(capsys, "import", path)
    assert (code, err) == (
        2,
        f"{path}: error: config.json in the archive unpacks to more than 10,000 bytes; rnnspec refuses to read "
        "it (a damaged or hostile archive?)\n",
    )


def test_names_from_an_archive_reach_the_spec_as_identifiers_and_comments(tmp_path, capsys):
    config = json.loads((Path(__file__).parent / "data" / "configs" / "sequential.json").read_text())
    config["config"]["name"] = "evil\nmodel x {"
    for layer in config["config"]["layers"]:
        layer["config"]["name"] = layer["config"]["name"] + "\n}\x1b[2J"
    path = archive(tmp_path / "names\nmodel y {.keras", json.dumps(config))
    code, out, err = run(capsys, "import", path)
    assert (code, err) == (0, "")
    assert "\x1b" not in out
    comments = [line for line in out.splitlines() if line.startswith("#")]
    assert comments[0] == "# Imported by rnnspec from names\\x0amodel y {.keras."
    assert [line for line in out.splitlines() if line.startswith("model ")] == ["model evil_model_x__ {"]
    assert len(out.splitlines()) == len(comments) + 6  # the model line, the input, three layers, `}`
    spec = tmp_path / "imported.rnn"
    spec.write_text(out)
    assert run(capsys, "check", spec)[0] == 0


# --- weights files ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A spec, its trained-looking weights as .pt, .keras and .weights.h5 (written by port itself)."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(3)
    directory = tmp_path_factory.mktemp("weights")
    spec = directory / "m.rnn"
    spec.write_text(SPEC)
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(20, 4, mask_zero=True, name="embedding_1")(tokens)
    x = keras.layers.LSTM(3, name="lstm_1")(x)
    x = keras.layers.Dense(2, name="dense_1")(x)
    model = keras.Model(tokens, x, name="m")
    model.set_weights(
        [np.random.default_rng(i).normal(size=w.shape) for i, w in enumerate(model.get_weights())]
    )
    model.save(directory / "trained.keras")
    assert (
        main(["port", str(spec), "--from", str(directory / "trained.keras"), "--to", str(directory / "m.pt")])
        == 0
    )
    return spec, directory


def test_sparse_and_meta_tensors_are_refused(weights, capsys):
    import torch

    spec, directory = weights
    state = torch.load(directory / "m.pt", weights_only=True)
    for kind, change in (
        ("sparse", lambda t: t.to_sparse()),
        ("meta", lambda t: torch.empty(t.shape, device="meta")),
    ):
        edited = dict(state)
        edited["dense_1.weight"] = change(state["dense_1.weight"])
        path = directory / f"{kind}.pt"
        torch.save(edited, path)
        code, out, err = run(capsys, "port", spec, "--from", path, "--to", directory / f"{kind}.keras")
        assert (code, out) == (2, "")
        expected = {
            "sparse": "dense_1.weight: the file holds a torch.sparse_coo tensor; port needs a dense one",
            "meta": "dense_1.weight: the file holds a meta tensor (a shape without values)",
        }[kind]
        assert err.splitlines()[1:] == [f"  {expected}"], err
        assert not (directory / f"{kind}.keras").exists()


def test_damaged_weight_files_are_refused_in_words(weights, capsys):
    spec, directory = weights
    assert (
        main(["port", str(spec), "--from", str(directory / "m.pt"), "--to", str(directory / "m.weights.h5")])
        == 0
    )
    capsys.readouterr()
    whole = (directory / "m.weights.h5").read_bytes()
    truncated = directory / "truncated.weights.h5"
    truncated.write_bytes(whole[: len(whole) // 2])
    code, out, err = run(capsys, "port", spec, "--from", truncated, "--to", directory / "never.pt")
    assert (code, out) == (2, "")
    assert err.startswith(f"{truncated}: error: ") and "Traceback" not in err
    # A .keras archive whose weights unpack far beyond what the spec's weights can take.
    with zipfile.ZipFile(directory / "trained.keras") as zf:
        members = {info.filename: zf.read(info.filename) for info in zf.infolist()}
    bomb = directory / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data if name != "model.weights.h5" else data + b"\0" * (8 << 20))
    code, out, err = run(capsys, "port", spec, "--from", bomb, "--to", directory / "never.pt")
    assert (code, out) == (2, "")
    assert "model.weights.h5 in the archive unpacks to more than" in err
    assert not (directory / "never.pt").exists()


def test_port_outputs_are_byte_for_byte_the_same_each_time(weights, capsys):
    spec, directory = weights
    for suffix in (".pt", ".keras", ".weights.h5"):
        first, second = directory / f"a{suffix}", directory / f"b{suffix}"
        for out in (first, second):
            assert main(["port", str(spec), "--from", str(directory / "m.pt"), "--to", str(out)]) == 0
        assert first.read_bytes() == second.read_bytes(), suffix
    with zipfile.ZipFile(directory / "a.keras") as zf:
        assert json.loads(zf.read("metadata.json"))["date_saved"] == "1980-01-01@00:00:00"
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    # The renumbered archive is still a model Keras loads, with the same arrays.
    back = directory / "back.pt"
    assert main(["port", str(spec), "--from", str(directory / "a.keras"), "--to", str(back)]) == 0
    assert back.read_bytes() == (directory / "a.pt").read_bytes()


# --- found by an attack review -------------------------------------------------------------------------


def _rewrite_h5(source, target, change):
    """Copy a .weights.h5, letting `change(name, dataset, out_file)` write one dataset its own way."""
    import h5py

    with h5py.File(source) as src, h5py.File(target, "w") as dst:

        def copy(name, obj):
            if isinstance(obj, h5py.Group):
                dst.require_group(name)
            elif not change(name, obj, dst):
                dst.create_dataset(name, data=obj[()])

        src.visititems(copy)


def test_hdf5_that_reads_from_other_files_is_refused_before_any_read(weights, capsys, tmp_path):
    import h5py

    spec, directory = weights
    assert (
        main(["port", str(spec), "--from", str(directory / "m.pt"), "--to", str(tmp_path / "w.weights.h5")])
        == 0
    )
    capsys.readouterr()
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"\0" * 4096)
    first = "layers/dense/vars/0"

    def external(name, obj, dst):
        if name != first:
            return False
        dst.create_dataset(name, shape=obj.shape, dtype=obj.dtype, external=[(str(outside), 0, obj.nbytes)])
        return True

    def link(name, obj, dst):
        if name != first:
            return False
        dst[name] = h5py.ExternalLink(str(outside), "/x")
        return True

    def virtual(name, obj, dst):
        if name != first:
            return False
        layout = h5py.VirtualLayout(shape=obj.shape, dtype=obj.dtype)
        layout[:] = h5py.VirtualSource(str(outside), "x", shape=obj.shape)
        dst.create_virtual_dataset(name, layout)
        return True

    for label, change, what in (
        ("external", external, "is stored in another file; port reads weights held in the file only"),
        ("link", link, "is an external link; Keras weights files hold no links"),
        ("virtual", virtual, "is a virtual dataset; port reads weights held in the file only"),
    ):
        path = tmp_path / f"{label}.weights.h5"
        _rewrite_h5(tmp_path / "w.weights.h5", path, change)
        code, out, err = run(capsys, "port", spec, "--from", path, "--to", tmp_path / f"{label}.pt")
        assert (code, out, err) == (2, "", f"{path}: error: /{first} {what}\n")


def test_odd_tensors_and_values_are_refused_in_words(weights, capsys, tmp_path):
    import torch

    spec, directory = weights
    state = torch.load(directory / "m.pt", weights_only=True)
    one_nan = state["dense_1.weight"].clone()
    one_nan[0, 0] = float("nan")
    cases = {
        "negbit": ({**state, "dense_1.weight": state["dense_1.weight"]._neg_view()}, None),
        "inf": (
            {**state, "dense_1.weight": torch.full_like(state["dense_1.weight"], 1e300, dtype=torch.float64)},
            "  dense_1.weight: 6 of its 6 values are not finite in float32 (inf, NaN, or beyond float32)",
        ),
        "one nan": (  # one value "is" not finite (was "1 of its 6 values are")
            {**state, "dense_1.weight": one_nan},
            "  dense_1.weight: 1 of its 6 values is not finite in float32 (inf, NaN, or beyond float32)",
        ),
        "nested": (
            {**state, "extra": torch.nested.nested_tensor([torch.zeros(2), torch.zeros(3)])},
            "  extra: the file has an entry of shape nested that the spec has no place for",
        ),
        "many": (
            {**state, **{f"extra_{i:03d}": torch.zeros(1) for i in range(120)}},
            "  ... and 70 more",
        ),
    }
    for label, (edited, last_line) in cases.items():
        path = tmp_path / f"{label}.pt"
        torch.save(edited, path)
        code, out, err = run(capsys, "port", spec, "--from", path, "--to", tmp_path / f"{label}.weights.h5")
        if last_line is None:  # a lazily negated view is an ordinary tensor: ported as its values
            assert (code, err) == (0, ""), err
            continue
        assert (code, out) == (2, ""), label
        assert err.splitlines()[-1] == last_line, err
        assert len(err.splitlines()) <= 52


def test_an_encrypted_member_and_a_key_with_a_newline(tmp_path, capsys):
    path = archive(tmp_path / "enc.keras", "{}")
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # set "encrypted" in both headers
        at = data.index(signature)
        data[at + offset] |= 1
    path.write_bytes(bytes(data))
    code, _, err = run(capsys, "import", path)
    assert code == 2 and err.startswith(f"{path}: error: cannot read config.json from the archive: ")
    config = json.loads((Path(__file__).parent / "data" / "configs" / "sequential.json").read_text())
    config["config"]["layers"][2]["class_name"] = "Weird\n/tmp/x.keras: imported fine"
    path = archive(tmp_path / "nl.keras", json.dumps(config))
    code, _, err = run(capsys, "import", path)
    assert code == 2 and not any(line.startswith("/tmp/x.keras") for line in err.splitlines())
    big = {
        "class_name": "Functional",
        "config": {"layers": [], "name": "m", **{f"k{i}": i for i in range(100_001)}},
    }
    path = archive(tmp_path / "keys.keras", json.dumps(big))
    code, _, err = run(capsys, "import", path)
    assert (code, err) == (
        2,
        f"{path}: error: config.json holds an object of 100,003 items; rnnspec reads at most 100,000\n",
    )


def test_an_archive_listing_thousands_of_files_is_refused_before_zipfile_reads_them(tmp_path, capsys):
    path = tmp_path / "many.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", "{}")
        for number in range(1_500):
            zf.writestr(f"e{number}", "")
    code, _, err = run(capsys, "import", path)
    assert (code, err) == (
        2,
        f"{path}: error: the archive lists 1,501 files; a .keras archive holds 3 (rnnspec reads archives of at "
        "most 1,000)\n",
    )


def test_a_truncated_archive_and_a_pickled_module_are_named_for_what_they_are(weights, capsys):
    """A .keras cut short (a download that stopped) was "not a .keras archive" to import and a
    stack's port, and "File not found" (Keras's words) to a graph's; a .pt holding a pickled module
    gave torch's advice to load it unsafely. Found by a new-user trial."""
    import torch

    spec, directory = weights
    graph = directory / "graph.rnn"
    graph.write_text(
        "model m {\n    input tokens: int32[*]\n    x = embedding(20, 4, mask_zero=true)(tokens) as embedding_1\n"
        "    y = lstm(3)(x) as lstm_1\n    z = dense(2)(y) as dense_1\n    output z\n}\n"
    )
    whole = (directory / "trained.keras").read_bytes()
    cut = directory / "cut.keras"
    cut.write_bytes(whole[: len(whole) // 2])
    told = (
        f"{cut}: error: the .keras archive is truncated or damaged (the zip has no central directory at its "
        "end); copy or save it again\n"
    )
    assert run(capsys, "import", cut) == (2, "", told)
    for source in (spec, graph):
        assert run(capsys, "port", source, "--from", cut, "--to", directory / "never.pt") == (2, "", told)
    module, garbage = directory / "module.pt", directory / "garbage.pt"
    torch.save(torch.nn.Linear(2, 2), module)
    garbage.write_bytes(b"not a pickle")
    for path, why in (
        (
            module,
            "it pickles `torch.nn.modules.linear.Linear`, not only tensors (a whole module saved with "
            "torch.save(module)?), and rnnspec loads .pt files with weights_only=True",
        ),
        (garbage, "it is not a file torch.save wrote, or it is damaged (UnpicklingError)"),
    ):
        assert run(capsys, "port", spec, "--from", path, "--to", directory / "never.keras") == (
            2,
            "",
            f"{path}: error: cannot read a state_dict from the file: {why}; port reads files written by "
            "torch.save(module.state_dict(), PATH)\n",
        )
    assert not (directory / "never.pt").exists() and not (directory / "never.keras").exists()
