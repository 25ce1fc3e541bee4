"""L1, L2 and L1L2 weight penalties, and L2 as weight decay under SGD."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras import regularizers
from i2dl_keras.testing import run_serialization_test

W = np.array([[1.0, -2.0], [0.5, 0.0]], dtype="float32")  # sum |w| = 3.5, sum w^2 = 5.25


def test_correctness():
    assert float(regularizers.L1(0.1)(W)) == pytest.approx(0.35, rel=1e-6)
    assert float(regularizers.L2(0.1)(W)) == pytest.approx(0.525, rel=1e-6)
    assert float(regularizers.L1L2(l1=0.1, l2=0.2)(W)) == pytest.approx(0.35 + 1.05, rel=1e-6)
    assert float(regularizers.L1L2()(W)) == 0.0
    assert float(regularizers.L1()(W)) == pytest.approx(0.035, rel=1e-6)  # default 0.01
    assert float(regularizers.L2()(W)) == pytest.approx(0.0525, rel=1e-6)
    assert float(regularizers.L1L2(l1=0.1, l2=0.2)(W)) == pytest.approx(
        float(keras.regularizers.L1L2(l1=0.1, l2=0.2)(W)), rel=1e-6
    )
    # As layer arguments: the layer's losses are the penalties of its kernel and bias.
    layer = keras.layers.Dense(
        2,
        kernel_initializer=keras.initializers.Constant(W),
        bias_initializer=keras.initializers.Constant([3.0, -4.0]),
        kernel_regularizer=regularizers.L2(0.1),
        bias_regularizer=regularizers.L1(0.5),
    )
    layer.build((None, 2))
    np.testing.assert_allclose([float(v) for v in layer.losses], [0.525, 3.5], rtol=1e-6)


def test_l2_is_weight_decay_for_sgd():
    # Erratum: the decay term is linear, -lambda * theta. For SGD with learning rate alpha, the
    # penalty l2 * ||w||^2 gives exactly the decay lambda = 2 * alpha * l2.
    l2, alpha = 0.05, 0.1
    x = np.array([[1.0, 2.0], [-1.0, 0.5]], dtype="float32")
    w = tf.Variable(W)
    with tf.GradientTape() as tape:
        penalty = regularizers.L2(l2)(w)
    np.testing.assert_allclose(tape.gradient(penalty, w), 2 * l2 * W, rtol=1e-6)

    def step(optimizer, variable, with_penalty):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(x @ variable))
            if with_penalty:
                loss += regularizers.L2(l2)(variable)
        optimizer.apply_gradients([(tape.gradient(loss, variable), variable)])
        return variable.numpy()

    penalised = step(keras.optimizers.SGD(alpha), tf.Variable(W), True)
    decayed = step(keras.optimizers.SGD(alpha, weight_decay=2 * l2), tf.Variable(W), False)
    grad = 2 * x.T @ (x @ W)
    np.testing.assert_allclose(penalised, W - alpha * grad - 2 * alpha * l2 * W, rtol=1e-5)
    np.testing.assert_allclose(penalised, decayed, rtol=1e-5)
    # With Adam the two differ: the penalty's gradient is rescaled per weight (hence AdamW).
    adam_penalised = step(keras.optimizers.Adam(alpha), tf.Variable(W), True)
    adam_decayed = step(keras.optimizers.Adam(alpha, weight_decay=2 * l2), tf.Variable(W), False)
    assert np.max(np.abs(adam_penalised - adam_decayed)) > 1e-3


def test_config_and_bad_arguments():
    for reg, config in (
        (regularizers.L1(0.25), {"l1": 0.25}),
        (regularizers.L2(2), {"l2": 2.0}),
        (regularizers.L1L2(l1=0.5, l2=0.125), {"l1": 0.5, "l2": 0.125}),
    ):
        revived = run_serialization_test(reg)
        assert revived.get_config() == config
    for cls, name in (
        (regularizers.L1, "l1"),
        (regularizers.L2, "l2"),
        (regularizers.L1L2, "l1"),
        (regularizers.L1L2, "l2"),
    ):
        for bad in (-0.01, float("nan"), "0.1", None):
            with pytest.raises(ValueError, match=rf"`{name}` must be a finite number >= 0\. "):
                cls(**{name: bad})
        with pytest.raises(ValueError, match=f"Received: {name}=-1"):
            cls(**{name: -1})
