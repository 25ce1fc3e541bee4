"""linear_least_squares and LinearRegression: hand-worked fits, NumPy twins, optimality."""

import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras.classic import LinearRegression, linear_least_squares
from i2dl_keras.testing import run_serialization_test


def test_hand_worked_examples():
    # Two points (0, 1), (1, 3): the line through them, y = 2x + 1.
    w, b = linear_least_squares([0.0, 1.0], [1.0, 3.0])
    np.testing.assert_allclose(w, [2.0], atol=1e-12)
    assert b == pytest.approx(1.0, abs=1e-12)
    # Three points (0, 1), (1, 2), (2, 4): mean x 1, mean y 7/3, Sxy = 3, Sxx = 2,
    # so w = 3/2 and b = 7/3 - 3/2 = 5/6.
    w, b = linear_least_squares([[0.0], [1.0], [2.0]], [1.0, 2.0, 4.0])
    np.testing.assert_allclose(w, [1.5], atol=1e-12)
    assert b == pytest.approx(5.0 / 6.0, abs=1e-12)
    # Ridge on the two points with l2 = 1: centred Sxy = 1, Sxx = 1/2, so w = 1 / (1/2 + 1) = 2/3
    # and the unpenalised bias b = 2 - (2/3)(1/2) = 5/3.
    w, b = linear_least_squares([0.0, 1.0], [1.0, 3.0], l2=1.0)
    np.testing.assert_allclose(w, [2.0 / 3.0], atol=1e-12)
    assert b == pytest.approx(5.0 / 3.0, abs=1e-12)
    # No intercept, points (1, 2), (2, 3): w = sum(xy) / sum(x^2) = 8/5.
    w, b = linear_least_squares([1.0, 2.0], [2.0, 3.0], fit_intercept=False)
    np.testing.assert_allclose(w, [1.6], atol=1e-12)
    assert b == 0.0


def test_matches_numpy_lstsq_and_ridge_normal_equations():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 4))
    y = x @ rng.normal(size=(4, 2)) + rng.normal(size=(30, 2)) + [1.0, -2.0]
    w, b = linear_least_squares(x, y)
    theta = np.linalg.lstsq(np.hstack([x, np.ones((30, 1))]), y, rcond=None)[0]
    assert w.shape == (4, 2) and b.shape == (2,)
    np.testing.assert_allclose(w, theta[:4], atol=1e-10)
    np.testing.assert_allclose(b, theta[4], atol=1e-10)

    w0, b0 = linear_least_squares(x, y[:, 0], fit_intercept=False)
    np.testing.assert_allclose(w0, np.linalg.lstsq(x, y[:, 0], rcond=None)[0], atol=1e-10)
    assert b0 == 0.0

    xc, yc = x - x.mean(0), y - y.mean(0)
    ridge = np.linalg.solve(xc.T @ xc + 2.5 * np.eye(4), xc.T @ yc)
    w, b = linear_least_squares(x, y, l2=2.5)
    np.testing.assert_allclose(w, ridge, atol=1e-10)
    np.testing.assert_allclose(b, y.mean(0) - x.mean(0) @ ridge, atol=1e-10)


def test_rank_deficient_gives_minimum_norm_solution():
    rng = np.random.default_rng(2)
    column = rng.normal(size=(12, 1))
    x = np.hstack([column, column])  # X^T X is singular: the normal equations have no inverse
    y = 3.0 * column[:, 0] + 1.0
    w, b = linear_least_squares(x, y)
    np.testing.assert_allclose(w, [1.5, 1.5], atol=1e-10)
    assert b == pytest.approx(1.0, abs=1e-10)


def test_config():
    run_serialization_test(LinearRegression())
    revived = run_serialization_test(LinearRegression(units=2, use_bias=False, num_features=3))
    assert revived.built and revived.linear.kernel.shape == (3, 2)


def test_model_solve_is_the_mse_minimum():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3 + 0.1 * rng.normal(size=(20, 1))).astype(
        "float32"
    )
    model = LinearRegression().solve(x, y)
    w, b = linear_least_squares(x, y)
    np.testing.assert_allclose(model(x), x @ w + b, atol=1e-5)
    # At the closed-form solution the gradient of the MSE vanishes (up to float32 rounding).
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x) - y))
    for grad in tape.gradient(loss, model.trainable_weights):
        np.testing.assert_allclose(grad, np.zeros(grad.shape), atol=1e-5)
    residual = np.linalg.lstsq(np.hstack([x, np.ones((20, 1))]), y, rcond=None)[1][0] / 20
    assert float(loss) == pytest.approx(residual, rel=1e-4)
    # A ridge solve on the same model shrinks the weights.
    model.solve(x, y, l2=5.0)
    assert np.linalg.norm(model.linear.kernel.numpy()) < np.linalg.norm(w)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"`l2` must be a finite float >= 0\. Received: l2=-1"):
        linear_least_squares([0.0, 1.0], [1.0, 3.0], l2=-1)
    with pytest.raises(ValueError, match=r"Received: x.shape=\(2, 1, 1\)"):
        linear_least_squares(np.zeros((2, 1, 1)), [1.0, 3.0])
    with pytest.raises(ValueError, match=r"`y` must have shape \(2,\).*Received: y.shape=\(3,\)"):
        linear_least_squares([0.0, 1.0], [1.0, 3.0, 4.0])
    with pytest.raises(
        ValueError, match=r"`x` must be finite.*Received: x with 1 non-finite values"
    ):
        linear_least_squares([0.0, np.nan], [1.0, 3.0])
    with pytest.raises(ValueError, match=r"`units` must be an integer >= 1\. Received: units=0"):
        LinearRegression(units=0)
    with pytest.raises(ValueError, match=r"Received: num_features=0"):
        LinearRegression(num_features=0)
    with pytest.raises(ValueError, match=r"`y` must have shape \(n, 2\).*Received: y.shape=\(4,\)"):
        LinearRegression(units=2).solve(np.zeros((4, 3)), np.zeros(4))
    with pytest.raises(ValueError, match=r"`num_features` = 3 .*Received: x.shape=\(4, 2\)"):
        LinearRegression(num_features=3).solve(np.zeros((4, 2)), np.zeros(4))
