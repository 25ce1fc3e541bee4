import keras
import numpy as np
import pytest

from i2dl_keras.layers import SimpleRNNCell, unroll
from i2dl_keras.testing import run_layer_test, run_serialization_test


def test_config():
    cell = SimpleRNNCell(4, activation="relu", use_bias=False, recurrent_initializer="zeros")
    config = run_serialization_test(cell).get_config()
    assert (config["units"], config["activation"], config["use_bias"]) == (4, "relu", False)
    with pytest.raises(ValueError, match="`units`.*Received: units=0"):
        SimpleRNNCell(0)


def test_unroll_matches_keras_simple_rnn():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 6, 2)).astype("float32")
    reference = keras.layers.SimpleRNN(4, return_sequences=True, return_state=True)
    reference(x)
    weights = [
        rng.normal(scale=0.5, size=(2, 4)).astype("float32"),
        rng.normal(scale=0.5, size=(4, 4)).astype("float32"),
        rng.normal(scale=0.5, size=(4,)).astype("float32"),
    ]
    reference.set_weights(weights)
    expected_sequence, expected_state = reference(x)

    cell = SimpleRNNCell(4)
    cell.build((None, 2))
    cell.set_weights(reference.get_weights())
    outputs, states = unroll(cell, x, return_state=True)
    np.testing.assert_allclose(outputs, expected_sequence, atol=1e-5, rtol=0)
    np.testing.assert_allclose(states[0], expected_state, atol=1e-5, rtol=0)

    # The course's h_t = tanh(x_t W + h_{t-1} U + b), step by step in NumPy.
    h = np.zeros((3, 4))
    for t in range(6):
        h = np.tanh(x[:, t] @ weights[0] + h @ weights[1] + weights[2])
        np.testing.assert_allclose(outputs[:, t], h, atol=1e-5, rtol=0)

    # The same cell inside keras.layers.RNN, and a given initial state.
    np.testing.assert_allclose(
        keras.layers.RNN(cell, return_sequences=True)(x), expected_sequence, atol=1e-5, rtol=0
    )
    h0 = rng.normal(size=(3, 4)).astype("float32")
    np.testing.assert_allclose(
        unroll(cell, x, initial_state=h0),
        reference(x, initial_state=[h0])[0],
        atol=1e-5,
        rtol=0,
    )


def test_layer_inside_rnn():
    # The house layer test on keras.layers.RNN driving the cell: build, shapes, config, a step.
    layer = run_layer_test(
        keras.layers.RNN,
        {"cell": SimpleRNNCell(3), "return_sequences": True},
        input_shape=(2, 4, 5),
        expected_output_shape=(2, 4, 3),
        expected_num_trainable_weights=3,
        expected_num_non_trainable_weights=0,
    )
    assert isinstance(layer.cell, SimpleRNNCell)
    assert [tuple(w.shape) for w in layer.weights] == [(5, 3), (3, 3), (3,)]


def test_unroll_rejects_unknown_length():
    with pytest.raises(ValueError, match="Received: inputs.shape="):
        unroll(SimpleRNNCell(2), np.zeros((2, 3), "float32"))
