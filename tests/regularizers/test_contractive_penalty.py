"""The closed-form contractive penalty against the Jacobian from automatic differentiation."""

import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras.regularizers import CONTRACTIVE_ACTIVATIONS, contractive_penalty

ACTIVATIONS = {
    "sigmoid": tf.sigmoid,
    "tanh": tf.tanh,
    "relu": tf.nn.relu,
    "linear": tf.identity,
}


def test_correctness_against_autodiff_jacobian():
    assert set(CONTRACTIVE_ACTIVATIONS) == set(ACTIVATIONS)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(4, 3)), dtype="float32")
    kernel = tf.constant(rng.normal(size=(3, 5)), dtype="float32")
    bias = tf.constant(rng.normal(size=(5,)), dtype="float32")
    values = {}
    for name, fn in ACTIVATIONS.items():
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            h = fn(x @ kernel + bias)
            units = [h[:, j] for j in range(5)]
        # Row j of each sample's Jacobian is the gradient of unit j (samples are independent).
        jacobian = np.stack([tape.gradient(u, x).numpy() for u in units], axis=1)
        expected = np.mean(np.sum(jacobian**2, axis=(1, 2)))
        values[name] = float(contractive_penalty(kernel, h, activation=name))
        assert values[name] == pytest.approx(expected, rel=1e-5), name
    # The linear encoder's Jacobian is W^T for every sample.
    assert values["linear"] == pytest.approx(float(np.sum(kernel.numpy() ** 2)), rel=1e-5)
    # Saturating units shrink the Jacobian; relu drops the columns of inactive units.
    assert values["sigmoid"] < values["tanh"] < values["linear"]
    assert 0.0 < values["relu"] < values["linear"]


def test_bad_activation():
    with pytest.raises(
        ValueError, match="`activation` must be one of .* Received: activation='elu'"
    ):
        contractive_penalty(tf.ones((2, 2)), tf.ones((1, 2)), activation="elu")
