"""The sparse autoencoder's activity penalty: the L1 form, the KL form and Keras' batch scaling."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras import regularizers
from i2dl_keras.testing import run_serialization_test

H = np.array([[0.1, -0.5, 0.0], [0.3, 0.2, 0.9]], dtype="float32")  # row |h| sums 0.6, 1.4
S = np.array([[0.1, 0.5], [0.3, 0.7]], dtype="float32")  # unit means 0.2, 0.6


def kl(rho, q):
    return rho * np.log(rho / q) + (1 - rho) * np.log((1 - rho) / (1 - q))


def added_loss(reg, activations):
    """What a layer with `activity_regularizer=reg` adds to the model's loss."""
    layer = keras.layers.Identity(activity_regularizer=reg)
    layer(activations)
    assert len(layer.losses) == 1
    return float(layer.losses[0])


def test_l1_form():
    reg = regularizers.Sparsity(weight=0.5)
    # 0.5 * mean(0.6, 1.4) = 0.5.
    assert float(reg.penalty(H)) == pytest.approx(0.5, rel=1e-6)
    assert added_loss(reg, H) == pytest.approx(0.5, rel=1e-6)
    # The penalty does not grow with the batch: the same rows four times over.
    assert added_loss(reg, np.tile(H, (4, 1))) == pytest.approx(0.5, rel=1e-6)
    # Conv activations (batch, h, w, c): the sum runs over every non-batch axis.
    conv = np.arange(16, dtype="float32").reshape(2, 2, 2, 2) - 8.0
    expected = 0.5 * np.abs(conv).reshape(2, -1).sum(-1).mean()
    assert float(reg.penalty(conv)) == pytest.approx(expected, rel=1e-6)
    assert float(regularizers.Sparsity()(H)) == pytest.approx(1e-4 * 2.0, rel=1e-6)


def test_kl_form():
    reg = regularizers.Sparsity(weight=2.0, target=0.2)
    # Unit 0 already averages 0.2 (KL 0); unit 1 averages 0.6:
    # 0.2 ln(0.2 / 0.6) + 0.8 ln(0.8 / 0.4) = 0.334795.
    assert kl(0.2, 0.6) == pytest.approx(0.3347952, rel=1e-6)
    assert float(reg.penalty(S)) == pytest.approx(2.0 * 0.3347952, rel=1e-5)
    assert added_loss(reg, S) == pytest.approx(2.0 * 0.3347952, rel=1e-5)
    assert added_loss(reg, np.tile(S, (4, 1))) == pytest.approx(2.0 * 0.3347952, rel=1e-5)

    # Dead units (mean 0) are clipped to eps, so the penalty stays finite.
    dead = np.zeros((3, 2), dtype="float32")
    assert float(reg.penalty(dead)) == pytest.approx(2 * 2 * kl(0.2, 1e-7), rel=1e-4)

    # Conv activations: one mean per channel over the batch and the spatial axes.
    rng = np.random.default_rng(0)
    conv = rng.uniform(0.05, 0.95, size=(2, 3, 3, 4)).astype("float32")
    rho_hat = conv.mean(axis=(0, 1, 2))
    assert float(reg.penalty(conv)) == pytest.approx(2.0 * kl(0.2, rho_hat).sum(), rel=1e-5)

    # Gradient: d/dh_bj = weight / batch * (-rho / rho_hat_j + (1 - rho) / (1 - rho_hat_j)).
    h = tf.constant(S)
    with tf.GradientTape() as tape:
        tape.watch(h)
        value = reg.penalty(h)
    rho_hat = S.mean(axis=0)
    slope = 2.0 / 2 * (-0.2 / rho_hat + 0.8 / (1 - rho_hat))
    np.testing.assert_allclose(tape.gradient(value, h), np.tile(slope, (2, 1)), rtol=1e-5)


def test_config_and_bad_arguments():
    for reg, config in (
        (regularizers.Sparsity(), {"weight": 1e-4, "target": None}),
        (regularizers.Sparsity(weight=0.3, target=0.05), {"weight": 0.3, "target": 0.05}),
    ):
        assert run_serialization_test(reg).get_config() == config
    for weight in (-1e-3, float("inf"), "1", None):
        with pytest.raises(ValueError, match=r"`weight` must be a finite number >= 0\. "):
            regularizers.Sparsity(weight=weight)
    with pytest.raises(ValueError, match="Received: weight=-0.5"):
        regularizers.Sparsity(weight=-0.5)
    for target in (0, 1, 1.5, -0.1, True, "0.1", float("nan")):
        with pytest.raises(
            ValueError, match=f"strictly between 0 and 1. Received: target={target!r}"
        ):
            regularizers.Sparsity(target=target)
