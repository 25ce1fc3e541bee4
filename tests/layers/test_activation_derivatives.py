"""Derivatives of the activation functions, by tf.GradientTape, against the course's closed forms.

sigma' = sigma (1 - sigma), tanh' = 1 - tanh^2, ReLU' = step; and for the package's own
activation layers: ELU' = 1 (x > 0) or f(x) + alpha (x <= 0), LeakyReLU' = 1 or alpha, PReLU'
= 1 or alpha with d f / d alpha = x on the negative side.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras.layers.elu import ELU
from i2dl_keras.layers.leaky_relu import LeakyReLU
from i2dl_keras.layers.prelu import PReLU

# Away from 0, where ReLU and its relatives have a kink; 0 is tested on its own below.
X = np.array([-8.0, -3.0, -1.5, -0.5, -0.01, 0.01, 0.3, 1.0, 2.5, 8.0], "float64")


def derivative(fn, x):
    """Elementwise f'(x): the gradient of sum(f(x)) for an elementwise f."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
        total = tf.reduce_sum(y)
    return tape.gradient(total, x).numpy(), keras.ops.convert_to_numpy(y)


def central_difference(fn, x, h=1e-6):
    return (np.asarray(fn(tf.constant(x + h))) - np.asarray(fn(tf.constant(x - h)))) / (2 * h)


def test_sigmoid_derivative_is_sigma_times_one_minus_sigma():
    grad, sigma = derivative(keras.activations.sigmoid, X)
    np.testing.assert_allclose(sigma, 1 / (1 + np.exp(-X)), atol=1e-12, rtol=0)
    np.testing.assert_allclose(grad, sigma * (1 - sigma), atol=1e-12, rtol=0)
    # By hand: sigma(0) = 1/2, so sigma'(0) = 1/4, the largest slope sigmoid has; at |x| = 8,
    # sigma'(8) = e^-8 / (1 + e^-8)^2 = 3.35e-4: saturated, the gradient vanishes.
    grad0, _ = derivative(keras.activations.sigmoid, np.array([0.0]))
    assert grad0[0] == pytest.approx(0.25, abs=1e-12)
    assert grad[0] == pytest.approx(3.3524e-4, rel=1e-4)
    assert grad[-1] == pytest.approx(grad[0], rel=1e-9)  # sigma' is even
    assert grad.max() < 0.25


def test_tanh_derivative_is_one_minus_tanh_squared():
    grad, t = derivative(keras.activations.tanh, X)
    np.testing.assert_allclose(grad, 1 - t**2, atol=1e-12, rtol=0)
    # tanh'(0) = 1: four times sigmoid's best slope (tanh(x) = 2 sigma(2x) - 1).
    grad0, _ = derivative(keras.activations.tanh, np.array([0.0]))
    assert grad0[0] == pytest.approx(1.0, abs=1e-12)
    sigma_grad, _ = derivative(keras.activations.sigmoid, 2 * X)
    np.testing.assert_allclose(grad, 4 * sigma_grad, atol=1e-12, rtol=0)


def test_relu_derivative_is_a_step():
    for relu in (keras.activations.relu, keras.layers.ReLU(dtype="float64")):
        grad, y = derivative(relu, X)
        np.testing.assert_array_equal(y, np.maximum(X, 0))
        np.testing.assert_array_equal(grad, (X > 0).astype("float64"))
    # At the kink TensorFlow takes the left derivative, 0 (a ReLU at exactly 0 passes nothing).
    grad0, _ = derivative(keras.activations.relu, np.array([0.0]))
    assert grad0[0] == 0.0


def test_closed_forms_match_finite_differences():
    # The tape's derivatives are the functions' real slopes, not just internally consistent.
    for fn in (keras.activations.sigmoid, keras.activations.tanh, keras.activations.relu):
        grad, _ = derivative(fn, X)
        np.testing.assert_allclose(grad, central_difference(fn, X), atol=1e-7, rtol=0)


def test_elu_derivative():
    for alpha in (1.0, 0.5):
        layer = ELU(alpha=alpha, dtype="float64")
        grad, y = derivative(layer, X)
        # x > 0: 1; x <= 0: alpha * exp(x) = f(x) + alpha.
        np.testing.assert_allclose(grad, np.where(X > 0, 1.0, y + alpha), atol=1e-12, rtol=0)
        np.testing.assert_allclose(grad, central_difference(layer, X), atol=1e-7, rtol=0)
    # At 0 the layer takes the exponential branch: alpha * exp(0) = alpha (1 for alpha = 1,
    # so the default ELU is continuously differentiable there).
    grad0, _ = derivative(ELU(alpha=0.5, dtype="float64"), np.array([0.0]))
    assert grad0[0] == pytest.approx(0.5, abs=1e-12)


def test_leaky_relu_derivative():
    layer = LeakyReLU(dtype="float64")  # the course's slope 0.01
    grad, _ = derivative(layer, X)
    np.testing.assert_allclose(grad, np.where(X >= 0, 1.0, 0.01), atol=1e-15, rtol=0)
    np.testing.assert_allclose(grad, central_difference(layer, X), atol=1e-7, rtol=0)
    # At 0 the layer takes the positive branch; the slope is never 0, so no unit dies.
    grad0, _ = derivative(LeakyReLU(alpha=0.2, dtype="float64"), np.array([0.0, -4.0]))
    np.testing.assert_allclose(grad0, [1.0, 0.2], atol=1e-15, rtol=0)


def test_prelu_derivatives_in_x_and_alpha():
    layer = PReLU(dtype="float64")
    layer.build((1, len(X)))
    alpha = np.linspace(0.1, 0.6, len(X))
    layer.set_weights([alpha])
    x = tf.constant(X[None])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = tf.reduce_sum(layer(x))
    # d f / d x = 1 or alpha; d f / d alpha = 0 or x (what trains the slope).
    np.testing.assert_allclose(tape.gradient(y, x)[0], np.where(X >= 0, 1.0, alpha), atol=1e-15)
    np.testing.assert_allclose(tape.gradient(y, layer.alpha), np.where(X >= 0, 0.0, X), atol=1e-15)
