"""LevenbergMarquardt: config, the damped step, a curve fit, Gauss-Newton, and damping control."""

import keras
import numpy as np
import pytest

from i2dl_keras.optimizers import LevenbergMarquardt
from i2dl_keras.testing import run_serialization_test

TRUE = np.array([2.0, -1.5, 0.5])
X = np.linspace(0.0, 2.0, 32)[:, None]
Y = TRUE[0] * np.exp(TRUE[1] * X) + TRUE[2]  # exact data: the residuals vanish at TRUE


def exp_curve(p, x):
    """y = a * exp(b * x) + c with the parameters (a, b, c) in one float64 weight."""
    return p[0] * keras.ops.exp(p[1] * x) + p[2]


def residuals_and_jacobian(p):
    """The curve's residuals and Jacobian, by hand."""
    e = np.exp(p[1] * X.ravel())
    r = p[0] * e + p[2] - Y.ravel()
    return r, np.stack([e, p[0] * X.ravel() * e, np.ones_like(e)], axis=1)


def test_config():
    lm = LevenbergMarquardt(
        max_iterations=5, damping=0.1, damping_up=3.0, damping_down=2.0, tolerance=1e-8,
        scaling="marquardt", max_damping=1e10,
    )  # fmt: skip
    revived = run_serialization_test(lm)
    assert revived.get_config() == lm.get_config()
    assert revived.get_config()["scaling"] == "marquardt" and revived.damping_down == 2.0


def test_correctness_of_the_step():
    r, J = residuals_and_jacobian(np.array([1.0, -0.5, 0.0]))
    g = J.T @ r
    lm = LevenbergMarquardt()
    # lambda = 0: the Gauss-Newton step solves J^T J delta = -J^T r.
    np.testing.assert_allclose(lm.compute_step(J, r, 0.0), np.linalg.solve(J.T @ J, -g), rtol=1e-8)
    # Levenberg: (J^T J + lambda I) delta = -J^T r.
    np.testing.assert_allclose(
        lm.compute_step(J, r, 0.5), np.linalg.solve(J.T @ J + 0.5 * np.eye(3), -g), rtol=1e-10
    )
    # Marquardt: (J^T J + lambda diag(J^T J)) delta = -J^T r.
    marquardt = LevenbergMarquardt(scaling="marquardt")
    D = np.diag(np.diag(J.T @ J))
    np.testing.assert_allclose(
        marquardt.compute_step(J, r, 0.5), np.linalg.solve(J.T @ J + 0.5 * D, -g), rtol=1e-10
    )


def test_huge_damping_gives_a_short_gradient_descent_step(param_model):
    start = [1.0, -0.5, 0.0]
    r, J = residuals_and_jacobian(np.array(start))
    g = J.T @ r
    lam = 1e8
    step = LevenbergMarquardt().compute_step(J, r, lam)
    cosine = float(step @ -g / (np.linalg.norm(step) * np.linalg.norm(g)))
    assert cosine > 0.999
    # The step is -g / lambda: tiny, and shrinking as lambda grows.
    np.testing.assert_allclose(np.linalg.norm(step), np.linalg.norm(g) / lam, rtol=1e-3)
    assert np.linalg.norm(step) < 1e-6
    # lambda = 1 (the notes' "gradient descent") is not: its step points elsewhere.
    one = LevenbergMarquardt().compute_step(J, r, 1.0)
    assert float(one @ -g / (np.linalg.norm(one) * np.linalg.norm(g))) < 0.99
    # Marquardt's scaling turns the limit into -g / (lambda diag(J^T J)) instead.
    scaled = LevenbergMarquardt(scaling="marquardt").compute_step(J, r, lam)
    np.testing.assert_allclose(scaled, -g / (lam * np.diag(J.T @ J)), rtol=1e-3)

    # Through minimize: one accepted step moves the model's parameters by the same step.
    model = param_model(start, exp_curve)
    result = LevenbergMarquardt(max_iterations=1, damping=lam).minimize(model, X, Y)
    assert result.history["accepted"] == [True, True]
    np.testing.assert_allclose(model.get_weights()[0] - start, step, rtol=1e-6, atol=1e-15)


@pytest.mark.parametrize("scaling", ["identity", "marquardt"])
def test_curve_fit_and_gauss_newton(param_model, scaling):
    start = [1.0, -0.5, 0.0]
    model = param_model(start, exp_curve)
    # A small initial damping, so that the first, nearly Gauss-Newton steps overshoot.
    result = LevenbergMarquardt(damping=1e-5, scaling=scaling).minimize(model, X, Y)
    np.testing.assert_allclose(model.get_weights()[0], TRUE, atol=1e-6, rtol=0)
    assert result.converged and result.loss < 1e-20 and result.iterations < 30, result
    # Damping control: an accepted step divides lambda by damping_down, a rejected one
    # multiplies it by damping_up; accepted steps lower the loss, rejected ones keep it.
    h = result.history
    assert not all(h["accepted"]), "expected at least one rejected step from this start"
    for i in range(1, len(h["loss"])):
        if h["accepted"][i]:
            np.testing.assert_allclose(h["damping"][i], h["damping"][i - 1] / 10.0, rtol=1e-12)
            assert h["loss"][i] < h["loss"][i - 1]
        else:
            np.testing.assert_allclose(h["damping"][i], h["damping"][i - 1] * 10.0, rtol=1e-12)
            assert h["loss"][i] == h["loss"][i - 1]
    assert h["jacobian_evaluations"][-1] == 1 + sum(h["accepted"][1:])

    if scaling == "identity":
        # Gauss-Newton (lambda = 0) from an easy start agrees with Levenberg-Marquardt ...
        model = param_model([1.8, -1.3, 0.4], exp_curve)
        gn = LevenbergMarquardt(damping=0.0).minimize(model, X, Y)
        np.testing.assert_allclose(model.get_weights()[0], TRUE, atol=1e-6, rtol=0)
        assert gn.converged and all(gn.history["accepted"])
        assert gn.history["damping"] == [0.0] * len(gn.history["loss"])
        # ... but from the start where LM succeeded, undamped steps overshoot and it fails.
        model = param_model(start, exp_curve)
        LevenbergMarquardt(damping=0.0, max_iterations=20).minimize(model, X, Y)
        assert np.max(np.abs(model.get_weights()[0] - TRUE)) > 0.1


def test_invalid_arguments(check_invalid_arguments):
    cases = [
        ({"tolerance": -1e-3}, "tolerance"),
        ({"damping": -1.0}, "damping"),
        ({"damping_up": 1.0}, "damping_up"),
        ({"damping_down": 0.5}, "damping_down"),
        ({"scaling": "diag"}, "scaling"),
        ({"max_damping": 0.0}, "max_damping"),
    ]
    check_invalid_arguments(LevenbergMarquardt, cases, line_search=False)
    r, J = residuals_and_jacobian(TRUE)
    with pytest.raises(ValueError, match="Received: jacobian.shape="):
        LevenbergMarquardt().compute_step(J[:5], r)
    with pytest.raises(ValueError, match="Received: damping="):
        LevenbergMarquardt().compute_step(J, r, -1.0)
