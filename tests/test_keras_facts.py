"""Measured facts about Keras 3 (TensorFlow backend, CPU) RNN / masking semantics.

These tests pin down the reference behaviour that the PyTorch code generator
of rnnspec must reproduce.  Source references are to
``site-packages/keras/src/...`` of the installed Keras (3.15.x).
"""

import os
import typing
import warnings

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest
import torch
from keras.src.backend import get_keras_mask

ATOL = 1e-5


# ---------------------------------------------------------------------------
# helpers: numpy reference cells + masked scan mirroring
# keras/src/backend/tensorflow/rnn.py (while_loop path)
# ---------------------------------------------------------------------------
def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def randomize(layer, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    layer.set_weights([(rng.normal(size=w.shape) * scale).astype("float32") for w in layer.get_weights()])
    return layer.get_weights()


def simple_step(W, U, b):
    def step(x, states):
        h = np.tanh(x @ W + states[0] @ U + b)
        return h, [h]

    return step


def lstm_step(W, U, b):
    def step(x, states):
        h, c = states
        z = x @ W + h @ U + b
        i, f, g, o = np.split(z, 4, axis=-1)
        c2 = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h2 = sigmoid(o) * np.tanh(c2)
        return h2, [h2, c2]

    return step


def gru_step(W, U, b, reset_after=True):
    u = U.shape[0]

    def step(x, states):
        h = states[0]
        if reset_after:
            bi, br = b[0], b[1]
        else:
            bi, br = b, np.zeros(3 * u, "float32")
        xz, xr, xh = np.split(x @ W + bi, 3, axis=-1)
        hz, hr = np.split(h @ U[:, : 2 * u] + br[: 2 * u], 2, axis=-1)
        z = sigmoid(xz + hz)
        r = sigmoid(xr + hr)
        if reset_after:
            hh = np.tanh(xh + r * (h @ U[:, 2 * u :] + br[2 * u :]))
        else:
            hh = np.tanh(xh + (r * h) @ U[:, 2 * u :])
        h2 = z * h + (1 - z) * hh
        return h2, [h2]

    return step


def masked_scan(step, x, mask, states, go_backwards=False, zero_output_for_mask=False):
    """Reference for keras backend.rnn with a mask.

    Returns (outputs in *processing* order, last_output, final_states).
    prev_output starts at ZEROS (not at the initial state).
    """
    T = x.shape[1]
    order = range(T - 1, -1, -1) if go_backwards else range(T)
    prev_out = None
    outs = []
    for t in order:
        out, new = step(x[:, t], states)
        if prev_out is None:
            prev_out = np.zeros_like(out)
        m = mask[:, t][:, None]
        fill = np.zeros_like(out) if zero_output_for_mask else prev_out
        out = np.where(m, out, fill)
        states = [np.where(m, n, s) for n, s in zip(new, states)]
        prev_out = out
        outs.append(out)
    return np.stack(outs, 1), outs[-1], states


RNG = np.random.default_rng(1234)
X = RNG.normal(size=(4, 6, 3)).astype("float32")
# row0: holes, row1: left padded, row2: right padded (last steps masked),
# row3: fully masked
MASK = np.array(
    [
        [1, 1, 0, 1, 0, 1],
        [0, 0, 1, 1, 1, 1],
        [1, 1, 1, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ],
    bool,
)
UNITS = 3


def build(cls, seed=0, **kw):
    layer = cls(UNITS, **kw)
    layer(X)
    w = randomize(layer, seed)
    return layer, w


def step_for(cls, w, **kw):
    if cls is keras.layers.SimpleRNN:
        return simple_step(*w), 1
    if cls is keras.layers.LSTM:
        return lstm_step(*w), 2
    return gru_step(*w, reset_after=kw.get("reset_after", True)), 1


CELLS = [keras.layers.SimpleRNN, keras.layers.LSTM, keras.layers.GRU]


# ---------------------------------------------------------------------------
# Fact 1: unidirectional masking semantics
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("cls", CELLS)
def test_unidirectional_mask_holds_previous_output_and_state(cls):
    layer, w = build(cls, return_sequences=True, return_state=True)
    out, *states = layer(X, mask=MASK)
    step, ns = step_for(cls, w)
    zeros = [np.zeros((4, UNITS), "float32")] * ns
    ref_seq, _, ref_states = masked_scan(step, X, MASK, zeros)
    np.testing.assert_allclose(np.asarray(out), ref_seq, atol=ATOL)
    for s, r in zip(states, ref_states):
        np.testing.assert_allclose(np.asarray(s), r, atol=ATOL)
    out = np.asarray(out)
    # masked step repeats previous output (hole at t=2 in row 0)
    np.testing.assert_array_equal(out[0, 2], out[0, 1])
    # left padding -> zeros before first valid step
    np.testing.assert_array_equal(out[1, :2], 0.0)
    # fully masked row: all zeros, states = initial (zeros)
    np.testing.assert_array_equal(out[3], 0.0)
    # return_sequences=False == last element of the held sequence
    layer2 = cls(UNITS)
    layer2(X)
    layer2.set_weights(w)
    last = np.asarray(layer2(X, mask=MASK))
    np.testing.assert_allclose(last, out[:, -1], atol=ATOL)
    # right-padded row -> last valid output (t=2)
    np.testing.assert_allclose(last[2], out[2, 2], atol=ATOL)
    np.testing.assert_array_equal(last[3], 0.0)


@pytest.mark.parametrize("unroll", [False, True])
def test_stateful_masked_prefix_outputs_zeros_not_carried_state(unroll):
    """With a carried non-zero state, outputs at masked steps before the first
    valid step are ZEROS (prev_output init is zeros, rnn.py:337-339/173-174),
    while the *state* is the carried one. A fully masked row returns output
    zeros (return_sequences=False) but state == carried state."""
    x = X[:2, :4]
    mask = np.array([[0, 0, 1, 1], [0, 0, 0, 0]], bool)
    for rs in (True, False):
        layer = keras.layers.GRU(
            UNITS,
            return_sequences=rs,
            return_state=True,
            stateful=True,
            unroll=unroll,
        )
        layer(x)
        w = randomize(layer, 3)
        layer.reset_state()
        layer(x)  # carry a non-zero state
        carried = layer.states[0].value.numpy().copy()
        assert np.abs(carried).min() > 1e-4
        out, state = layer(x, mask=mask)
        out, state = np.asarray(out), np.asarray(state)
        ref_seq, ref_last, ref_states = masked_scan(gru_step(*w), x, mask, [carried])
        if rs:
            np.testing.assert_array_equal(out[:, :2], 0.0)
            np.testing.assert_array_equal(out[1], 0.0)
            np.testing.assert_allclose(out, ref_seq, atol=ATOL)
        else:
            np.testing.assert_array_equal(out[1], 0.0)  # NOT carried h
            np.testing.assert_allclose(out, ref_last, atol=ATOL)
        np.testing.assert_allclose(state[1], carried[1], atol=0)
        np.testing.assert_allclose(state, ref_states[0], atol=ATOL)
        # first valid step of row 0 starts from the carried state
        np.testing.assert_allclose(layer.states[0].value.numpy()[0], ref_states[0][0], atol=ATOL)


def test_initial_state_masked_prefix_outputs_zeros():
    layer, w = build(keras.layers.SimpleRNN, return_sequences=True)
    h0 = np.ones((4, UNITS), "float32")
    out = np.asarray(layer(X, initial_state=h0, mask=MASK))
    np.testing.assert_array_equal(out[1, :2], 0.0)
    np.testing.assert_array_equal(out[3], 0.0)
    ref_seq, _, _ = masked_scan(simple_step(*w), X, MASK, [h0])
    np.testing.assert_allclose(out, ref_seq, atol=ATOL)


def test_mask_dtype_int_or_float_is_cast_to_bool():
    layer, _ = build(keras.layers.LSTM, return_sequences=True)
    a = np.asarray(layer(X, mask=MASK))
    b = np.asarray(layer(X, mask=MASK.astype("float32")))
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------
# Fact 2: Bidirectional masking
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("cls", CELLS)
def test_bidirectional_return_sequences_zero_output_for_mask(cls):
    b = keras.layers.Bidirectional(cls(UNITS, return_sequences=True), merge_mode=None)
    b(X)
    assert b.forward_layer.zero_output_for_mask is True
    assert b.backward_layer.zero_output_for_mask is True
    assert b.backward_layer.go_backwards is True
    randomize(b.forward_layer, 1)
    randomize(b.backward_layer, 2)
    yf, yb = (np.asarray(t) for t in b(X, mask=MASK))
    fstep, ns = step_for(cls, b.forward_layer.get_weights())
    bstep, _ = step_for(cls, b.backward_layer.get_weights())
    z = [np.zeros((4, UNITS), "float32")] * ns
    rf, _, _ = masked_scan(fstep, X, MASK, z, zero_output_for_mask=True)
    rb, _, _ = masked_scan(bstep, X, MASK, z, go_backwards=True, zero_output_for_mask=True)
    np.testing.assert_allclose(yf, rf, atol=ATOL)
    # backward half is flipped back to original time order
    np.testing.assert_allclose(yb, rb[:, ::-1], atol=ATOL)
    np.testing.assert_array_equal(yf[~MASK], 0.0)
    np.testing.assert_array_equal(yb[~MASK], 0.0)
    # a plain (non-bidirectional) layer does NOT zero masked outputs
    assert cls(UNITS).zero_output_for_mask is False


@pytest.mark.parametrize("cls", CELLS)
def test_bidirectional_last_output_with_mask(cls):
    b = keras.layers.Bidirectional(cls(UNITS), merge_mode=None)
    b(X)
    assert b.forward_layer.zero_output_for_mask is False
    randomize(b.forward_layer, 1)
    randomize(b.backward_layer, 2)
    yf, yb = (np.asarray(t) for t in b(X, mask=MASK))
    fstep, ns = step_for(cls, b.forward_layer.get_weights())
    bstep, _ = step_for(cls, b.backward_layer.get_weights())
    z = [np.zeros((4, UNITS), "float32")] * ns
    rf, _, _ = masked_scan(fstep, X, MASK, z)
    rb, _, _ = masked_scan(bstep, X, MASK, z, go_backwards=True)
    # forward: output at the last VALID step (row 2 is right padded)
    np.testing.assert_allclose(yf, rf[:, -1], atol=ATOL)
    np.testing.assert_allclose(yf[2], rf[:, 2][2], atol=ATOL)
    # backward: output after consuming the first valid original step
    # (row 1 is left padded -> backward output at t=2, not zeros)
    np.testing.assert_allclose(yb, rb[:, -1], atol=ATOL)
    np.testing.assert_allclose(yb[1], rb[1, 3], atol=ATOL)  # proc idx 3 = t 2
    assert np.abs(yb[1]).max() > 1e-4
    # fully masked row -> zeros in both halves
    np.testing.assert_array_equal(yf[3], 0.0)
    np.testing.assert_array_equal(yb[3], 0.0)


@pytest.mark.parametrize("cls", CELLS)
def test_bidirectional_unroll_true_backward_zeroing_bug(cls):
    """KERAS BUG: with unroll=True + go_backwards + zero_output_for_mask
    (i.e. the backward half of Bidirectional(return_sequences=True)), the
    unrolled path zeroes the *processing-order* outputs with the UN-flipped
    mask (backend/tensorflow/rnn.py:209-213 uses `mask`, only `mask_list`
    was reversed at 162-163). So unroll=True != unroll=False here."""
    b = keras.layers.Bidirectional(cls(UNITS, return_sequences=True, unroll=True), merge_mode=None)
    b(X)
    randomize(b.forward_layer, 1)
    randomize(b.backward_layer, 2)
    yf, yb = (np.asarray(t) for t in b(X, mask=MASK))
    fstep, ns = step_for(cls, b.forward_layer.get_weights())
    bstep, _ = step_for(cls, b.backward_layer.get_weights())
    z = [np.zeros((4, UNITS), "float32")] * ns
    rf, _, _ = masked_scan(fstep, X, MASK, z, zero_output_for_mask=True)
    np.testing.assert_allclose(yf, rf, atol=ATOL)  # forward half is fine
    # backward: held-previous-output scan (processing order), zeroed with the
    # ORIGINAL mask indexed by processing step, then flipped by Bidirectional
    held, _, _ = masked_scan(bstep, X, MASK, z, go_backwards=True)
    bug = np.where(MASK[..., None], held, 0.0)[:, ::-1]
    np.testing.assert_allclose(yb, bug, atol=ATOL)
    correct, _, _ = masked_scan(bstep, X, MASK, z, go_backwards=True, zero_output_for_mask=True)
    assert np.abs(yb - correct[:, ::-1]).max() > 1e-3


# ---------------------------------------------------------------------------
# Fact 3: go_backwards
# ---------------------------------------------------------------------------
def test_go_backwards_output_is_reversed_time_and_mask_not_flipped():
    layer, w = build(keras.layers.SimpleRNN, return_sequences=True, go_backwards=True)
    out = layer(X, mask=MASK)
    fwd = keras.layers.SimpleRNN(UNITS, return_sequences=True)
    fwd(X)
    fwd.set_weights(w)
    ref = np.asarray(fwd(X[:, ::-1], mask=MASK[:, ::-1]))
    # output index k corresponds to original time T-1-k (NOT re-flipped)
    np.testing.assert_allclose(np.asarray(out), ref, atol=ATOL)
    # propagated mask is the ORIGINAL (un-flipped) mask -> misaligned!
    np.testing.assert_array_equal(np.asarray(get_keras_mask(out)), MASK)
    np.testing.assert_array_equal(np.asarray(layer.compute_mask(X, MASK)), MASK)


def test_go_backwards_last_output():
    layer, w = build(keras.layers.GRU, go_backwards=True)
    out = np.asarray(layer(X, mask=MASK))
    _, last, _ = masked_scan(gru_step(*w), X, MASK, [np.zeros((4, UNITS), "float32")], go_backwards=True)
    np.testing.assert_allclose(out, last, atol=ATOL)


def test_bidirectional_with_go_backwards_layer():
    with pytest.raises(ValueError, match="different `go_backwards`"):
        keras.layers.Bidirectional(keras.layers.SimpleRNN(UNITS, go_backwards=True))
    # with an explicit backward_layer (go_backwards=False) roles swap:
    b = keras.layers.Bidirectional(
        keras.layers.SimpleRNN(UNITS, return_sequences=True, go_backwards=True),
        backward_layer=keras.layers.SimpleRNN(UNITS, return_sequences=True),
        merge_mode=None,
    )
    yf, yb = b(X)
    f, bl = b.forward_layer, b.backward_layer
    assert f.go_backwards is True and bl.go_backwards is False
    # "forward" half: reversed-time output, not flipped
    np.testing.assert_allclose(np.asarray(yf), np.asarray(f(X)), atol=ATOL)
    # "backward" half: forward-running output, flipped along time
    np.testing.assert_allclose(np.asarray(yb), np.asarray(bl(X))[:, ::-1], atol=ATOL)


# ---------------------------------------------------------------------------
# Fact 4: Masking layer
# ---------------------------------------------------------------------------
def test_masking_layer():
    x = np.array(
        [
            [[1.0, 2.0], [0.0, 0.0], [0.0, 5.0], [3.0, 0.0]],
            [[9.0, 9.0], [9.0, 1.0], [0.0, 0.0], [2.0, 2.0]],
        ],
        "float32",
    )
    y = keras.layers.Masking(0.0)(x)
    m = np.asarray(get_keras_mask(y))
    np.testing.assert_array_equal(m, [[True, False, True, True], [True, True, False, True]])
    exp = x * m[..., None]
    np.testing.assert_array_equal(np.asarray(y), exp)
    y9 = keras.layers.Masking(9.0)(x)
    np.testing.assert_array_equal(
        np.asarray(get_keras_mask(y9)),
        [[True, True, True, True], [False, True, True, True]],
    )
    # near miss [9, 1] is not masked and keeps its 9 unchanged
    np.testing.assert_array_equal(np.asarray(y9)[1, 1], [9.0, 1.0])
    np.testing.assert_array_equal(np.asarray(y9)[1, 0], [0.0, 0.0])


def test_masking_then_lstm_equals_explicit_mask():
    x = X.copy()
    x[~MASK] = 0.0
    inp = keras.Input(shape=(6, 3))
    lstm = keras.layers.LSTM(UNITS, return_sequences=True)
    model = keras.Model(inp, lstm(keras.layers.Masking()(inp)))
    randomize(lstm, 5)
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(lstm(x, mask=MASK)), atol=ATOL)


# ---------------------------------------------------------------------------
# Fact 5: GRU weight layout / torch port
# ---------------------------------------------------------------------------
def _zrh_to_rzn(a):
    z, r, h = np.split(a, 3, axis=-1)
    return np.ascontiguousarray(np.concatenate([r, z, h], axis=-1))


def test_gru_reset_after_ports_to_torch():
    layer, (W, U, b) = build(keras.layers.GRU, seed=11, return_sequences=True)
    assert W.shape == (3, 3 * UNITS) and U.shape == (UNITS, 3 * UNITS)
    assert b.shape == (2, 3 * UNITS)
    h0 = RNG.normal(size=(4, UNITS)).astype("float32")
    k = np.asarray(layer(X, initial_state=h0))
    t = torch.nn.GRU(3, UNITS, batch_first=True)
    with torch.no_grad():
        t.weight_ih_l0.copy_(torch.from_numpy(_zrh_to_rzn(W).T.copy()))
        t.weight_hh_l0.copy_(torch.from_numpy(_zrh_to_rzn(U).T.copy()))
        t.bias_ih_l0.copy_(torch.from_numpy(_zrh_to_rzn(b[0])))
        t.bias_hh_l0.copy_(torch.from_numpy(_zrh_to_rzn(b[1])))
        o, hn = t(torch.from_numpy(X), torch.from_numpy(h0)[None])
    np.testing.assert_allclose(o.numpy(), k, atol=ATOL)
    np.testing.assert_allclose(hn[0].numpy(), k[:, -1], atol=ATOL)


def test_gru_reset_before_formula():
    layer, (W, U, b) = build(keras.layers.GRU, seed=12, reset_after=False, return_sequences=True)
    assert b.shape == (3 * UNITS,)
    k = np.asarray(layer(X))
    ref, _, _ = masked_scan(
        gru_step(W, U, b, reset_after=False),
        X,
        np.ones(X.shape[:2], bool),
        [np.zeros((4, UNITS), "float32")],
    )
    np.testing.assert_allclose(k, ref, atol=ATOL)
    # and it is NOT what torch's reset_after-style GRU computes
    ref_after, _, _ = masked_scan(
        gru_step(W, U, np.stack([b, np.zeros_like(b)]), reset_after=True),
        X,
        np.ones(X.shape[:2], bool),
        [np.zeros((4, UNITS), "float32")],
    )
    assert np.abs(k - ref_after).max() > 1e-3


# ---------------------------------------------------------------------------
# Fact 6: LSTM torch port
# ---------------------------------------------------------------------------
def test_lstm_ports_to_torch():
    layer, (W, U, b) = build(keras.layers.LSTM, seed=13, return_sequences=True, return_state=True)
    assert b.shape == (4 * UNITS,)
    h0 = RNG.normal(size=(4, UNITS)).astype("float32")
    c0 = RNG.normal(size=(4, UNITS)).astype("float32")
    ko, kh, kc = (np.asarray(a) for a in layer(X, initial_state=[h0, c0]))
    t = torch.nn.LSTM(3, UNITS, batch_first=True)
    with torch.no_grad():
        t.weight_ih_l0.copy_(torch.from_numpy(W.T.copy()))
        t.weight_hh_l0.copy_(torch.from_numpy(U.T.copy()))
        t.bias_ih_l0.copy_(torch.from_numpy(b))
        t.bias_hh_l0.zero_()
        o, (hn, cn) = t(
            torch.from_numpy(X),
            (torch.from_numpy(h0)[None], torch.from_numpy(c0)[None]),
        )
    np.testing.assert_allclose(o.numpy(), ko, atol=ATOL)
    np.testing.assert_allclose(hn[0].numpy(), kh, atol=ATOL)
    np.testing.assert_allclose(cn[0].numpy(), kc, atol=ATOL)


# ---------------------------------------------------------------------------
# Fact 7 + 13: stateful
# ---------------------------------------------------------------------------
def test_reset_state_names():
    assert not hasattr(keras.Model, "reset_states")
    assert not hasattr(keras.Model, "reset_state")
    assert not hasattr(keras.layers.Layer, "reset_state")
    for cls in CELLS + [keras.layers.RNN, keras.layers.Bidirectional]:
        assert hasattr(cls, "reset_state")
        assert hasattr(cls, "reset_states")  # compat alias (rnn.py:321)


def test_stateful_requires_static_batch():
    with pytest.raises(ValueError, match="batch size must be static"):
        inp = keras.Input(shape=(6, 3))
        keras.layers.LSTM(UNITS, stateful=True)(inp)


def test_stateful_carries_per_row_and_reset():
    inp = keras.Input(batch_size=2, shape=(6, 3))
    lstm = keras.layers.LSTM(UNITS, stateful=True, return_sequences=True)
    model = keras.Model(inp, lstm(inp))
    randomize(lstm, 21)
    lstm.reset_state()
    x = X[:2]
    a = np.asarray(model(x))
    b = np.asarray(model(x))
    assert np.abs(a - b).max() > 1e-4
    # b == run on concatenated time axis (row-wise carry)
    ref = keras.layers.LSTM(UNITS, return_sequences=True)
    ref(x)
    ref.set_weights(lstm.get_weights())
    full = np.asarray(ref(np.concatenate([x, x], axis=1)))
    np.testing.assert_allclose(b, full[:, 6:], atol=ATOL)
    # per-row: state row i only depends on row i
    lstm.reset_state()
    x_sw = x[::-1].copy()
    model(x_sw)
    s_sw = [v.value.numpy().copy() for v in lstm.states]
    lstm.reset_state()
    model(x)
    s = [v.value.numpy().copy() for v in lstm.states]
    for p, q in zip(s, s_sw):
        np.testing.assert_allclose(p, q[::-1], atol=ATOL)
    lstm.reset_state()
    for v in lstm.states:
        np.testing.assert_array_equal(v.value.numpy(), 0.0)
    np.testing.assert_allclose(np.asarray(model(x)), a, atol=ATOL)
    # predict also carries, across calls and across batches inside one call
    lstm.reset_state()
    p1 = model.predict(x, verbose=0)
    p2 = model.predict(x, verbose=0)
    np.testing.assert_allclose(p1, a, atol=ATOL)
    np.testing.assert_allclose(p2, b, atol=ATOL)
    lstm.reset_state()
    x4 = np.concatenate([x, x], axis=0)
    p4 = model.predict(x4, batch_size=2, verbose=0)
    np.testing.assert_allclose(p4[:2], a, atol=ATOL)
    np.testing.assert_allclose(p4[2:], b, atol=ATOL)
    with pytest.raises(ValueError, match="batch size"):
        model(X[:3])


STATEFUL_ON_A_BACKEND = """
import numpy as np, keras
x = np.random.default_rng(0).normal(size=(2, 6, 3)).astype("float32")
lstm = keras.layers.LSTM(4, stateful=True)
model = keras.Sequential([keras.Input(batch_size=2, shape=(6, 3)), lstm])
a, b = model.predict_on_batch(x), model.predict_on_batch(x)
lstm.reset_state()
c, d = np.asarray(model(x)), np.asarray(model(x))
print(keras.backend.backend(), float(np.abs(a - b).max()), float(np.abs(c - d).max()), float(np.abs(a - c).max()))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_predict_on_batch_carries_a_stateful_layers_state_on_tensorflow_only(backend):
    """Keras is inconsistent across backends here. On TensorFlow, `predict_on_batch` carries a
    stateful layer's state from one call to the next, as `model(x)` and `predict` do (above).
    On JAX it does not: every call starts from the state the layer had, and only `model(x)`
    carries it: the RNN layer makes its state variables untracked
    (`@no_automatic_dependency_tracking` on `_create_state_variables`,
    keras/src/layers/rnn/rnn.py), so they are not among the model's non-trainable variables,
    and the JAX trainer's stateless predict step (keras/src/backend/jax/trainer.py) never returns
    their updates. rnnspec follows TensorFlow, the reference; docs/language.md tells JAX users.
    Slow tier: two fresh processes."""
    import subprocess
    import sys

    if backend == "jax":
        pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run(
        [sys.executable, "-c", STATEFUL_ON_A_BACKEND], env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr
    name, predict_moved, call_moved, first_differs = run.stdout.split()
    assert name == backend
    assert float(call_moved) > 1e-4  # model(x) carries the state on both backends
    assert float(first_differs) < ATOL  # both start from zeros
    if backend == "tensorflow":
        assert float(predict_moved) > 1e-4
    else:
        assert float(predict_moved) == 0.0


# ---------------------------------------------------------------------------
# Fact 8: activations
# ---------------------------------------------------------------------------
def test_activations():
    A = keras.activations
    v = np.array([-3.5, -1.0, 0.0, 1.0, 3.5], "float32")
    np.testing.assert_allclose(np.asarray(A.hard_sigmoid(v)), np.clip(v + 3, 0, 6) / 6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(A.hard_sigmoid(v)), [0, 1 / 3, 0.5, 2 / 3, 1], atol=1e-6)
    tv = torch.from_numpy(v)
    F = torch.nn.functional
    np.testing.assert_allclose(np.asarray(A.hard_sigmoid(v)), F.hardsigmoid(tv).numpy(), atol=1e-7)
    g = np.linspace(-4, 4, 17).astype("float32")
    tg = torch.from_numpy(g)
    # keras.activations.gelu / "gelu" string: approximate=False (exact erf)
    assert A.get("gelu") is A.gelu
    np.testing.assert_allclose(np.asarray(A.gelu(g)), F.gelu(tg).numpy(), atol=1e-6)
    assert np.abs(np.asarray(A.gelu(g)) - F.gelu(tg, approximate="tanh").numpy()).max() > 1e-4
    # ...but keras.ops.gelu defaults to approximate=True (tanh)
    np.testing.assert_allclose(
        np.asarray(keras.ops.gelu(g)), F.gelu(tg, approximate="tanh").numpy(), atol=1e-6
    )
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    np.testing.assert_allclose(
        np.asarray(A.selu(g)),
        scale * np.where(g > 0, g, alpha * (np.exp(g) - 1)),
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(np.asarray(A.selu(g)), F.selu(tg).numpy(), atol=1e-6)
    np.testing.assert_allclose(np.asarray(A.elu(g)), np.where(g > 0, g, np.exp(g) - 1), atol=1e-6)
    np.testing.assert_allclose(np.asarray(A.softplus(g)), np.log1p(np.exp(g)), atol=1e-6)
    np.testing.assert_allclose(np.asarray(A.softplus(g)), F.softplus(tg).numpy(), atol=1e-6)
    np.testing.assert_allclose(np.asarray(A.softsign(g)), g / (1 + np.abs(g)), atol=1e-6)
    assert A.get("swish") is A.silu
    np.testing.assert_allclose(np.asarray(A.get("swish")(g)), g * sigmoid(g), atol=1e-6)
    np.testing.assert_allclose(np.asarray(A.exponential(g)), np.exp(g), rtol=1e-6)
    m = g.reshape(1, 17, 1).repeat(2, axis=-1) + np.array([0, 1], "float32")
    m = m.reshape(17, 2)
    sm = np.exp(m) / np.exp(m).sum(-1, keepdims=True)
    np.testing.assert_allclose(np.asarray(A.softmax(m)), sm, atol=1e-6)
    # default RNN activations
    assert keras.layers.LSTM(2).recurrent_activation is A.sigmoid
    assert keras.layers.GRU(2).recurrent_activation is A.sigmoid
    assert keras.layers.SimpleRNN(2).activation is A.tanh


# ---------------------------------------------------------------------------
# Fact 9: GlobalAveragePooling1D with mask
# ---------------------------------------------------------------------------
def test_global_average_pooling_mask():
    h = np.arange(12, dtype="float32").reshape(2, 3, 2) + 1
    mk = np.array([[1, 0, 1], [0, 0, 0]], bool)
    y = np.asarray(keras.layers.GlobalAveragePooling1D()(h, mask=mk))
    np.testing.assert_allclose(y[0], (h[0, 0] + h[0, 2]) / 2)
    assert np.isnan(y[1]).all()  # 0/0 -> NaN for a fully masked row


# ---------------------------------------------------------------------------
# Fact 10: mask propagation through Dense / Dropout; reading masks
# ---------------------------------------------------------------------------
def test_mask_propagation_dense_dropout():
    ids = np.array([[0, 2, 0, 3], [1, 3, 4, 0], [0, 0, 0, 0]])
    emb = keras.layers.Embedding(5, 3, mask_zero=True)
    t = emb(ids)
    np.testing.assert_array_equal(np.asarray(get_keras_mask(t)), ids != 0)
    assert t._keras_mask is get_keras_mask(t)
    d = keras.layers.Dense(2)
    t2 = d(t)
    np.testing.assert_array_equal(np.asarray(get_keras_mask(t2)), ids != 0)
    # Dense does not zero masked positions
    assert np.abs(np.asarray(t2)[0, 0]).max() > 0
    t3 = keras.layers.Dropout(0.5)(t2)
    np.testing.assert_array_equal(np.asarray(get_keras_mask(t3)), ids != 0)
    np.testing.assert_array_equal(np.asarray(t3), np.asarray(t2))  # inference
    # layers without mask support drop the mask with a warning
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        t4 = keras.layers.Conv1D(2, 1)(t)
    assert get_keras_mask(t4) is None
    assert any("does not support masking" in str(x.message) for x in w)


def test_functional_embedding_dense_lstm_uses_mask():
    ids = np.array([[0, 2, 0, 3], [1, 3, 4, 0], [0, 0, 0, 0]])
    inp = keras.Input(shape=(4,), dtype="int32")
    e = keras.layers.Embedding(5, 3, mask_zero=True)
    d = keras.layers.Dense(3)
    lstm = keras.layers.LSTM(UNITS, return_sequences=True)
    out = lstm(d(e(inp)))
    model = keras.Model(inp, out)
    assert out._keras_mask is not None  # symbolic mask on KerasTensor
    y = np.asarray(model(ids))
    h = d(e(ids))
    np.testing.assert_allclose(y, np.asarray(lstm(h, mask=ids != 0)), atol=ATOL)
    assert np.abs(y - np.asarray(lstm(h, mask=np.ones((3, 4), bool)))).max() > 1e-4
    np.testing.assert_array_equal(y[2], 0.0)


# ---------------------------------------------------------------------------
# Fact 11: Bidirectional return_state ordering and merge modes
# ---------------------------------------------------------------------------
def test_bidirectional_return_state_and_merge_modes():
    x = X[:, :4]
    for mm in ("concat", "sum", "ave", "mul", None):
        b = keras.layers.Bidirectional(keras.layers.LSTM(UNITS, return_state=True), merge_mode=mm)
        r = b(x)
        f, bw = b.forward_layer, b.backward_layer
        fo, fh, fc = (np.asarray(a) for a in f(x))
        bo, bh, bc = (np.asarray(a) for a in bw(x))
        r = [np.asarray(a) for a in r]
        if mm is None:
            assert len(r) == 6  # [fwd_out, bwd_out, fh, fc, bh, bc]
            outs, states = r[:2], r[2:]
            np.testing.assert_allclose(outs[0], fo, atol=ATOL)
            np.testing.assert_allclose(outs[1], bo, atol=ATOL)
        else:
            assert len(r) == 5  # [out, fh, fc, bh, bc]
            outs, states = r[0], r[1:]
            exp = {
                "concat": np.concatenate([fo, bo], -1),
                "sum": fo + bo,
                "ave": (fo + bo) / 2,
                "mul": fo * bo,
            }[mm]
            np.testing.assert_allclose(outs, exp, atol=ATOL)
        for s, e in zip(states, (fh, fc, bh, bc)):
            np.testing.assert_allclose(s, e, atol=ATOL)
    assert keras.layers.Bidirectional(keras.layers.LSTM(2)).merge_mode == "concat"


# ---------------------------------------------------------------------------
# Fact 12: parameter counts
# ---------------------------------------------------------------------------
def test_param_counts():
    def count(layer):
        layer.build((None, 10, 64))
        return layer.count_params()

    u, i = 128, 64
    assert count(keras.layers.LSTM(u)) == 4 * u * (i + u + 1) == 98816
    assert count(keras.layers.GRU(u)) == 3 * u * (i + u + 2) == 74496
    assert count(keras.layers.GRU(u, reset_after=False)) == 3 * u * (i + u + 1)
    assert count(keras.layers.SimpleRNN(u)) == u * (i + u + 1) == 24704


# ---------------------------------------------------------------------------
# Fact 14: unroll with mask
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("go_backwards", [False, True])
def test_unroll_matches_loop_with_mask(cls, go_backwards):
    res = []
    for unroll in (False, True):
        layer = cls(
            UNITS,
            return_sequences=True,
            return_state=True,
            unroll=unroll,
            go_backwards=go_backwards,
        )
        layer(X)
        randomize(layer, 31)
        res.append([np.asarray(a) for a in layer(X, mask=MASK)])
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, atol=ATOL)


# ---------------------------------------------------------------------------
# Fact 15: cuDNN flags on CPU
# ---------------------------------------------------------------------------
def test_use_cudnn_flags_on_cpu():
    assert keras.layers.LSTM(2).use_cudnn == "auto"
    assert keras.layers.GRU(2).use_cudnn == "auto"
    with pytest.raises(ValueError):
        keras.layers.SimpleRNN(2, use_cudnn=True)
    # use_cudnn=True on CPU raises at call time; "auto" silently falls back
    with pytest.raises(ValueError, match="use_cudnn=True"):
        keras.layers.LSTM(2, use_cudnn=True)(X)
    # "auto" and False give identical results (generic path, holes allowed)
    a = keras.layers.LSTM(UNITS, return_sequences=True, use_cudnn="auto")
    a(X)
    w = randomize(a, 41)
    b = keras.layers.LSTM(UNITS, return_sequences=True, use_cudnn=False)
    b(X)
    b.set_weights(w)
    np.testing.assert_array_equal(np.asarray(a(X, mask=MASK)), np.asarray(b(X, mask=MASK)))


# ---------------------------------------------------------------------------
# Fact 16: user layers and the mask (extern layers: consume | keep | produce)
# keras/src/layers/layer.py: __call__ step 6 fills `mask=` from the input's mask when `call`
# takes one; after the call, only a layer with `supports_masking` sets an output mask, through
# `_set_mask_metadata`, which calls `compute_mask(inputs, previous_mask)` unless every output
# already carries a mask; `supports_masking` defaults to True when `compute_mask` is overridden.
# ---------------------------------------------------------------------------
class _Consume(keras.layers.Layer):
    """A mask consumer as users write it: `call(inputs, mask=None)`, no supports_masking."""

    seen: typing.ClassVar[list] = []

    def call(self, inputs, mask=None):
        _Consume.seen.append(mask)
        return keras.ops.sum(inputs, axis=1)


class _Keep(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        return inputs * 2.0


class _Produce(keras.layers.Layer):
    """Marks timesteps whose features are all below 0.5 as padding."""

    def __init__(self, identity=False, **kwargs):
        super().__init__(**kwargs)
        self.identity = identity

    def call(self, inputs, mask=None):
        return inputs if self.identity else inputs * 1.0

    def compute_mask(self, inputs, mask=None):
        return keras.ops.any(inputs >= 0.5, axis=-1)


_IDS = np.array([[1, 2, 0, 0, 3], [0, 0, 1, 2, 3], [1, 0, 2, 0, 3]])


def test_user_call_receives_the_mask_and_a_consumer_destroys_it():
    _Consume.seen.clear()
    e = keras.layers.Embedding(10, 4, mask_zero=True)(_IDS)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = _Consume()(e)
    np.testing.assert_array_equal(np.asarray(_Consume.seen[-1]), _IDS != 0)  # bool [batch, time]
    assert _Consume.seen[-1].dtype == "bool"
    assert get_keras_mask(out) is None
    assert any("will therefore destroy the mask" in str(x.message) for x in w)
    _Consume()(np.ones((3, 5, 4), "float32"))
    assert _Consume.seen[-1] is None  # no mask on the input: mask=None


def test_supports_masking_passes_the_mask_on_and_without_it_the_next_lstm_sees_none():
    def run(layer):
        inp = keras.Input(shape=(None,), dtype="int32")
        lstm = keras.layers.LSTM(UNITS)
        embedding = keras.layers.Embedding(10, 4, mask_zero=True)
        model = keras.Model(inp, lstm(layer(embedding(inp))))
        h = layer(embedding(_IDS))
        return np.asarray(model(_IDS)), lstm, h

    y, lstm, h = run(_Keep())
    assert get_keras_mask(h) is not None
    np.testing.assert_array_equal(np.asarray(get_keras_mask(h)), _IDS != 0)
    np.testing.assert_allclose(y, np.asarray(lstm(h, mask=_IDS != 0)), atol=ATOL)

    class _NoSupport(keras.layers.Layer):
        def call(self, inputs, mask=None):
            return inputs * 2.0

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y, lstm, h = run(_NoSupport())
    assert get_keras_mask(h) is None
    np.testing.assert_allclose(y, np.asarray(lstm(h)), atol=ATOL)  # every step runs
    assert np.abs(y - np.asarray(lstm(h, mask=_IDS != 0))).max() > 1e-4


def test_compute_mask_sets_the_mask_the_next_lstm_uses():
    x = np.random.default_rng(3).uniform(size=(3, 6, 2)).astype("float32")
    x[0, 2:4] = 0.1  # a hole
    x[1, :3] = 0.2  # left padding
    x[2] = 0.0  # fully masked
    produced = (x >= 0.5).any(axis=-1)
    assert _Produce().supports_masking  # overriding compute_mask turns it on
    inp = keras.Input(shape=(None, 2))
    lstm = keras.layers.LSTM(UNITS, return_sequences=True)
    model = keras.Model(inp, lstm(_Produce()(inp)))
    y = np.asarray(model(x))
    np.testing.assert_allclose(y, np.asarray(lstm(x, mask=produced)), atol=ATOL)
    np.testing.assert_array_equal(y[2], 0.0)
    # compute_mask sees the incoming mask, and its result replaces it
    e = keras.layers.Embedding(10, 4, mask_zero=True)(_IDS)
    np.testing.assert_array_equal(
        np.asarray(get_keras_mask(_Produce()(e))), (np.asarray(e) >= 0.5).any(axis=-1)
    )


def test_compute_mask_is_skipped_when_call_returns_its_masked_input():
    # _set_mask_metadata returns early when every output already carries a mask: a `produce`
    # layer whose call returns `inputs` itself keeps the incoming mask, not its own.
    e = keras.layers.Embedding(10, 4, mask_zero=True)(_IDS)
    np.testing.assert_array_equal(np.asarray(get_keras_mask(_Produce(identity=True)(e))), _IDS != 0)


# ---------------------------------------------------------------------------
# Fact 17: initial weights (keras/src/layers/rnn/*.py build(), initializers/*)
# ---------------------------------------------------------------------------
def glorot_limit(fan_in, fan_out):
    return np.sqrt(6.0 / (fan_in + fan_out))


@pytest.mark.parametrize(
    "cls,gates", [(keras.layers.SimpleRNN, 1), (keras.layers.LSTM, 4), (keras.layers.GRU, 3)]
)
def test_recurrent_initial_weights(cls, gates):
    keras.utils.set_random_seed(0)
    units, features = 32, 48
    layer = cls(units)
    layer.build((None, 5, features))
    kernel, recurrent, bias = layer.get_weights()
    # kernel: glorot uniform over (features, gates * units), as one matrix
    limit = glorot_limit(features, gates * units)
    assert np.abs(kernel).max() <= limit
    assert abs(kernel.std() - limit / np.sqrt(3)) < 0.03 * limit
    # recurrent kernel: orthogonal over (units, gates * units): orthonormal rows, gain 1
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(units), atol=1e-5)
    # bias: zeros; an LSTM's forget block (i, f, c, o) ones (unit_forget_bias=True); a GRU with
    # reset_after has an input and a recurrent bias
    expected = np.zeros(bias.shape, "float32")
    if cls is keras.layers.LSTM:
        expected[units : 2 * units] = 1.0
    assert bias.shape == ((2, 3 * units) if cls is keras.layers.GRU else (gates * units,))
    np.testing.assert_array_equal(bias, expected)


def test_lstm_unit_forget_bias_false_starts_at_zero():
    layer = keras.layers.LSTM(3, unit_forget_bias=False)
    layer.build((None, 2, 4))
    np.testing.assert_array_equal(layer.get_weights()[2], np.zeros(12))


def test_embedding_dense_initial_weights():
    keras.utils.set_random_seed(0)
    embedding = keras.layers.Embedding(2000, 16)
    embedding.build((None, 3))
    (table,) = embedding.get_weights()
    assert np.abs(table).max() <= 0.05
    assert abs(table.std() - 0.05 / np.sqrt(3)) < 1e-3  # uniform in +-0.05
    dense = keras.layers.Dense(40)
    dense.build((None, 60))
    kernel, bias = dense.get_weights()
    limit = glorot_limit(60, 40)
    assert np.abs(kernel).max() <= limit
    assert abs(kernel.std() - limit / np.sqrt(3)) < 0.03 * limit
    np.testing.assert_array_equal(bias, np.zeros(40))


# ---------------------------------------------------------------------------
# Fact 18: recurrent dropout masks (keras/src/layers/rnn/dropout_rnn_cell.py, simple_rnn.py,
# lstm.py, gru.py): drawn once per call, one per row, kept for every timestep, elements kept
# with probability 1 - rate and scaled by 1 / (1 - rate)
# ---------------------------------------------------------------------------
def identity_simple_rnn(features, recurrent, **options):
    layer = keras.layers.SimpleRNN(features, activation="linear", return_sequences=True, **options)
    layer.build((None, 3, features))
    layer.set_weights([np.eye(features), recurrent * np.eye(features), np.zeros(features)])
    return layer


def test_input_dropout_one_mask_per_row_for_every_timestep():
    keras.utils.set_random_seed(0)
    rate, rows, features = 0.3, 4000, 8
    layer = identity_simple_rnn(features, 0.0, dropout=rate)
    x = np.random.default_rng(0).uniform(1, 2, size=(rows, 3, features)).astype("float32")
    y = np.asarray(layer(x, training=True))
    scale = y / x  # the mask, per timestep
    np.testing.assert_allclose(scale, scale[:, :1, :].repeat(3, axis=1), rtol=1e-6)
    kept = scale[:, 0] > 0
    np.testing.assert_allclose(scale[:, 0][kept], 1 / (1 - rate), rtol=1e-6)
    assert abs((~kept).mean() - rate) < 0.015
    # inference mode: no dropout
    np.testing.assert_allclose(np.asarray(layer(x, training=False)), x, rtol=1e-6)


def test_recurrent_dropout_one_mask_per_row_for_every_step():
    keras.utils.set_random_seed(0)
    rate, rows, features = 0.4, 4000, 8
    layer = identity_simple_rnn(features, 1.0, recurrent_dropout=rate)
    x = np.zeros((rows, 3, features), "float32")
    x[:, 0] = 1.0  # h0 = 1, h1 = h0 * m, h2 = h1 * m: the same m twice gives h1 ** 2
    y = np.asarray(layer(x, training=True))
    np.testing.assert_allclose(y[:, 0], 1.0)
    mask = y[:, 1]
    np.testing.assert_allclose(y[:, 2], mask**2, rtol=1e-6)
    np.testing.assert_allclose(mask[mask > 0], 1 / (1 - rate), rtol=1e-6)
    assert abs((mask == 0).mean() - rate) < 0.015


@pytest.mark.parametrize(
    "cell,gates", [(keras.layers.LSTMCell, 4), (keras.layers.GRUCell, 3), (keras.layers.SimpleRNNCell, 1)]
)
def test_dropout_masks_per_gate_only_with_recurrent_dropout(cell, gates):
    """With recurrent_dropout, LSTM and GRU switch to implementation 1: one input mask and one
    recurrent mask per gate. With dropout alone (implementation 2), one input mask for all gates."""
    x = np.ones((5, 6), "float32")
    h = np.ones((5, 3), "float32")
    both = cell(3, dropout=0.5, recurrent_dropout=0.5, seed=1)
    input_only = cell(3, dropout=0.5, seed=1)
    masks = both.get_dropout_mask(x)
    recurrent_masks = both.get_recurrent_dropout_mask(h)
    if gates == 1:
        assert np.asarray(masks).shape == (5, 6)
        assert np.asarray(recurrent_masks).shape == (5, 3)
    else:
        assert len(masks) == len(recurrent_masks) == gates
        assert all(np.asarray(m).shape == (5, 6) for m in masks)
        assert all(np.asarray(m).shape == (5, 3) for m in recurrent_masks)
        assert len({np.asarray(m).tobytes() for m in masks}) == gates  # independent draws
    assert np.asarray(input_only.get_dropout_mask(x)).shape == (5, 6)


# ---------------------------------------------------------------------------
# Fact 19: Keras's Adam (TF backend) on an embedding's sparse gradient squares each occurrence
# of a token before summing them (keras/src/optimizers/adam.py update_step on tf.IndexedSlices):
# a token seen k times in a batch gets the second moment k g^2, not (k g)^2 as in a dense Adam
# (torch.optim.Adam). Its first step is then lr * sqrt(k), not lr. SGD sums the slices: exact.
# ---------------------------------------------------------------------------
def test_adam_embedding_repeated_token_steps_sqrt_k():
    import tensorflow as tf

    embedding = keras.layers.Embedding(4, 2)
    embedding.build((None, 3))
    start = np.full((4, 2), 0.5, "float32")
    embedding.set_weights([start])
    for optimizer, expected in [
        (keras.optimizers.Adam(learning_rate=0.1), [0.1, 0.1 * np.sqrt(2), 0.0]),
        (keras.optimizers.SGD(learning_rate=0.1), [0.1, 0.2, 0.0]),  # gradient 1 per occurrence
    ]:
        embedding.set_weights([start])
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(embedding(np.array([[0, 1, 1]])))
        grads = tape.gradient(loss, embedding.trainable_variables)
        assert isinstance(grads[0], tf.IndexedSlices)
        optimizer.apply_gradients(zip(grads, embedding.trainable_variables))
        moved = start - embedding.get_weights()[0]
        np.testing.assert_allclose(moved[:3, 0], expected, rtol=1e-4)


# Fact 20: Keras's float64 gelu is not torch's to float64 precision
# ---------------------------------------------------------------------------
def test_gelu_float64_differs_from_torch_by_5e_9():
    """Both are the exact erf form, but TensorFlow's float64 gelu parts from torch's by 5e-9
    (measured: 5.02e-9 on [-6, 6]). `verify`'s float64 judgement allows 1e-7 relative."""
    from rnnspec.equivalence.harness import FLOAT64_TOLERANCE

    x = np.linspace(-6, 6, 100_001)
    k = np.asarray(keras.activations.gelu(keras.ops.convert_to_tensor(x, dtype="float64")))
    t = torch.nn.functional.gelu(torch.from_numpy(x)).numpy()
    assert 1e-9 < np.abs(k - t).max() < FLOAT64_TOLERANCE


# ---------------------------------------------------------------------------
# Fact 21: a mask value float32 cannot hold breaks Masking on every call
# ---------------------------------------------------------------------------
def test_masking_with_a_value_beyond_float32_fails():
    """1e39 is a finite Python float but no float32; Keras fails converting it, on any input.
    rnnspec refuses such a literal (`mask_value ... beyond float32's range`)."""
    layer = keras.layers.Masking(mask_value=1e39)
    with pytest.raises(ValueError, match="out of range"):
        layer(np.ones((1, 2, 3), "float32"))
    # float32's largest finite value still works: every step equal to it is masked and zeroed.
    largest = float(np.finfo(np.float32).max)
    out = keras.layers.Masking(mask_value=largest)(np.full((1, 2, 3), largest, "float32"))
    assert not np.asarray(out).any()
    assert not np.asarray(get_keras_mask(out)).any()


# ---------------------------------------------------------------------------
# Facts 50-79: the one-input layers of v1 (shape, convolution, pooling, normalisation, noise,
# ReLU layers). The PyTorch arithmetic rnnspec writes for them is checked against Keras in
# tests/test_layers_arith.py.
# ---------------------------------------------------------------------------
L = keras.layers
SEQ = RNG.normal(size=(2, 6, 4)).astype("float32")
SEQ_MASK = np.array([[1, 1, 0, 1, 0, 1], [0, 0, 1, 1, 1, 1]], bool)


def _mask_after(layer, x=SEQ, mask=SEQ_MASK):
    """The mask a layer passes on when called on a masked tensor, and whether Keras warned."""
    import tensorflow as tf

    tensor = tf.constant(x)
    tensor._keras_mask = tf.constant(mask)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = layer(tensor)
    dropped = [str(w.message) for w in caught if "does not support masking" in str(w.message)]
    mask_out = get_keras_mask(out)
    return (None if mask_out is None else np.asarray(mask_out)), dropped


# Fact 50: which layers pass a mask on unchanged, and which drop it (with Keras's warning).
@pytest.mark.parametrize(
    "make",
    [
        lambda: L.Activation("relu"),
        lambda: L.TimeDistributed(L.Dense(2)),
        lambda: L.BatchNormalization(),
        lambda: L.SpatialDropout1D(0.5),
        lambda: L.GaussianNoise(0.1),
        lambda: L.ReLU(),
        lambda: L.LeakyReLU(),
    ],
)
def test_layers_that_pass_the_mask_on(make):
    mask, dropped = _mask_after(make())
    np.testing.assert_array_equal(mask, SEQ_MASK)
    assert not dropped


@pytest.mark.parametrize(
    "make",
    [
        lambda: L.Reshape((3, 8)),
        lambda: L.Flatten(),
        lambda: L.Conv1D(2, 3),
        lambda: L.Conv1D(2, 3, padding="same"),
        lambda: L.MaxPooling1D(),
        lambda: L.AveragePooling1D(2),
        lambda: L.GlobalMaxPooling1D(),
    ],
)
def test_layers_that_drop_the_mask_with_a_warning(make):
    layer = make()
    mask, dropped = _mask_after(layer)
    assert mask is None
    assert dropped and f"Layer '{layer.name}' (of type {type(layer).__name__})" in dropped[0]


def test_repeat_vector_drops_a_mask():
    mask, dropped = _mask_after(L.RepeatVector(3), SEQ[:, 0], SEQ_MASK[:, 0])
    assert mask is None and dropped


# Fact 51: GlobalMaxPooling1D ignores the mask: masked timesteps take part in the max.
def test_global_max_pooling_ignores_the_mask():
    ids = np.array([[1, 2, 0, 0], [0, 3, 0, 4]])
    inp = keras.Input((None,), dtype="int32")
    emb = L.Embedding(5, 3, mask_zero=True)
    emb.build((None, None))
    emb.set_weights([np.array([[9, 9, 9], [1, 0, 0], [0, 1, 0], [0, 0, 1], [2, 2, 2]], "float32")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = keras.Model(inp, L.GlobalMaxPooling1D()(emb(inp)))
    vectors = np.asarray(emb(ids))
    np.testing.assert_array_equal(np.asarray(model(ids)), [[9, 9, 9], [9, 9, 9]])  # id 0's row wins
    np.testing.assert_array_equal(np.asarray(model(ids)), vectors.max(axis=1))


# Fact 52: BatchNormalization's arrays, its inference and its training arithmetic.
def test_batch_normalization_arrays_and_inference():
    bn = L.BatchNormalization()
    bn.build((None, None, 4))
    assert [w.name for w in bn.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert (bn.epsilon, bn.momentum) == (0.001, 0.99)
    gamma, beta, mean, var = (RNG.normal(size=4).astype("float32") for _ in range(4))
    var = np.abs(var)
    var[0] = 0.0
    bn.set_weights([gamma, beta, mean, var])
    # inference: the moving statistics, epsilon inside the square root
    expected = (SEQ - mean) / np.sqrt(var + 0.001) * gamma + beta
    np.testing.assert_allclose(np.asarray(bn(SEQ)), expected, rtol=1e-5, atol=1e-5)
    for center, scale, names in [(False, True, ["gamma"]), (True, False, ["beta"]), (False, False, [])]:
        other = L.BatchNormalization(center=center, scale=scale)
        other.build((None, None, 4))
        assert [w.name for w in other.weights] == [*names, "moving_mean", "moving_variance"]


def test_batch_normalization_training_moments_under_a_mask():
    bn = L.BatchNormalization(momentum=0.9)
    bn.build((None, None, 4))
    out = np.asarray(bn(SEQ, training=True, mask=SEQ_MASK))
    rows = SEQ[SEQ_MASK]
    # the batch's statistics over the unmasked steps only, the variance biased
    np.testing.assert_allclose(out, (SEQ - rows.mean(0)) / np.sqrt(rows.var(0) + 0.001), atol=1e-5)
    # moving = moving * momentum + batch * (1 - momentum); torch's BatchNorm uses 1 - momentum
    # and the unbiased variance, so it cannot stand in for this
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.1 * rows.mean(0), atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), 0.9 + 0.1 * rows.var(0), atol=1e-6)
    assert not np.allclose(bn.moving_variance.numpy(), 0.9 + 0.1 * rows.var(0, ddof=1), atol=1e-6)


# Fact 53: Conv1D: kernel layout, padding arithmetic, and the combinations Keras refuses.
def test_conv1d_kernel_layout_and_padding():
    conv = L.Conv1D(3, 2, padding="same")
    conv.build((None, None, 4))
    kernel, bias = conv.get_weights()
    assert kernel.shape == (2, 4, 3) and bias.shape == (3,)  # torch's Conv1d: (3, 4, 2)
    assert conv.activation is keras.activations.linear
    x = np.arange(5, dtype="float32").reshape(1, 5, 1) + 1
    for padding, kernel_size, stride, expected in [
        ("same", 2, 1, [[3], [5], [7], [9], [5]]),  # even kernel: the odd cell is padded after
        ("same", 3, 2, [[3], [9], [9]]),  # ceil(5 / 2) outputs, padding (1, 1)
        ("same", 4, 2, [[6], [14], [9]]),  # padding (1, 2)
        ("causal", 3, 1, [[1], [3], [6], [9], [12]]),  # (kernel - 1) cells before, none after
        ("causal", 2, 2, [[1], [5], [9]]),
        ("valid", 2, 2, [[3], [7]]),
    ]:
        layer = L.Conv1D(1, kernel_size, strides=stride, padding=padding, use_bias=False)
        layer.build(x.shape)
        layer.set_weights([np.ones((kernel_size, 1, 1), "float32")])
        np.testing.assert_array_equal(np.asarray(layer(x))[0], expected)
    dilated = L.Conv1D(1, 2, padding="causal", dilation_rate=2, use_bias=False)
    dilated.build(x.shape)
    dilated.set_weights([np.ones((2, 1, 1), "float32")])
    np.testing.assert_array_equal(np.asarray(dilated(x))[0, :, 0], [1, 2, 4, 6, 8])
    with pytest.raises(ValueError, match="strides > 1` not supported in conjunction with `dilation_rate > 1"):
        L.Conv1D(1, 2, strides=2, dilation_rate=2)(x)
    with pytest.raises(ValueError, match="output size would be zero or negative"):
        L.Conv1D(1, 8)(x)


# Fact 54: pooling: defaults, and `same` average pooling divides by the cells inside the input.
def test_pooling1d_defaults_and_same_padding():
    import inspect

    assert L.MaxPooling1D().pool_size == (2,) and L.MaxPooling1D().strides == (2,)
    assert L.MaxPooling1D(3).strides == (3,)  # strides=None: the pool size
    assert inspect.signature(L.AveragePooling1D).parameters["pool_size"].default is inspect.Parameter.empty
    x = np.array([[[1.0], [2.0], [4.0], [8.0], [16.0]]], "float32")
    # window 2, stride 2, same: ceil(5 / 2) = 3 outputs, padding (0, 1); the last window holds one cell
    np.testing.assert_array_equal(
        np.asarray(L.AveragePooling1D(2, padding="same")(x))[0, :, 0], [1.5, 6.0, 16.0]
    )
    np.testing.assert_array_equal(np.asarray(L.MaxPooling1D(2, padding="same")(-x))[0, :, 0], [-1, -4, -16])
    # window 3, stride 1, same: padding (1, 1); the end windows average two cells
    np.testing.assert_allclose(
        np.asarray(L.AveragePooling1D(3, strides=1, padding="same")(x))[0, :, 0],
        [1.5, 7 / 3, 14 / 3, 28 / 3, 12.0],
        rtol=1e-6,
    )
    np.testing.assert_array_equal(np.asarray(L.MaxPooling1D(2)(x))[0, :, 0], [2, 8])  # valid drops the rest
    with pytest.raises(Exception, match="MaxPooling1D"):
        L.MaxPooling1D(8)(x)  # valid pooling over fewer steps than the window fails


# Fact 62: a `valid` average pooling over fewer steps than its window gives no timestep (no error,
# unlike max pooling), but a recurrent layer after it refuses that empty sequence (it reads the
# first step to start): called, a StridedSlice out of bounds; in `predict`, the pooling's own
# shape check. It returns no zero state: the proof's shortest batch leaves every layer a step
# (equivalence.inputs.min_steps), and docs/deployment.md says Keras refuses.
@pytest.mark.parametrize("cell", ["GRU", "LSTM", "SimpleRNN"])
def test_a_recurrent_layer_refuses_a_pooled_length_of_0(cell):
    import tensorflow as tf

    x = np.ones((2, 1, 8), "float32")
    assert tuple(L.AveragePooling1D(2)(x).shape) == (2, 0, 8)
    inp = keras.Input((None, 8))
    model = keras.Model(inp, getattr(L, cell)(4)(L.AveragePooling1D(2)(inp)))
    with pytest.raises(tf.errors.InvalidArgumentError, match="slice index 0 of dimension 1 out of bounds"):
        model(x)
    with pytest.raises(ValueError, match="Negative dimension size caused by subtracting 2 from 1"):
        model.predict(x, verbose=0)


# Fact 61: Conv2D / MaxPooling2D take (height, width) sizes: the kernel is (kh, kw, in, out), the
# config writes both sizes (equal ones too), and `same` pads each axis on its own as 1-D does.
def test_conv2d_and_max_pooling2d_sizes_per_axis():
    assert L.Conv2D(4, 3).get_config()["kernel_size"] == (3, 3)
    assert L.Conv2D(4, [5, 3], strides=[2, 1]).get_config()["strides"] == (2, 1)
    assert L.MaxPooling2D((2, 3)).get_config()["strides"] == (2, 3)  # strides=None: the pool size
    x = (np.arange(20, dtype="float32") + 1).reshape(1, 5, 4, 1)

    def windows(padded, kernel, stride, reduce):
        rows = range(0, padded.shape[0] - kernel[0] + 1, stride[0])
        cols = range(0, padded.shape[1] - kernel[1] + 1, stride[1])
        return [[reduce(padded[r : r + kernel[0], c : c + kernel[1]]) for c in cols] for r in rows]

    conv = L.Conv2D(1, (2, 3), strides=(2, 1), padding="same", use_bias=False)
    conv.build(x.shape)
    assert conv.get_weights()[0].shape == (2, 3, 1, 1)
    conv.set_weights([np.arange(6, dtype="float32").reshape(2, 3, 1, 1)])
    # height: ceil(5 / 2) = 3 outputs, padding (0, 1); width: 4 outputs, padding (1, 1)
    padded = np.pad(x[0, :, :, 0], ((0, 1), (1, 1)))
    kernel = np.arange(6, dtype="float32").reshape(2, 3)
    expected = windows(padded, (2, 3), (2, 1), lambda cells: (cells * kernel).sum())
    np.testing.assert_array_equal(np.asarray(conv(x))[0, :, :, 0], expected)
    # pool (2, 3), strides (2, 3), same: 3 x 2 outputs, padding (0, 1) and (1, 1); padded cells never win
    padded = np.pad(-x[0, :, :, 0], ((0, 1), (1, 1)), constant_values=-np.inf)
    expected = windows(padded, (2, 3), (2, 3), np.max)
    pooled = np.asarray(L.MaxPooling2D((2, 3), padding="same")(-x))[0, :, :, 0]
    assert pooled.shape == (3, 2)
    np.testing.assert_array_equal(pooled, expected)


# Fact 55: shape layers keep Keras's (channels-last, row-major) element order.
def test_reshape_flatten_repeat_vector():
    x = np.arange(24, dtype="float32").reshape(1, 6, 4)
    np.testing.assert_array_equal(np.asarray(L.Reshape((3, 8))(x)), x.reshape(1, 3, 8))
    assert L.Reshape((-1, 2))(x).shape == (1, 12, 2)
    np.testing.assert_array_equal(np.asarray(L.Flatten()(x)), x.reshape(1, 24))
    v = np.asarray(L.RepeatVector(3)(x[:, 0]))
    np.testing.assert_array_equal(v, np.repeat(x[:, :1], 3, axis=1))
    with pytest.raises(ValueError):
        L.Reshape((5, -1))(x)  # 24 is not a multiple of 5


# Fact 56: TimeDistributed(Dense) is Dense at every step, masked ones too; its arrays are Dense's.
def test_time_distributed_dense():
    td = L.TimeDistributed(L.Dense(3))
    out = np.asarray(td(SEQ, mask=SEQ_MASK))
    kernel, bias = td.get_weights()
    np.testing.assert_allclose(out, SEQ @ kernel + bias, atol=1e-5)
    # (a name scope another test leaves open may prefix the paths)
    assert [w.path.split("/")[-3:] for w in td.weights] == [
        [td.name, td.layer.name, "kernel"],
        [td.name, td.layer.name, "bias"],
    ]


# Fact 57: SpatialDropout1D and GaussianNoise are the identity at inference; GaussianNoise takes a
# stddev in [0, 1] only.
def test_noise_layers_at_inference():
    np.testing.assert_array_equal(np.asarray(L.SpatialDropout1D(0.7)(SEQ)), SEQ)
    np.testing.assert_array_equal(np.asarray(L.GaussianNoise(1.0)(SEQ)), SEQ)
    with pytest.raises(ValueError, match="Expected a float value between 0 and 1"):
        L.GaussianNoise(1.5)
    trained = np.asarray(L.SpatialDropout1D(0.5)(SEQ + 10, training=True))
    assert ((trained == 0) == (trained[:, :1] == 0)).all()  # whole channels of a sample


# Fact 58: LeakyReLU's and ReLU's defaults and options.
def test_relu_layers_defaults():
    import inspect

    assert L.LeakyReLU().negative_slope == 0.3
    assert inspect.signature(keras.activations.leaky_relu).parameters["negative_slope"].default == 0.2
    relu = L.ReLU()
    assert (relu.max_value, relu.negative_slope, relu.threshold) == (None, 0.0, 0.0)
    v = np.array([-2.0, 0.0, 0.5, 1.0, 1.5, 4.0], "float32")
    # x above the threshold (strictly), clipped at max_value, minus slope * relu(threshold - x)
    np.testing.assert_allclose(
        np.asarray(L.ReLU(max_value=3.0, negative_slope=0.5, threshold=1.0)(v)),
        [-1.5, -0.5, -0.25, 0.0, 1.5, 3.0],
    )
    for bad in [{"threshold": -1.0}, {"negative_slope": -0.1}, {"max_value": -1.0}]:
        with pytest.raises(ValueError, match="cannot be"):
            L.ReLU(**bad)


# Fact 59: the activations v1 adds, on negative, zero and large values.
def test_new_activations():
    A = keras.activations
    v = np.array([-1e4, -20.0, -1.0, 0.0, 1.0, 6.5, 20.0, 1e4], "float32")
    tv = torch.from_numpy(v)
    F = torch.nn.functional
    np.testing.assert_allclose(np.asarray(A.leaky_relu(v)), F.leaky_relu(tv, 0.2).numpy(), rtol=1e-7)
    np.testing.assert_array_equal(np.asarray(A.relu6(v)), np.clip(v, 0, 6))
    assert A.get("silu") is A.silu and A.get("swish") is A.silu
    np.testing.assert_allclose(np.asarray(A.mish(v)), F.mish(tv).numpy(), rtol=1e-6, atol=1e-6)
    assert np.asarray(A.mish(v))[-1] == 1e4 and np.asarray(A.mish(v))[0] == 0.0  # no overflow
    m = np.stack([v, v[::-1]])
    np.testing.assert_allclose(
        np.asarray(A.log_softmax(m)), torch.log_softmax(torch.from_numpy(m), -1).numpy(), rtol=1e-6
    )
    assert np.isfinite(np.asarray(A.log_softmax(m))).all()


# Fact 60: a nested model: Keras warns that it "destroys" the mask and the symbolic output has
# none, yet when the model runs the mask reaches the nested layers and the layers after it, as if
# the nested model's layers stood in the outer model (which is how `import` flattens it).
@pytest.mark.parametrize("nested", ["functional", "sequential"])
def test_a_nested_model_passes_the_mask_on_when_it_runs(nested):
    keras.utils.set_random_seed(0)
    if nested == "functional":
        inner_input = keras.Input((None, 6))
        block = keras.Model(inner_input, L.Dense(4)(inner_input))
    else:
        block = keras.Sequential([L.Dense(4)])
    ids = np.array([[1, 2, 0, 0], [0, 3, 0, 4]])
    tokens = keras.Input((None,), dtype="int32")
    embedding, lstm = L.Embedding(20, 6, mask_zero=True), L.LSTM(3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hidden = block(embedding(tokens))
    assert get_keras_mask(hidden) is None
    assert any("will therefore destroy the mask information" in str(w.message) for w in caught)
    model = keras.Model(tokens, lstm(hidden))
    features = block.layers[-1](np.asarray(embedding(ids)))  # no mask attached
    masked = np.asarray(lstm(features, mask=ids != 0))
    np.testing.assert_allclose(np.asarray(model(ids)), masked, atol=1e-6)
    assert not np.allclose(np.asarray(lstm(features)), masked, atol=1e-4)


# ---------------------------------------------------------------------------
# LayerNormalization (keras/src/layers/normalization/layer_normalization.py)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("epsilon", [1e-3, 0.5, 4.0])
def test_layer_normalization_epsilon_inside_the_root_biased_variance_gamma_then_beta(epsilon):
    """(x - mean) / sqrt(var + epsilon) * gamma + beta over the last axis, the biased variance;
    get_weights() is [gamma, beta]; torch's layer_norm computes the same."""
    rng = np.random.default_rng(3)
    x = rng.normal(2.0, 3.0, size=(2, 5, 6)).astype("float32")
    layer = keras.layers.LayerNormalization(epsilon=epsilon)
    layer.build(x.shape)
    gamma, beta = randomize(layer, seed=4)
    assert [w.name for w in layer.weights] == ["gamma", "beta"]
    out = np.asarray(layer(x))
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)  # ddof=0
    expected = (x - mean) / np.sqrt(var + epsilon) * gamma + beta
    np.testing.assert_allclose(out, expected, atol=ATOL, rtol=0)
    torch_out = torch.nn.functional.layer_norm(
        torch.from_numpy(x), (6,), torch.from_numpy(gamma), torch.from_numpy(beta), epsilon
    )
    np.testing.assert_allclose(out, torch_out.numpy(), atol=ATOL, rtol=0)
    if epsilon >= 0.5:  # epsilon outside the root would differ by far more than the tolerance
        outside = (x - mean) / (np.sqrt(var) + epsilon) * gamma + beta
        assert np.abs(out - outside).max() > 100 * ATOL


def test_layer_normalization_passes_the_mask_and_normalises_masked_steps():
    """supports_masking: the mask goes on unchanged; a masked step is normalised like the others."""
    inp = keras.Input(shape=(None, 4))
    masked = keras.layers.Masking(mask_value=0.0)(inp)
    norm = keras.layers.LayerNormalization()
    normed = norm(masked)
    assert get_keras_mask(normed) is not None
    pooled = keras.layers.GlobalAveragePooling1D()(normed)
    model = keras.Model(inp, [normed, pooled])
    x = (np.arange(24, dtype="float32").reshape(1, 6, 4) % 5) / 7.0
    x[0, 2] = 0.0  # a masked timestep: every feature equals the mask value
    out, mean = (np.asarray(t) for t in model(x))
    np.testing.assert_allclose(out, np.asarray(norm(x)), atol=0)  # not zeroed, not skipped
    keep = np.array([True, True, False, True, True, True])
    np.testing.assert_allclose(mean[0], out[0][keep].mean(axis=0), atol=ATOL)  # the mask reached the pooling


@pytest.mark.parametrize(
    ("center", "scale", "names"), [(True, False, ["beta"]), (False, True, ["gamma"]), (False, False, [])]
)
def test_layer_normalization_weights_follow_center_and_scale(center, scale, names):
    layer = keras.layers.LayerNormalization(center=center, scale=scale)
    layer.build((None, 3, 5))
    assert [w.name for w in layer.weights] == names
    assert layer.supports_masking


# Facts 30-39: the graph language (values, initial_state, merges, shared layers)
# ---------------------------------------------------------------------------
IDS = np.array([[1, 2, 0, 0, 3], [0, 3, 4, 5, 0], [0, 0, 0, 0, 0]], "int32")  # right, left, all padded


def _lstm_with_initial_state(bidirectional=False):
    rng = np.random.default_rng(30)
    embedding = keras.layers.Embedding(10, 3, mask_zero=True)
    lstm = keras.layers.LSTM(4, return_sequences=True, return_state=True)
    layer = keras.layers.Bidirectional(lstm) if bidirectional else lstm
    embedded = embedding(IDS)
    states = [rng.normal(size=(3, 4)).astype("float32") for _ in range(4 if bidirectional else 2)]
    layer(embedded, initial_state=states)
    randomize(layer, 31)
    return embedding, layer, embedded, states


def _as_arrays(tensors):
    return [np.asarray(t) for t in tensors]


# Fact 30: keras/src/layers/layer.py __call__ fills `mask` from the input's Keras mask only when the
# call has exactly one tensor argument. With `initial_state=[...]` there are several, so the
# incoming value's mask is NOT used (the layer runs unmasked), yet the output still carries the
# input's mask for the layers after it. An explicit `mask=` is used, and is the output's mask.
def test_mask_next_to_initial_state_is_dropped_and_explicit_mask_is_used():
    embedding, lstm, embedded, states = _lstm_with_initial_state()
    unmasked = _as_arrays(lstm(embedded, initial_state=states))
    masked = _as_arrays(lstm(embedded, initial_state=states, mask=IDS != 0))
    assert np.abs(unmasked[0] - masked[0]).max() > 1e-3  # the mask matters to this input

    src = keras.Input((None,), dtype="int32")
    h0, c0 = keras.Input((4,)), keras.Input((4,))
    out = lstm(embedding(src), initial_state=[h0, c0])
    assert get_keras_mask(out[0]) is not None  # the mask flows on, unused by this layer
    model = keras.Model([src, h0, c0], out)
    for got, want in zip(_as_arrays(model([IDS, *states])), unmasked):
        np.testing.assert_allclose(got, want, atol=ATOL)

    explicit = keras.Input((None,), dtype="bool")
    out = lstm(embedding(src), initial_state=[h0, c0], mask=explicit)
    model = keras.Model([src, h0, c0, explicit], [*out, keras.layers.Dense(2)(out[0])])
    for got, want in zip(_as_arrays(model([IDS, *states, IDS != 0]))[:3], masked):
        np.testing.assert_allclose(got, want, atol=ATOL)
    # the explicit mask is the output's mask (an all-False row keeps its mask downstream)
    other = np.array([[1, 0, 1, 0, 1]] * 3, bool)
    eager = lstm(embedded, initial_state=states, mask=other)
    np.testing.assert_array_equal(np.asarray(get_keras_mask(eager[0])), other)


# Fact 31: an explicit `mask=` replaces the mask the value carries (without initial_state too).
def test_explicit_mask_replaces_the_values_mask():
    embedding = keras.layers.Embedding(10, 3, mask_zero=True)
    gru = keras.layers.GRU(4, return_sequences=True)
    src = keras.Input((None,), dtype="int32")
    explicit = keras.Input((None,), dtype="bool")
    model = keras.Model([src, explicit], gru(embedding(src), mask=explicit))
    other = np.array([[1, 1, 1, 0, 1], [1, 0, 1, 1, 1], [1, 1, 0, 0, 0]], bool)
    got = np.asarray(model([IDS, other]))
    np.testing.assert_allclose(got, np.asarray(gru(embedding(IDS), mask=other)), atol=ATOL)
    assert np.abs(got - np.asarray(gru(embedding(IDS)))).max() > 1e-3


# Fact 32: Bidirectional with initial_state: the states go [forward h, forward c, backward h,
# backward c] (the first half to the forward layer), the mask is dropped as in fact 30, and with
# return_state it returns output, forward states, backward states.
def test_bidirectional_initial_state_order_and_dropped_mask():
    embedding, bidi, embedded, states = _lstm_with_initial_state(bidirectional=True)
    eager = _as_arrays(bidi(embedded, initial_state=states))
    assert [a.shape for a in eager] == [(3, 5, 8), (3, 4), (3, 4), (3, 4), (3, 4)]
    forward = _as_arrays(bidi.forward_layer(embedded, initial_state=states[:2]))
    backward = _as_arrays(bidi.backward_layer(embedded, initial_state=states[2:]))
    np.testing.assert_allclose(eager[0], np.concatenate([forward[0], backward[0][:, ::-1]], -1), atol=ATOL)
    for got, want in zip(eager[1:], forward[1:] + backward[1:]):
        np.testing.assert_allclose(got, want, atol=ATOL)

    src = keras.Input((None,), dtype="int32")
    inputs = [keras.Input((4,)) for _ in range(4)]
    model = keras.Model([src, *inputs], bidi(embedding(src), initial_state=inputs))
    for got, want in zip(_as_arrays(model([IDS, *states])), eager):
        np.testing.assert_allclose(got, want, atol=ATOL)
    masked = _as_arrays(bidi(embedded, initial_state=states, mask=IDS != 0))
    assert np.abs(masked[0] - eager[0]).max() > 1e-3


def _merge_inputs():
    rng = np.random.default_rng(33)
    a_ids = np.array([[1, 0, 2, 0], [0, 3, 3, 3]], "int32")
    b_ids = np.array([[0, 0, 3, 4], [5, 0, 5, 0]], "int32")
    features = rng.normal(size=(2, 4, 3)).astype("float32")
    return a_ids, b_ids, features


def _merge_model(cls, second_masked, **kwargs):
    a, b = keras.Input((None,), dtype="int32"), keras.Input((None,), dtype="int32")
    f = keras.Input((None, 3))
    ea, eb = keras.layers.Embedding(10, 3, mask_zero=True), keras.layers.Embedding(10, 3, mask_zero=True)
    second = eb(b) if second_masked else f
    out = cls(**kwargs)([ea(a), second])
    return keras.Model([a, b if second_masked else f], [out, keras.layers.Dense(1)(out)]), ea, eb, out


def _mask_aware_multiply(xs, masks):
    """keras/src/layers/merging/multiply.py: a masked position counts as 1; the product is zeroed
    where every input is masked, when every input has a mask."""
    has_mask = all(m is not None for m in masks)
    out = out_mask = None
    for x, m in zip(xs, masks):
        if m is not None:
            m = np.broadcast_to(m[..., None], x.shape)
            x = np.where(m, x, 1.0)
            if has_mask:
                out_mask = m if out_mask is None else out_mask | m
        out = x if out is None else out * x
    return (np.where(out_mask, out, 0.0), out_mask.any(-1)) if has_mask else (out, None)


def _mask_aware_extremum(op, xs, masks):
    """keras/src/layers/merging/base_merge.py _apply_merge_op_and_or_mask (Maximum, Minimum)."""
    out = out_mask = None
    for x, m in zip(xs, masks):
        m = None if m is None else np.broadcast_to(m[..., None], x.shape)
        if out is None:
            out, out_mask = x, m
            continue
        if m is not None:
            x = np.where(m, x, out)
        if out_mask is not None:
            out = np.where(out_mask, out, x)
        out_mask = out_mask | m if m is not None and out_mask is not None else None
        out = op(out, x)
    return out, None if out_mask is None else out_mask.any(-1)


# Fact 33: merges (Add, Subtract, Average, Multiply, Maximum, Minimum): the output mask is the OR of
# the input masks, and None as soon as one input is unmasked (base_merge.py compute_mask; Keras 2
# AND-ed them). Add, Subtract and Average ignore masks in their values; Multiply, Maximum and
# Minimum read them (the functions above), in a functional model too.
@pytest.mark.parametrize("cls", ["Add", "Subtract", "Average", "Multiply", "Maximum", "Minimum"])
@pytest.mark.parametrize("second_masked", [True, False])
def test_merge_masks_or_and_mask_aware_values(cls, second_masked):
    a_ids, b_ids, features = _merge_inputs()
    model, ea, eb, out = _merge_model(getattr(keras.layers, cls), second_masked)
    second_in = b_ids if second_masked else features
    got, _ = _as_arrays(model([a_ids, second_in]))
    xs = [np.asarray(ea(a_ids)), np.asarray(eb(b_ids)) if second_masked else features]
    masks = [a_ids != 0, b_ids != 0 if second_masked else None]
    if cls == "Multiply":
        want, want_mask = _mask_aware_multiply(xs, masks)
    elif cls in ("Maximum", "Minimum"):
        want, want_mask = _mask_aware_extremum(np.maximum if cls == "Maximum" else np.minimum, xs, masks)
    else:
        want = {"Add": xs[0] + xs[1], "Subtract": xs[0] - xs[1], "Average": (xs[0] + xs[1]) / 2}[cls]
        want_mask = masks[0] | masks[1] if second_masked else None
    np.testing.assert_allclose(got, want, atol=ATOL)
    if cls in ("Multiply", "Maximum", "Minimum"):
        plain = {"Multiply": xs[0] * xs[1], "Maximum": np.maximum(*xs), "Minimum": np.minimum(*xs)}[cls]
        assert np.abs(got - plain).max() > 1e-3
    assert (get_keras_mask(out) is not None) == second_masked
    eager = getattr(keras.layers, cls)()(
        [ea(a_ids), eb(b_ids) if second_masked else keras.ops.convert_to_tensor(features)]
    )
    mask = get_keras_mask(eager)
    if want_mask is None:
        assert mask is None
    else:
        np.testing.assert_array_equal(np.asarray(mask), want_mask)


# Fact 34: Concatenate's values ignore masks; its mask is None when no input is masked, else each
# input's mask (all-True for an unmasked one) broadcast to its shape, concatenated along `axis`,
# then any() over the last axis: OR per timestep for axis=-1 (an unmasked input makes every step
# valid), the masks end to end for axis=1 (time).
def test_concatenate_mask_rules():
    a_ids, b_ids, features = _merge_inputs()
    ea, eb = keras.layers.Embedding(10, 3, mask_zero=True), keras.layers.Embedding(10, 3, mask_zero=True)
    A, B, F = ea(a_ids), eb(b_ids), keras.ops.convert_to_tensor(features)
    ma, mb = a_ids != 0, b_ids != 0
    cases = [
        (-1, [A, B], ma | mb),
        (-1, [A, F], np.ones_like(ma)),
        (1, [A, B], np.concatenate([ma, mb], 1)),
        (1, [A, F], np.concatenate([ma, np.ones_like(ma)], 1)),
        (1, [F, A], np.concatenate([np.ones_like(ma), ma], 1)),
    ]
    for axis, inputs, want in cases:
        out = keras.layers.Concatenate(axis=axis)(inputs)
        np.testing.assert_allclose(
            np.asarray(out), np.concatenate([np.asarray(t) for t in inputs], axis), atol=ATOL
        )
        np.testing.assert_array_equal(np.asarray(get_keras_mask(out)), want)
    assert get_keras_mask(keras.layers.Concatenate()([F, F])) is None
    # the same in a functional model, fed to an LSTM that reads it
    a, f = keras.Input((None,), dtype="int32"), keras.Input((None, 3))
    lstm = keras.layers.LSTM(2, return_sequences=True)
    model = keras.Model([a, f], lstm(keras.layers.Concatenate(axis=1)([ea(a), f])))
    np.testing.assert_allclose(
        np.asarray(model([a_ids, features])),
        np.asarray(lstm(np.concatenate([np.asarray(A), features], 1), mask=cases[3][2])),
        atol=ATOL,
    )


# Fact 35: elementwise merges take shapes equal per axis, where 1 broadcasts and an unknown length
# matches any; Concatenate needs equal shapes except along `axis`; both name the shapes.
def test_merge_shape_rules():
    x, y = keras.Input((None, 8)), keras.Input((None, 6))
    with pytest.raises(ValueError, match="Inputs have incompatible shapes"):
        keras.layers.Add()([x, y])
    # an unknown length with a known one gives an unknown one; a 1 takes the other's size
    assert keras.layers.Add()([x, keras.Input((5, 1))]).shape == (None, None, 8)
    assert keras.layers.Add()([keras.Input((5, 8)), keras.Input((1, 8))]).shape == (None, 5, 8)
    with pytest.raises(ValueError, match="matching shapes except for the concatenation axis"):
        keras.layers.Concatenate(axis=1)([x, y])
    assert keras.layers.Concatenate(axis=1)([x, keras.Input((4, 8))]).shape == (None, None, 8)
    assert keras.layers.Concatenate()([x, y]).shape == (None, None, 14)
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        keras.layers.Subtract()([x, x, x])


# Fact 36: a layer called twice (by name in the language) has one set of weights; each call uses its
# own input's mask.
def test_shared_layer_has_one_set_of_weights_and_a_mask_per_call():
    a, b = keras.Input((None,), dtype="int32"), keras.Input((None,), dtype="int32")
    embedding = keras.layers.Embedding(10, 3, mask_zero=True)
    lstm = keras.layers.LSTM(4)
    model = keras.Model([a, b], keras.layers.Concatenate()([lstm(embedding(a)), lstm(embedding(b))]))
    assert len(model.weights) == 4  # embedding 1, LSTM 3
    randomize(lstm, 36)
    a_ids, b_ids, _ = _merge_inputs()
    got = np.asarray(model([a_ids, b_ids]))
    np.testing.assert_allclose(got[:, :4], np.asarray(lstm(embedding(a_ids), mask=a_ids != 0)), atol=ATOL)
    np.testing.assert_allclose(got[:, 4:], np.asarray(lstm(embedding(b_ids), mask=b_ids != 0)), atol=ATOL)
