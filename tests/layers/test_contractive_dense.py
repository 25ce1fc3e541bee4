"""Tests for ContractiveDense: the penalty it adds is the numerical Jacobian's norm times lambda."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras.layers.contractive_dense import ContractiveDense
from i2dl_keras.testing import run_layer_test, run_serialization_test


def _numerical_penalty(layer, x):
    """Batch mean of ||dh/dx||_F^2 from autodiff, not from the closed form."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        h = layer(x)
    jacobian = tape.batch_jacobian(h, x).numpy()  # (batch, units, input_dim)
    return float(np.mean(np.sum(jacobian**2, axis=(1, 2))))


def test_added_loss_equals_weight_times_numerical_jacobian_norm():
    # One test, not a parametrized one: each test's Keras teardown costs most of a second.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 6)).astype("float32")
    for activation in ("sigmoid", "tanh", "relu", "linear"):
        layer = ContractiveDense(4, activation=activation, contraction=0.3)
        layer(x)  # build
        # Non-zero bias so that relu has both active and inactive units.
        layer.bias.assign(rng.normal(size=(4,)).astype("float32"))
        expected = 0.3 * _numerical_penalty(layer, x)
        layer(x)
        assert len(layer.losses) == 1, activation
        assert expected > 1e-3, activation
        np.testing.assert_allclose(
            float(layer.losses[0]), expected, rtol=1e-5, atol=0, err_msg=activation
        )


def test_training_loss_is_reconstruction_plus_penalty_worked_in_numpy():
    x = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.25]], "float32")
    kernel = np.array([[0.5, -1.0], [2.0, 0.0], [-0.5, 1.5]], "float32")
    bias = np.array([0.1, -0.2], "float32")
    inputs = keras.Input((3,))
    code = ContractiveDense(2, contraction=0.1, name="code")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(code))
    model.get_layer("code").set_weights([kernel, bias])
    w_out = np.array([[1.0, 0.0, -1.0], [0.5, 0.5, 0.5]], "float32")
    model.get_layer("out").set_weights([w_out, np.zeros(3, "float32")])
    model.compile(optimizer="sgd", loss="mse")

    h = 1.0 / (1.0 + np.exp(-(x @ kernel + bias)))
    # ||J||_F^2 = sum_j (h_j (1 - h_j))^2 * sum_i W_ij^2, averaged over the batch.
    column_norms = (kernel**2).sum(axis=0)  # [4.5, 3.25]
    penalty = np.mean(np.sum((h * (1 - h)) ** 2 * column_norms, axis=1))
    mse = np.mean((h @ w_out - x) ** 2)
    loss = model.evaluate(x, x, batch_size=2, verbose=0)
    np.testing.assert_allclose(loss, mse + 0.1 * penalty, rtol=1e-5)
    assert 0.1 * penalty > 1e-2  # the penalty is a visible part of the loss


def test_zero_contraction_is_a_plain_dense_layer():
    x = np.ones((2, 3), "float32")
    layer = ContractiveDense(2, contraction=0.0)
    y = layer(x)
    assert layer.losses == []
    dense = keras.layers.Dense(2, activation="sigmoid")
    dense(x)
    dense.set_weights(layer.get_weights())
    np.testing.assert_allclose(y, dense(x), atol=1e-7)


def test_layer_helpers_and_config():
    layer = run_layer_test(
        ContractiveDense,
        {"units": 3, "activation": "tanh", "contraction": 0.01},
        input_shape=(4, 5),
        expected_output_shape=(4, 3),
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
    )
    config = layer.get_config()
    assert config["activation"] == "tanh"
    assert config["contraction"] == 0.01
    revived = run_serialization_test(layer)
    assert revived.activation_name == "tanh"


def test_invalid_arguments_raise():
    cases = [
        ({"units": 4, "activation": "softmax"}, "Received: activation='softmax'"),
        ({"units": 4, "activation": None}, "Received: activation=None"),
        ({"units": 4, "contraction": -0.1}, "Received: contraction=-0.1"),
        ({"units": 0}, "Received: units=0"),
    ]
    for kwargs, received in cases:
        with pytest.raises(ValueError) as info:
            ContractiveDense(**kwargs)
        assert str(info.value).endswith(received), str(info.value)
