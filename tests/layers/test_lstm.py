import math

import keras
import numpy as np
import pytest

from i2dl_keras.layers import LSTM, LSTMCell, unroll
from i2dl_keras.testing import run_layer_test, run_serialization_test


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _np_lstm(x, kernel, recurrent_kernel, bias, input_mask=None, recurrent_mask=None):
    """The course's gate equations in NumPy, gate order i, f, g, o; returns all h and final c."""
    batch, steps, _ = x.shape
    units = recurrent_kernel.shape[0]
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    outputs = []
    for t in range(steps):
        x_t = x[:, t] if input_mask is None else x[:, t] * input_mask
        h_in = h if recurrent_mask is None else h * recurrent_mask
        z = x_t @ kernel + h_in @ recurrent_kernel + bias
        z_i, z_f, z_g, z_o = np.split(z, 4, axis=-1)
        c = _sigmoid(z_f) * c + _sigmoid(z_i) * np.tanh(z_g)
        h = _sigmoid(z_o) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1), h, c


def _random_weights(rng, input_dim, units, scale=0.5):
    return [
        rng.normal(scale=scale, size=(input_dim, 4 * units)).astype("float32"),
        rng.normal(scale=scale, size=(units, 4 * units)).astype("float32"),
        rng.normal(scale=scale, size=(4 * units,)).astype("float32"),
    ]


def test_cell_config():
    cell = LSTMCell(4, unit_forget_bias=False, dropout=0.2, recurrent_dropout=0.1, seed=3)
    config = run_serialization_test(cell).get_config()
    assert (config["units"], config["dropout"], config["recurrent_dropout"]) == (4, 0.2, 0.1)
    assert config["unit_forget_bias"] is False and config["seed"] == 3


def test_layer_config():
    layer = LSTM(3, return_sequences=True, go_backwards=True, dropout=0.1, seed=1, name="rnn")
    config = run_serialization_test(layer).get_config()
    assert "cell" not in config
    assert config["units"] == 3 and config["go_backwards"] is True
    assert config["return_sequences"] is True and config["dropout"] == 0.1
    # Bidirectional rebuilds the backward copy from this config with go_backwards flipped.
    bidirectional = run_serialization_test(keras.layers.Bidirectional(LSTM(3)))
    assert isinstance(bidirectional.backward_layer, LSTM)
    assert bidirectional.backward_layer.go_backwards is True


def test_layer():
    layer = run_layer_test(
        LSTM,
        {"units": 3, "return_sequences": True},
        input_shape=(2, 4, 5),
        expected_output_shape=(2, 4, 3),
        expected_num_trainable_weights=3,
        expected_num_non_trainable_weights=0,
    )
    kernel, recurrent_kernel, bias = layer.get_weights()
    assert (kernel.shape, recurrent_kernel.shape, bias.shape) == ((5, 12), (3, 12), (12,))


def test_unit_forget_bias():
    # The forget block (second quarter of the bias) starts at one, the others at zero.
    fresh = LSTM(3)
    fresh(np.zeros((1, 2, 5), "float32"))
    np.testing.assert_array_equal(
        fresh.get_weights()[2], np.r_[np.zeros(3), np.ones(3), np.zeros(6)]
    )
    plain = LSTM(3, unit_forget_bias=False)
    plain(np.zeros((1, 2, 5), "float32"))
    np.testing.assert_array_equal(plain.get_weights()[2], np.zeros(12))


def test_single_step_by_hand():
    # One unit, one input: every gate gets its own pre-activation, so a wrong gate order fails.
    cell = LSTMCell(1)
    cell.build((None, 1))
    cell.set_weights(
        [
            np.array([[0.1, 0.2, 0.3, 0.4]], "float32"),  # x -> i, f, g, o
            np.array([[0.5, -0.5, 1.0, 0.0]], "float32"),  # h -> i, f, g, o
            np.array([0.0, 1.0, 0.0, -1.0], "float32"),
        ]
    )
    x, h_prev, c_prev = 1.0, 0.5, 2.0
    sig = lambda z: 1.0 / (1.0 + math.exp(-z))  # noqa: E731
    i = sig(0.1 * x + 0.5 * h_prev + 0.0)  # z_i = 0.35
    f = sig(0.2 * x - 0.5 * h_prev + 1.0)  # z_f = 0.95
    g = math.tanh(0.3 * x + 1.0 * h_prev + 0.0)  # z_g = 0.8
    o = sig(0.4 * x + 0.0 * h_prev - 1.0)  # z_o = -0.6
    c = f * c_prev + i * g
    h = o * math.tanh(c)
    # The same numbers written out: c = 0.72111 * 2 + 0.58662 * 0.66404, h = 0.35434 * tanh(c).
    assert abs(c - 1.83176) < 1e-4 and abs(h - 0.33659) < 1e-4
    out, (h_new, c_new) = cell(
        np.array([[x]], "float32"),
        [np.array([[h_prev]], "float32"), np.array([[c_prev]], "float32")],
    )
    np.testing.assert_allclose(out, [[h]], atol=1e-6)
    np.testing.assert_allclose(h_new, [[h]], atol=1e-6)
    np.testing.assert_allclose(c_new, [[c]], atol=1e-6)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_matches_keras_lstm_both_ways(go_backwards):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 6, 4)).astype("float32")
    kwargs = {"return_sequences": True, "return_state": True, "go_backwards": go_backwards}
    ours, theirs = LSTM(5, **kwargs), keras.layers.LSTM(5, **kwargs)
    ours(x), theirs(x)

    # Keras -> ours.
    theirs.set_weights(_random_weights(rng, 4, 5))
    ours.set_weights(theirs.get_weights())
    for a, b in zip(ours(x), theirs(x)):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    # Ours -> Keras.
    ours.set_weights(_random_weights(rng, 4, 5))
    theirs.set_weights(ours.get_weights())
    sequence, h, c = ours(x)
    for a, b in zip((sequence, h, c), theirs(x)):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    # And both are the course's equations.
    x_np = x[:, ::-1] if go_backwards else x
    expected_seq, expected_h, expected_c = _np_lstm(x_np, *ours.get_weights())
    np.testing.assert_allclose(sequence, expected_seq, atol=1e-5, rtol=0)
    np.testing.assert_allclose(h, expected_h, atol=1e-5, rtol=0)
    np.testing.assert_allclose(c, expected_c, atol=1e-5, rtol=0)


def test_unroll_matches_layer():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    layer = LSTM(4, return_sequences=True, return_state=True)
    sequence, h, c = layer(x)
    outputs, states = unroll(layer.cell, x, return_state=True)
    np.testing.assert_allclose(outputs, sequence, atol=1e-6, rtol=0)
    np.testing.assert_allclose(states[0], h, atol=1e-6, rtol=0)
    np.testing.assert_allclose(states[1], c, atol=1e-6, rtol=0)


def _text_model(bidirectional):
    tokens = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(10, 4, mask_zero=True)(tokens)
    rnn = LSTM(3)
    outputs = keras.layers.Bidirectional(rnn)(x) if bidirectional else rnn(x)
    return keras.Model(tokens, outputs)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_is_masked(bidirectional):
    model = _text_model(bidirectional)
    unpadded = np.array([[3, 1, 4, 1, 5]], "int32")
    post = np.array([[3, 1, 4, 1, 5, 0, 0, 0]], "int32")
    pre = np.array([[0, 0, 3, 1, 4, 1, 5]], "int32")
    expected = keras.ops.convert_to_numpy(model(unpadded))
    np.testing.assert_allclose(model(post), expected, atol=1e-6, rtol=0)
    np.testing.assert_allclose(model(pre), expected, atol=1e-6, rtol=0)
    # A batch mixing lengths gives each sequence its own unpadded result.
    batch = np.array([[3, 1, 4, 1, 5], [2, 7, 0, 0, 0]], "int32")
    np.testing.assert_allclose(model(batch)[0], expected[0], atol=1e-6, rtol=0)
    np.testing.assert_allclose(
        model(batch)[1], model(np.array([[2, 7]], "int32"))[0], atol=1e-6, rtol=0
    )


def _dropout_check(rate_name, weights, rng):
    """Runs a 1-unit LSTM with dropout in training; each sample must use one mask throughout."""
    x = rng.normal(size=(64, 5, 1)).astype("float32")
    layer = LSTM(1, return_sequences=True, seed=7, **{rate_name: 0.5})
    layer(x)
    layer.set_weights(weights)
    out = keras.ops.convert_to_numpy(layer(x, training=True))[..., 0]
    key = "input_mask" if rate_name == "dropout" else "recurrent_mask"
    # With rate 0.5 a mask entry is 0 or 2; a per-step mask would match neither row for long.
    dropped = _np_lstm(x, *weights, **{key: np.zeros((64, 1))})[0][..., 0]
    kept = _np_lstm(x, *weights, **{key: np.full((64, 1), 2.0)})[0][..., 0]
    is_dropped = np.all(np.abs(out - dropped) < 1e-5, axis=1)
    is_kept = np.all(np.abs(out - kept) < 1e-5, axis=1)
    assert np.all(is_dropped ^ is_kept), "some sequence did not keep one mask for all its steps"
    assert 16 <= is_kept.sum() <= 48
    # At inference the layer is the plain LSTM.
    np.testing.assert_allclose(
        layer(x, training=False)[..., 0], _np_lstm(x, *weights)[0][..., 0], atol=1e-5
    )


def test_input_dropout_uses_one_mask_per_sequence():
    rng = np.random.default_rng(2)
    weights = [
        np.array([[0.5, -0.3, 0.8, 0.2]], "float32"),
        np.zeros((1, 4), "float32"),
        np.array([0.1, 1.0, -0.2, 0.0], "float32"),
    ]
    _dropout_check("dropout", weights, rng)


def test_recurrent_dropout_uses_one_mask_per_sequence():
    rng = np.random.default_rng(3)
    weights = [
        np.array([[0.5, -0.3, 0.8, 0.2]], "float32"),
        np.array([[0.7, -0.4, 0.9, 0.3]], "float32"),
        np.array([0.1, 1.0, -0.2, 0.0], "float32"),
    ]
    _dropout_check("recurrent_dropout", weights, rng)


def test_unroll_draws_one_mask_per_call():
    cell = LSTMCell(3, dropout=0.5, recurrent_dropout=0.5, seed=4)
    x = np.random.default_rng(5).normal(size=(4, 3, 2)).astype("float32")
    plain = keras.ops.convert_to_numpy(unroll(cell, x))
    dropped = keras.ops.convert_to_numpy(unroll(cell, x, training=True))
    assert not np.allclose(plain, dropped, atol=1e-3)
    assert cell._input_mask is None and cell._recurrent_mask is None  # reset after the call
    np.testing.assert_allclose(unroll(cell, x), plain, atol=0, rtol=0)


def test_cell_dropout_outside_lstm_fails_loudly():
    rnn = keras.layers.RNN(LSTMCell(2, dropout=0.3))
    x = np.ones((2, 3, 2), "float32")
    rnn(x)  # inference needs no masks
    with pytest.raises(RuntimeError, match="draw_dropout_masks"):
        rnn(x, training=True)


def test_bad_arguments():
    cases = [
        ({"units": 0}, "units"),
        ({"units": "4"}, "units"),
        ({"units": 4, "dropout": 1.0}, "dropout"),
        ({"units": 4, "recurrent_dropout": -0.1}, "recurrent_dropout"),
        ({"units": 4, "seed": -1}, "seed"),
    ]
    for cls in (LSTMCell, LSTM):
        for kwargs, name in cases:
            with pytest.raises(ValueError, match=f"`{name}`.*Received: {name}="):
                cls(**kwargs)


def test_bidirectional_trains_with_mask_and_dropout():
    # The sentiment app's shape, trained in graph mode: masks are drawn inside the traced call.
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6,), dtype="int32"),
            keras.layers.Embedding(12, 4, mask_zero=True),
            keras.layers.Bidirectional(LSTM(3, dropout=0.2, recurrent_dropout=0.2, seed=1)),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy", jit_compile=False)
    tokens = np.random.default_rng(0).integers(1, 12, size=(16, 6)).astype("int32")
    tokens[::2, 3:] = 0  # half the reviews are padded
    labels = (tokens[:, 0] > 6).astype("float32")[:, None]
    bidirectional = model.layers[1]
    before = [w.copy() for w in bidirectional.get_weights()]
    history = model.fit(tokens, labels, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = bidirectional.get_weights()
    assert len(after) == 6  # forward and backward kernel, recurrent kernel, bias
    assert all(not np.array_equal(b, a) for b, a in zip(before, after))
