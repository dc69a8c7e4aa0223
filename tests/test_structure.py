"""Tier one: the generated Keras model is the hand-written one (parameters, shapes), and the weight
mapping is exact in both directions."""

import functools

import numpy as np
import pytest

from rnnspec.check import load_model
from rnnspec.compiler import generate
from rnnspec.equivalence import weights as w
from rnnspec.equivalence.extern import random_weights, user_code_path
from rnnspec.equivalence.harness import configure_frameworks, load_program
from tests.golden import EXAMPLES, example_models

configure_frameworks()
keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
L = keras.layers


def hand_written(name):
    """The guide's models, written by hand in Keras."""
    if name == "sentiment":
        inp = keras.Input(shape=(None,), dtype="int32")
        x = L.Embedding(1000, 64, mask_zero=True)(inp)
        x = L.LSTM(128)(x)
        out = L.Dense(10, activation="softmax")(x)
    elif name == "gru_simple_rnn":
        inp = keras.Input(shape=(None,), dtype="int32")
        x = L.Embedding(1000, 64)(inp)
        x = L.GRU(256, return_sequences=True)(x)
        x = L.SimpleRNN(128)(x)
        out = L.Dense(10)(x)
    elif name == "bidirectional":
        inp = keras.Input(shape=(5, 10))
        x = L.Bidirectional(L.LSTM(64, return_sequences=True))(inp)
        x = L.Bidirectional(L.LSTM(32))(x)
        out = L.Dense(10)(x)
    elif name == "paragraphs":
        inp = keras.Input(shape=(10, 50), batch_size=3)
        x = L.LSTM(64, stateful=True)(inp)
        out = L.Dense(10)(x)
    elif name == "masking":
        inp = keras.Input(shape=(None, 8))
        x = L.Masking(mask_value=-1.0)(inp)
        x = L.GRU(16, return_sequences=True)(x)
        x = L.LSTM(16)(x)
        out = L.Dense(1, activation="sigmoid")(x)
    else:
        return None
    return keras.Model(inp, out)


@functools.cache  # built once per example: the tests only read the models (parameters, shapes, weights)
def generated(name, model_name=None):
    model = load_model((EXAMPLES / f"{name}.rnn").read_text(), model_name)
    keras_program = load_program(generate(model, "keras", f"{name}.rnn"), f"{name}_k")
    torch_program = load_program(generate(model, "pytorch", f"{name}.rnn"), f"{name}_t")
    return model, keras_program.build_model(), torch_program.build_model()


def shapes(model):
    return [tuple(layer.output.shape) for layer in model.layers]


@pytest.mark.parametrize("name", ["sentiment", "gru_simple_rnn", "bidirectional", "paragraphs", "masking"])
def test_matches_hand_written_keras(name):
    ours, theirs = generated(name)[1], hand_written(name)
    assert ours.count_params() == theirs.count_params()
    assert shapes(ours) == shapes(theirs)


def test_guide_bidirectional_shapes():
    _, ours, _ = generated("bidirectional")
    assert [tuple(layer.output.shape) for layer in ours.layers[1:3]] == [(None, 5, 128), (None, 64)]


def test_layer_names_are_the_spec_names():
    _, ours, theirs = generated("attention")
    assert [layer.name for layer in ours.layers] == [
        "tokens", "embedding_1", "encoder", "pool", "dense_1",
    ]  # fmt: skip
    assert {name.split(".")[0] for name in theirs.state_dict()} == {
        "embedding_1",
        "encoder",
        "pool",
        "dense_1",
    }


@pytest.mark.parametrize("path, name", example_models(), ids=lambda v: v if isinstance(v, str) else v.stem)
def test_weight_shapes_from_the_ir(path, name):
    with user_code_path(path, load_model(path.read_text(), name)):
        ir, ours, module = generated(path.stem, name)
    users = {layer.name for layer in ir.layers if layer.extern is not None}
    # A user layer's shapes come from its built Keras layer, the rest from the IR alone.
    assert {
        k: [a.shape for a in v] for k, v in w.get_keras_weights(ir, ours).items() if k not in users
    } == w.keras_weight_shapes(ir)
    weights = w.random_keras_weights(ir, 1)
    weights.update(random_weights(ir, ours, 1))
    assert {k: [a.shape for a in v] for k, v in weights.items()} == {
        k: [a.shape for a in v] for k, v in w.get_keras_weights(ir, ours).items()
    }
    mapped = w.keras_to_torch(ir, weights, module)
    assert {k: tuple(v.shape) for k, v in mapped.items()} == {
        k: tuple(v.shape) for k, v in module.state_dict().items()
    }


MAPPED_SPECS = [
    "model m {\n input x: float32[*, 3]\n gru(4, return_sequences=true)\n"
    " bidirectional(gru(2, reset_after=false))\n dense(2)\n}\n",
    "model m {\n input x: float32[*, 3]\n bidirectional(lstm(4, return_sequences=true))\n"
    " simple_rnn(2, use_bias=false)\n}\n",
    "model m {\n input x: float32[*, 3]\n lstm(4, activation=relu, return_sequences=true)\n attention_pooling()\n}\n",
]


@pytest.mark.parametrize("source", MAPPED_SPECS)
def test_keras_to_torch_to_keras_returns_the_same_arrays(source):
    ir = load_model(source)
    original = w.random_keras_weights(ir, 3)
    back = w.torch_to_keras(ir, w.keras_to_torch(ir, original))
    assert original.keys() == back.keys()
    for name in original:
        assert len(original[name]) == len(back[name])
        for a, b in zip(original[name], back[name], strict=True):
            np.testing.assert_array_equal(a, b)


def test_gru_gate_blocks_are_reordered():
    ir = load_model("model m {\n input x: float32[*, 1]\n gru(1)\n}\n")
    kernel = np.array([[10.0, 20.0, 30.0]], dtype=np.float32)  # Keras blocks z, r, h
    recurrent = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    bias = np.array([[4.0, 5.0, 6.0], [7.0, 8.0, 9.0]], dtype=np.float32)
    state = w.keras_to_torch(ir, {"gru_1": [kernel, recurrent, bias]})
    np.testing.assert_array_equal(state["gru_1.weight_ih_l0"].ravel(), [20.0, 10.0, 30.0])  # torch r, z, n
    np.testing.assert_array_equal(state["gru_1.weight_hh_l0"].ravel(), [2.0, 1.0, 3.0])
    np.testing.assert_array_equal(state["gru_1.bias_ih_l0"], [5.0, 4.0, 6.0])
    np.testing.assert_array_equal(state["gru_1.bias_hh_l0"], [8.0, 7.0, 9.0])


def test_lstm_single_bias_becomes_two():
    ir = load_model("model m {\n input x: float32[*, 1]\n lstm(1)\n}\n")
    bias = np.arange(4, dtype=np.float32)
    state = w.keras_to_torch(ir, {"lstm_1": [np.ones((1, 4), np.float32), np.ones((1, 4), np.float32), bias]})
    np.testing.assert_array_equal(state["lstm_1.bias_ih_l0"], bias)
    np.testing.assert_array_equal(state["lstm_1.bias_hh_l0"], np.zeros(4))


def test_fused_kernels_are_used_where_exact():
    ir = load_model("model m {\n input x: float32[*, 3]\n lstm(4, return_sequences=true)\n gru(3, return_sequences=true)\n"
                    " simple_rnn(2, activation=relu, return_sequences=true)\n gru(2, reset_after=false)\n}\n")  # fmt: skip
    code = generate(ir, "pytorch", "m.rnn")
    assert "self.lstm_1 = FusedLSTM(3, 4, batch_first=True)" in code
    assert "self.gru_1 = FusedGRU(4, 3, batch_first=True)" in code
    assert 'self.simple_rnn_1 = FusedRNN(3, 2, nonlinearity="relu", batch_first=True)' in code
    assert "self.gru_2 = KerasGRU(" in code and "reset_after=False" in code


def test_a_stepped_module_swapped_into_a_packed_chain_gets_padded_steps():
    """keras_rnn hands a stepped module the padded steps even when the layer before passed them
    packed (a fused module swapped for a stepped one by hand, as the benchmark's loop variant does)."""
    chain = "model m {\n input tokens: int32[*]\n embedding(9, 4, mask_zero=true)\n gru(3, return_sequences=true)\n lstm(2)\n}\n"
    stepped = chain.replace("lstm(2)", "lstm(2, activation=relu)")
    program = load_program(generate(load_model(chain), "pytorch", "m.rnn"), "chain")
    assert "packed=True" in generate(load_model(chain), "pytorch", "m.rnn")
    other = load_program(generate(load_model(stepped), "pytorch", "m.rnn"), "stepped")
    module = program.build_model()
    swapped = program.build_model()
    swapped.load_state_dict(module.state_dict())
    swapped.lstm_1 = other.KerasLSTM(3, 2, activation=torch.tanh, recurrent_activation=torch.sigmoid)
    swapped.lstm_1.load_state_dict(module.lstm_1.state_dict())
    ids = torch.tensor([[1, 2, 0, 0], [0, 3, 4, 5], [6, 0, 7, 0], [0, 0, 0, 0]])
    with torch.no_grad():
        torch.testing.assert_close(swapped(ids), module(ids), atol=1e-6, rtol=0)


# --- the module import graph ------------------------------------------------------------------


def _import_graph() -> dict[str, set[str]]:
    """rnnspec module -> the rnnspec modules it imports, at any level (function-level included).

    `from rnnspec.x import y` counts as importing `rnnspec.x.y` when that is a module, else
    `rnnspec.x`. A package's own `__init__` runs first when a submodule is imported; that implicit
    edge is not counted (it is how packages work, not a dependency of the code).
    """
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "rnnspec"
    modules: dict[str, Path] = {}
    for path in root.rglob("*.py"):
        if "_prebuilt" in path.parts:
            continue
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            found: list[str] = []
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(
                        package.split(".")[: len(package.split(".")) - node.level + 1]
                        + ([base] if base else [])
                    )
                found = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            for target in found:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target.startswith("rnnspec") and target != name and target != "rnnspec":
                    graph[name].add(target)
    return graph


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        one = todo.pop()
        if one not in seen:
            seen.add(one)
            todo += graph[one]
    return seen


def test_the_module_import_graph_has_no_cycle():
    graph = _import_graph()
    assert {"rnnspec.cli", "rnnspec.kinds", "rnnspec.targets.pytorch", "rnnspec.check"} <= set(graph)
    cycles = sorted(name for name in graph if name in _reachable(graph, name))
    assert cycles == []


def test_only_the_command_line_imports_the_command_line():
    graph = _import_graph()
    importers = sorted(
        name
        for name, targets in graph.items()
        if not (name == "rnnspec.cli" or name.startswith("rnnspec.cli."))
        and name != "rnnspec.__main__"
        and any(t == "rnnspec.cli" or t.startswith("rnnspec.cli.") for t in targets)
    )
    assert importers == []
    assert graph["rnnspec.__main__"] == {"rnnspec.cli"}


def test_targets_are_independent_and_the_front_end_imports_none():
    graph = _import_graph()
    assert "rnnspec.targets.pytorch" not in _reachable(graph, "rnnspec.targets.keras")
    assert "rnnspec.targets.keras" not in _reachable(graph, "rnnspec.targets.pytorch")
    for front in ("rnnspec.check", "rnnspec.ir", "rnnspec.parse", "rnnspec.build", "rnnspec.kinds"):
        reached = _reachable(graph, front)
        assert sorted(m for m in reached if m.startswith("rnnspec.targets")) == [], front


# --- a kind the tools have no handler for ------------------------------------------------------


def test_a_kind_without_an_emitter_is_refused_by_name_not_by_an_assert(monkeypatch):
    """A kind declared in rnnspec/kinds/ but given no PyTorch emitter: the checker and the Keras
    target take it from its declaration; the PyTorch target refuses it in words, at its position."""
    from rnnspec import kinds
    from rnnspec.errors import Unsupported
    from rnnspec.ir import Attr, LayerSchema
    from rnnspec.kinds.base import LayerKind
    from rnnspec.targets import pytorch

    class Identity(LayerKind):
        name = "identity_test"
        schema = LayerSchema((), {"scale": Attr("float", 1.0)})
        keras_class = "keras.layers.Identity"
        h5_name = "identity"

    monkeypatch.setitem(kinds.KINDS, "identity_test", Identity())
    monkeypatch.setitem(kinds.LAYER_SCHEMAS, "identity_test", Identity.schema)
    model = load_model("model m {\n    input x: float32[*, 3]\n    identity_test()\n}\n")
    assert model.values["identity_test_1"].shape == (None, 3)
    assert '    h = keras.layers.Identity(name="identity_test_1")(x)\n' in generate(model, "keras", "m.rnn")
    assert "identity_test" not in pytorch.EMITTERS
    with pytest.raises(Unsupported) as caught:
        generate(model, "pytorch", "m.rnn")
    assert caught.value.render("m.rnn", None) == (
        "m.rnn:3:5: error: layer kind `identity_test` is not supported by the PyTorch target"
    )
    monkeypatch.delitem(kinds.KINDS, "identity_test")
    with pytest.raises(Unsupported) as caught:
        kinds.kind_of(model.layers[0], "rnnspec summary")
    assert str(caught.value) == "3:5: layer kind `identity_test` is not supported by rnnspec summary"
