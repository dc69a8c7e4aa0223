"""Graphs end to end: the Keras and PyTorch programs agree at every position of every output.

The specs in tests/data/graphs cover what Keras does with masks in a graph (the mask dropped next
to `initial_state`, explicit masks, every merge masked and not, Concatenate along time and
features), shared layers, bidirectional states in and out, the stepped kernels with initial
states, and a stateful graph over chunks and a reset. The seq2seq example's inference models,
fed their own argmax, reproduce the training graph's teacher-forced run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnnspec.check import load_models
from rnnspec.compiler import generate
from rnnspec.equivalence.harness import Programs, configure_frameworks, load_program, verify
from rnnspec.options import VerifyOptions
from rnnspec.verify import describe, verify_one
from tests.golden import EXAMPLES

GRAPHS = Path(__file__).parent / "data" / "graphs"


def programs(model) -> Programs:
    return Programs(generate(model, "keras", "g.rnn"), generate(model, "pytorch", "g.rnn"))


@pytest.mark.parametrize("path", sorted(GRAPHS.glob("*.rnn")), ids=lambda p: p.stem)
def test_graph_programs_agree_at_every_position(path):
    configure_frameworks()
    (model,) = load_models(path.read_text())
    result = verify(model, programs(model), VerifyOptions(), float64_judgement=False)
    assert result.passed, describe(result, path.name)
    assert result.max_abs_diff < 1e-5 and result.outputs == [o.split("#")[0] for o in model.outputs]
    assert len(result.cases) >= 4


def test_the_dropped_mask_is_what_is_reproduced():
    """dropmask.rnn's decoder gets no mask in PyTorch (Keras ignores it next to initial_state),
    while the layer after it reads the mask that flows on."""
    (model,) = load_models((GRAPHS / "dropmask.rnn").read_text())
    code = generate(model, "pytorch", "g.rnn")
    assert "        y, _ = self.dec(y, (h.unsqueeze(0), c.unsqueeze(0)))\n" in code
    assert "        z, _, _ = self.gru_1.masked(y, y_mask)\n" in code


def test_first_divergent_layer_of_a_graph(monkeypatch):
    """A wrong merge in the PyTorch program is found at its statement, not before."""
    from rnnspec.targets import pytorch_graph

    configure_frameworks()
    (model,) = load_models((EXAMPLES / "siamese.rnn").read_text())
    original = pytorch_graph.GraphForward.merge

    def wrong_subtract(self, node):
        original(self, node)
        if node.layer.kind == "subtract":  # `a - b` becomes `a + b`
            last = self.b.forward[-1]
            self.b.forward[-1] = type(last)(last.targets, last.value.replace(" - ", " + "))

    monkeypatch.setattr(pytorch_graph.GraphForward, "merge", wrong_subtract)
    result, _ = verify_one(model, "siamese.rnn", VerifyOptions(batch=3, time=4))
    assert not result.passed
    assert result.first_divergent_layer == "subtract_1"


def _seq2seq():
    models = {m.name: m for m in load_models((EXAMPLES / "seq2seq.rnn").read_text())}
    return [load_program(generate(models[name], "pytorch", "seq2seq.rnn"), name) for name in models], models


def test_greedy_decoding_with_the_step_model_equals_the_teacher_forced_run():
    """The encoder and the one-step decoder take the training graph's weights by layer name; fed
    its own argmax, the step model gives, at every step, the training graph's output for that
    target (PyTorch programs; Keras below)."""
    import torch

    (training, encoder, step), _ = _seq2seq()
    torch.manual_seed(0)
    trained = training.build_model().eval()
    state = trained.state_dict()
    enc, dec = encoder.build_model().eval(), step.build_model().eval()
    for module in (enc, dec):
        module.load_state_dict({k: v for k, v in state.items() if k in module.state_dict()})
    rng = np.random.default_rng(0)
    source = torch.from_numpy(rng.integers(1, 5000, size=(3, 7)))
    source[0, 5:] = 0  # padded, masked in the encoder
    with torch.no_grad():
        h, c = enc(source)
        token = torch.ones(3, 1, dtype=torch.int64)  # a start token
        steps, fed = [], [token]
        for _ in range(6):
            probs, h, c = dec(token, h, c)
            steps.append(probs[:, 0])
            token = probs.argmax(dim=-1)
            fed.append(token)
        forced = trained(source, torch.cat(fed[:-1], dim=1))
    np.testing.assert_allclose(forced.numpy(), torch.stack(steps, dim=1).numpy(), atol=1e-6)
    assert (forced.argmax(dim=-1) == torch.cat(fed[1:], dim=1)).all()


@pytest.mark.slow  # the PyTorch test above makes the same check; this one runs Keras step by step
def test_greedy_decoding_in_keras_takes_the_training_weights_by_layer_name():
    configure_frameworks()
    _, models = _seq2seq()
    keras_programs = {
        name: load_program(generate(model, "keras", "seq2seq.rnn"), f"{name}_k")
        for name, model in models.items()
    }
    trained = keras_programs["seq2seq"].build_model()
    enc = keras_programs["encoder"].build_model()
    dec = keras_programs["decoder_step"].build_model()
    rng = np.random.default_rng(1)
    for layer in trained.layers:
        if layer.weights:
            layer.set_weights(
                [rng.normal(scale=0.3, size=w.shape).astype("float32") for w in layer.get_weights()]
            )
    for model in (enc, dec):
        for layer in model.layers:
            if layer.weights:
                layer.set_weights(trained.get_layer(layer.name).get_weights())
    source = rng.integers(1, 5000, size=(2, 5)).astype("int32")
    source[1, 3:] = 0
    h, c = (np.asarray(t) for t in enc(source))
    token = np.ones((2, 1), "int32")
    steps, fed = [], [token]
    for _ in range(4):
        probs, h, c = (np.asarray(t) for t in dec([token, h, c]))
        steps.append(probs[:, 0])
        token = probs.argmax(axis=-1).astype("int32")
        fed.append(token)
    forced = np.asarray(trained([source, np.concatenate(fed[:-1], axis=1)]))
    np.testing.assert_allclose(forced, np.stack(steps, axis=1), atol=1e-6)


def test_port_by_layer_name_gives_each_model_of_a_file_the_trained_graphs_weights(tmp_path, capsys):
    """`rnnspec port --model encoder|decoder_step` take their layers' arrays from the training
    graph's .keras archive by layer name; verify proves each with them."""
    import torch

    from rnnspec.cli import main

    configure_frameworks()
    _, models = _seq2seq()
    trained = load_program(generate(models["seq2seq"], "keras", "seq2seq.rnn"), "trained").build_model()
    rng = np.random.default_rng(2)
    for layer in trained.layers:
        if layer.weights:
            layer.set_weights(
                [rng.normal(scale=0.3, size=w.shape).astype("float32") for w in layer.get_weights()]
            )
    archive = tmp_path / "trained.keras"
    trained.save(archive)
    spec = str(EXAMPLES / "seq2seq.rnn")
    for name, count in (("encoder", 5), ("decoder_step", 7)):
        out = tmp_path / f"{name}.pt"
        assert main(["port", spec, "--model", name, "--from", str(archive), "--to", str(out)]) == 0
        assert f"trained.keras -> {out}: {count} arrays" in capsys.readouterr().out
        state = torch.load(out)
        kernel = trained.get_layer("encoder" if name == "encoder" else "decoder").get_weights()[0]
        key = "encoder.weight_ih_l0" if name == "encoder" else "decoder.weight_ih_l0"
        np.testing.assert_array_equal(state[key].numpy(), kernel.T)
        result, _ = verify_one(
            models[name],
            "seq2seq.rnn",
            VerifyOptions(batch=3, time=4),
            weights=str(out),
            spec_of_weights=spec,
        )
        assert result.passed, describe(result, "seq2seq.rnn")
