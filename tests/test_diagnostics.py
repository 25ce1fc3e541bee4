"""Gradient flow and activation statistics: hand-worked numbers, vanishing gradients, plots."""

import io
import re

import keras
import numpy as np
import pytest
from matplotlib.figure import Figure

from i2dl_keras.diagnostics import (
    activation_statistics,
    hidden_state_gradient_norms,
    layer_gradient_norms,
    plot_activation_statistics,
    plot_gradient_norms,
)
from i2dl_keras.layers import LSTM


def scalar_rnn(kernel, recurrent, activation=None, steps=5):
    layer = keras.layers.SimpleRNN(1, activation=activation, use_bias=False)
    layer.build((None, steps, 1))
    layer.set_weights([np.array([[kernel]]), np.array([[recurrent]])])
    return layer


def test_hidden_state_gradient_norms_by_hand():
    # A linear RNN h_t = w x_t + u h_{t-1} with u = 0.5 and L = h_T: dL/dh_t = u^(T - t).
    x = np.ones((1, 5, 1), "float32")
    norms = hidden_state_gradient_norms(scalar_rnn(2.0, 0.5), x)
    np.testing.assert_allclose(norms, [0.0625, 0.125, 0.25, 0.5, 1.0], rtol=1e-6)
    assert norms.dtype == np.float64
    frozen = scalar_rnn(2.0, 0.5)
    frozen.trainable = False  # its states must still be traced
    np.testing.assert_allclose(hidden_state_gradient_norms(frozen, x), norms, rtol=1e-6)
    # L = sum_t h_t: dL/dh_t = 1 + u + ... + u^(T - t).
    norms = hidden_state_gradient_norms(
        scalar_rnn(2.0, 0.5), x[:, :3], loss_fn=lambda h: keras.ops.sum(h)
    )
    np.testing.assert_allclose(norms, [1.75, 1.5, 1.0], rtol=1e-6)
    # A batch of 2: L = mean over the batch, so each row gets 1/2 and the norm is sqrt(2) / 2.
    norms = hidden_state_gradient_norms(scalar_rnn(2.0, 0.5).cell, np.ones((2, 2, 1)))
    np.testing.assert_allclose(norms, [0.5 * np.sqrt(0.5), np.sqrt(0.5)], rtol=1e-6)

    # tanh, w = 0.5, u = 2, x = [1, -1]: h_1 = tanh(0.5) = 0.4621172,
    # h_2 = tanh(-0.5 + 2 h_1) = 0.4004916; dL/dh_1 = (1 - h_2^2) u = 1.6792129.
    norms = hidden_state_gradient_norms(
        scalar_rnn(0.5, 2.0, "tanh", steps=2), np.array([[[1.0], [-1.0]]])
    )
    np.testing.assert_allclose(norms, [1.6792129, 1.0], rtol=1e-6)
    # A loss that ignores the first step's state from the second step on: the norm is 0 there.
    norms = hidden_state_gradient_norms(
        scalar_rnn(2.0, 0.0), x[:, :3], loss_fn=lambda h: keras.ops.sum(h[:, 1:])
    )
    np.testing.assert_array_equal(norms, [0.0, 1.0, 1.0])


def test_simple_rnn_gradient_vanishes_over_50_steps_lstm_does_not():
    keras.utils.set_random_seed(0)
    x = 0.5 * np.random.default_rng(0).normal(size=(4, 50, 8)).astype("float32")
    rnn = keras.layers.SimpleRNN(16)
    # An LSTM carries the gradient back through C_t = f C_{t-1} + i g, multiplied by the
    # forget gate only. Here the forget gates are opened (b_f = 3, f ~ 0.95), as an LSTM
    # learns to do for long memories; bias layout [i, f, g, o] as in Keras.
    lstm = LSTM(16)
    lstm(x[:, :1])
    bias = lstm.cell.bias.numpy()
    bias[16:32] = 3.0
    lstm.cell.bias.assign(bias)
    # A fresh LSTM (b_f = 1, f ~ sigmoid(1) = 0.73) forgets nearly as fast as the SimpleRNN.
    fresh_lstm = keras.layers.LSTM(16)

    rnn_norms = hidden_state_gradient_norms(rnn, x)
    lstm_norms = hidden_state_gradient_norms(lstm, x)
    fresh_norms = hidden_state_gradient_norms(fresh_lstm, x)
    assert rnn_norms.shape == lstm_norms.shape == (50,)
    rnn_ratio = rnn_norms[0] / rnn_norms[-1]
    lstm_ratio = lstm_norms[0] / lstm_norms[-1]
    assert rnn_ratio < 1e-3  # orders of magnitude from the last step to the first
    assert lstm_ratio > 1e-2
    assert lstm_ratio > 1e3 * rnn_ratio
    # The SimpleRNN's norm falls steadily: every 10 steps back lose a factor of 2 or more.
    assert np.all(rnn_norms[0:40:10] < 0.5 * rnn_norms[10:50:10])
    assert fresh_norms[0] / fresh_norms[-1] < 1e-3

    fig = plot_gradient_norms({"SimpleRNN": rnn_norms, "LSTM": lstm_norms})
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    assert [line.get_label() for line in ax.get_lines()] == ["SimpleRNN", "LSTM"]
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), rnn_norms)
    np.testing.assert_array_equal(ax.get_lines()[1].get_xdata(), np.arange(1, 51))
    fig.savefig(io.BytesIO(), format="png")


class StopGradient(keras.layers.Layer):
    def call(self, x):
        return keras.ops.stop_gradient(x)


def two_layer_model():
    # x (2, 2) -> Dense(2, kernel [[1, -1], [0, 1]]) -> Dense(1, kernel [[1], [1]]), biases
    # zero: a = x K1 = [[1, 1], [3, 1]], out = [[2], [4]].
    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(2, name="hidden"),
            keras.layers.Dense(1, name="out"),
        ]
    )
    model.get_layer("hidden").set_weights([np.array([[1.0, -1.0], [0.0, 1.0]]), np.zeros(2)])
    model.get_layer("out").set_weights([np.array([[1.0], [1.0]]), np.zeros(1)])
    x = np.array([[1.0, 2.0], [3.0, 4.0]], "float32")
    y = np.zeros((2, 1), "float32")
    return model, x, y


def test_layer_gradient_norms_by_hand():
    # MSE against y = 0: L = (2^2 + 4^2) / 2 = 10, dL/dout = 2 out / 2 = [[2], [4]].
    # out layer: dL/dK2 = a^T [2, 4] = [[14], [6]], dL/db2 = 6: norm sqrt(268).
    # hidden: dL/da = [[2, 2], [4, 4]], dL/dK1 = x^T dL/da = [[14, 14], [20, 20]],
    # dL/db1 = [6, 6]: norm sqrt(1264).
    model, x, y = two_layer_model()
    before = [w.copy() for w in model.get_weights()]
    norms = layer_gradient_norms(model, x, y, loss="mse")
    assert list(norms) == ["hidden", "out"]
    np.testing.assert_allclose([norms["hidden"], norms["out"]], np.sqrt([1264, 268]), rtol=1e-6)
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)  # nothing trained
    # The compiled loss is the default; a loss object gives the same.
    model.compile(loss="mse")
    assert layer_gradient_norms(model, x, y) == pytest.approx(norms)
    mse = keras.losses.MeanSquaredError()
    assert layer_gradient_norms(model, x, y, loss=mse) == pytest.approx(norms)


def test_layer_gradient_norms_vanish_in_a_deep_sigmoid_stack():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(32, 16)), rng.normal(size=(32, 1))
    stack = [keras.layers.Dense(16, activation="sigmoid") for _ in range(8)]
    model = keras.Sequential([keras.Input((16,)), *stack, keras.layers.Dense(1)])
    norms = list(layer_gradient_norms(model, x, y, loss="mse").values())
    assert len(norms) == 9
    # sigmoid' <= 1/4: each layer back shrinks the gradient, by 10^4 over the 8 layers.
    assert all(a < b for a, b in zip(norms[:8], norms[1:8]))
    assert norms[0] < 1e-4 * norms[7]

    fig = plot_gradient_norms(
        norms, xlabel="layer", ticklabels=[layer.name for layer in model.layers]
    )
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == [layer.name for layer in model.layers]
    assert ax.get_xlabel() == "layer" and ax.get_legend() is None


def test_activation_statistics_by_hand():
    # Activations: hidden a = [[1, 1], [3, 1]]: mean 1.5, std sqrt(0.75); out [[2], [4]]: mean
    # 3, std 1. Gradients of L = 10: dL/dout = [[2], [4]] (mean 3, std 1), dL/da = [[2, 2],
    # [4, 4]] (mean 3, std 1).
    model, x, y = two_layer_model()
    stats = activation_statistics(model, x, y, loss="mse")
    assert list(stats) == ["hidden", "out"]
    expected = {
        "hidden": [1.5, np.sqrt(0.75), 3.0, 1.0],
        "out": [3.0, 1.0, 3.0, 1.0],
    }
    keys = ["activation_mean", "activation_std", "gradient_mean", "gradient_std"]
    for name, values in expected.items():
        np.testing.assert_allclose([stats[name][k] for k in keys], values, rtol=1e-6)

    # Layers without weights get their gradients too (the tape must watch their outputs),
    # and no gradient reaches a layer behind a stop_gradient: nan.
    def stack():
        return [
            keras.layers.Activation("tanh", name="first"),
            StopGradient(name="stop"),
            keras.layers.Dense(1, name="last"),
        ]

    sequential = keras.Sequential([keras.Input((2,)), *stack()])
    seq_stats = activation_statistics(sequential, x, y, loss="mse")
    assert list(seq_stats) == ["first", "stop", "last"]
    assert np.isnan(seq_stats["first"]["gradient_std"])
    assert seq_stats["stop"]["gradient_std"] > 0
    np.testing.assert_allclose(seq_stats["first"]["activation_mean"], np.tanh(x).mean(), rtol=1e-6)

    inputs = keras.Input((2,))
    first = keras.layers.Activation("tanh", name="first")(inputs)
    outputs = keras.layers.Dense(1, name="last")(first)
    functional = keras.Model(inputs, outputs)
    functional_stats = activation_statistics(functional, x, y, loss="mse")
    assert list(functional_stats) == ["first", "last"]
    # dL/dfirst = dL/dout * K^T, the same for both units up to the kernel's entries.
    kernel = functional.get_layer("last").kernel.numpy()[:, 0]
    out = np.tanh(x) @ kernel + functional.get_layer("last").bias.numpy()
    expected = (out[:, None] - y) * kernel[None, :]  # 2 (p - t) / N with N = 2
    np.testing.assert_allclose(
        functional_stats["first"]["gradient_mean"], expected.mean(), rtol=1e-5
    )
    np.testing.assert_allclose(functional_stats["first"]["gradient_std"], expected.std(), rtol=1e-5)
    sequential = keras.Sequential([keras.Input((2,)), *stack()[::2]])
    sequential.get_layer("last").set_weights(functional.get_layer("last").get_weights())
    for name, values in activation_statistics(sequential, x, y, loss="mse").items():
        assert values == pytest.approx(functional_stats[name], rel=1e-6)
    with pytest.raises(ValueError, match="one output"):
        activation_statistics(keras.Model(inputs, [outputs, first]), x, y, loss="mse")

    fig = plot_activation_statistics(stats, title="two layers")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["hidden", "out"]
    fig.savefig(io.BytesIO(), format="png")


def test_bad_arguments():
    model, x, y = two_layer_model()
    with pytest.raises(ValueError, match=re.escape("Received: loss=None")):
        layer_gradient_norms(model, x, y)
    with pytest.raises(ValueError, match=re.escape("Received: loss=3")):
        activation_statistics(model, x, y, loss=3)
    with pytest.raises(ValueError, match="Received: model=<Dense"):
        layer_gradient_norms(keras.layers.Dense(1), x, y, loss="mse")
    with pytest.raises(ValueError, match="Received: rnn=<Dense"):
        hidden_state_gradient_norms(keras.layers.Dense(1), np.ones((1, 3, 1)))
    with pytest.raises(ValueError, match=re.escape("Received: rnn.go_backwards=True")):
        hidden_state_gradient_norms(
            keras.layers.SimpleRNN(2, go_backwards=True), np.ones((1, 3, 1))
        )
    with pytest.raises(ValueError, match=re.escape("Received: inputs.shape=(3, 1)")):
        hidden_state_gradient_norms(keras.layers.SimpleRNN(2), np.ones((3, 1)))
    with pytest.raises(ValueError, match=re.escape("Received: a loss of shape (1,)")):
        hidden_state_gradient_norms(
            keras.layers.SimpleRNN(2), np.ones((1, 3, 1)), loss_fn=lambda h: h[:, -1, 0]
        )
    with pytest.raises(ValueError, match=re.escape("Received: norms={'a': []}")):
        plot_gradient_norms({"a": []})
    with pytest.raises(ValueError, match=re.escape("Received: ticklabels=['a']")):
        plot_gradient_norms([1.0, 2.0], ticklabels=["a"])
    with pytest.raises(ValueError, match=re.escape("Received: stats={'a': {}}")):
        plot_activation_statistics({"a": {}})
