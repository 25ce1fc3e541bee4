"""Newton: config, the exact one-step minimum, the autodiff Hessian, damping, Rosenbrock, models."""

import keras
import numpy as np
import pytest

from i2dl_keras.optimizers.newton import Newton
from i2dl_keras.testing import run_serialization_test

# A strictly convex quadratic 1/2 p^T A p - b^T p with minimizer A^{-1} b = (0.4, -0.6, 1.0).
A = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 2.0]])
B = A @ np.array([0.4, -0.6, 1.0])
DUMMY = np.zeros((1, 1))


def quadratic(y_true, y_pred):
    p = y_pred[0]
    return 0.5 * keras.ops.sum(p * keras.ops.matmul(A, p)) - keras.ops.sum(B * p)


def test_config():
    newton = Newton(
        max_iterations=7, damping=0.5, line_search=None, step_size=0.5, tolerance=1e-6,
        max_evaluations=9, max_line_search_steps=4,
    )  # fmt: skip
    revived = run_serialization_test(newton)
    assert revived.get_config() == {
        "max_iterations": 7,
        "damping": 0.5,
        "line_search": None,
        "step_size": 0.5,
        "tolerance": 1e-6,
        "max_evaluations": 9,
        "max_line_search_steps": 4,
    }


@pytest.mark.parametrize("line_search", [None, "armijo", "wolfe"])
def test_correctness_one_undamped_step_lands_on_the_minimum_of_a_quadratic(
    param_model, line_search
):
    model = param_model([3.0, 2.0, -1.0])
    result = Newton(line_search=line_search).minimize(model, DUMMY, DUMMY, loss=quadratic)
    np.testing.assert_allclose(model.get_weights()[0], [0.4, -0.6, 1.0], atol=1e-12)
    assert result.iterations == 1 and result.converged, result
    # min = -1/2 b^T A^{-1} b
    np.testing.assert_allclose(result.loss, -0.5 * B @ np.linalg.solve(A, B), rtol=1e-12)

    # Linear least squares through a Keras model: the MSE is quadratic in (kernel, bias), so
    # one step solves it; with an L2 kernel penalty (model.losses) it gives ridge regression.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = x @ np.array([[0.7], [-1.2], [2.0]]) + 0.4 + 0.1 * rng.normal(size=(40, 1))
    design = np.hstack([x, np.ones((40, 1))])
    keras.utils.set_random_seed(0)
    for l2 in (0.0, 0.05):
        regularizer = keras.regularizers.L2(l2) if l2 else None
        model = keras.Sequential(
            [
                keras.Input((3,), dtype="float64"),
                keras.layers.Dense(1, dtype="float64", kernel_regularizer=regularizer),
            ]
        )
        result = Newton(line_search=line_search, max_iterations=1).minimize(model, x, y)
        penalty = l2 * np.diag([1.0, 1.0, 1.0, 0.0])
        solution = np.linalg.solve(design.T @ design / 40 + penalty, design.T @ y.ravel() / 40)
        kernel, bias = model.get_weights()
        np.testing.assert_allclose(np.concatenate([kernel.ravel(), bias]), solution, atol=1e-10)
        assert result.iterations == 1


def test_first_step_on_rosenbrock_uses_the_exact_hessian(param_model, rosenbrock):
    # At (-1.2, 1), by hand: g = (-215.6, -88), H = [[1330, 480], [480, 200]], so the Newton
    # step is -H^{-1} g = (880, 13552) / 35600 and the new point is (-1.1752809, 1.3806742).
    g = np.array([-215.6, -88.0])
    h = np.array([[1330.0, 480.0], [480.0, 200.0]])
    expected = np.array([-1.2, 1.0]) - np.linalg.solve(h, g)
    np.testing.assert_allclose(expected, [-1.1752809, 1.3806742], atol=1e-7)
    model = param_model([-1.2, 1.0])
    result = Newton(line_search=None, max_iterations=1).minimize(
        model, DUMMY, DUMMY, loss=rosenbrock
    )
    np.testing.assert_allclose(model.get_weights()[0], expected, rtol=1e-12)
    assert result.history["evaluations"] == [1, 2]
    np.testing.assert_allclose(result.history["loss"][0], 24.2, rtol=1e-12)


@pytest.mark.parametrize("line_search", ["armijo", "wolfe"])
def test_rosenbrock(solve_rosenbrock, line_search):
    result = solve_rosenbrock(Newton(line_search=line_search))
    assert result.converged and result.iterations <= 30 and result.evaluations <= 40, result
    # Pure Newton steps without a line search also get there from this start.
    solve_rosenbrock(Newton(line_search=None), monotone=False)


def test_damping(param_model):
    g = np.array([1.0, -2.0, 0.5])
    newton = Newton(damping=0.5)
    np.testing.assert_allclose(
        newton.compute_step(g, A), np.linalg.solve(A + 0.5 * np.eye(3), -g), rtol=1e-12
    )
    np.testing.assert_allclose(Newton().compute_step(g, A), np.linalg.solve(A, -g), rtol=1e-12)
    # A huge lambda gives a short gradient-descent step, -g / lambda.
    np.testing.assert_allclose(newton.compute_step(g, A, 1e8), -g / 1e8, rtol=1e-6)

    # Through minimize: one damped step of fixed length from p0 is -(A + lambda I)^{-1} g(p0),
    # and no longer lands on the minimum.
    start = np.array([3.0, 2.0, -1.0])
    model = param_model(start)
    Newton(damping=2.0, line_search=None, max_iterations=1).minimize(
        model, DUMMY, DUMMY, loss=quadratic
    )
    expected = start - np.linalg.solve(A + 2.0 * np.eye(3), A @ start - B)
    np.testing.assert_allclose(model.get_weights()[0], expected, rtol=1e-12)
    assert np.max(np.abs(expected - [0.4, -0.6, 1.0])) > 0.1
    # A fixed step_size scales the step.
    model = param_model(start)
    Newton(line_search=None, step_size=0.25, max_iterations=1).minimize(
        model, DUMMY, DUMMY, loss=quadratic
    )
    np.testing.assert_allclose(
        model.get_weights()[0], start + 0.25 * ([0.4, -0.6, 1.0] - start), rtol=1e-12
    )


def test_indefinite_hessian_is_shifted_to_a_descent_direction(param_model, rosenbrock):
    h = np.array([[-2.0, 1.0], [1.0, 3.0]])  # eigenvalues -2.19 and 3.19
    g = np.array([1.0, 0.0])
    assert g @ np.linalg.solve(h, -g) > 0  # the plain Newton step would go uphill
    d = Newton().compute_step(g, h)
    assert g @ d < 0
    # d solves (H + tau I) d = -g for one tau, and that shifted matrix is positive definite.
    tau = -float((g + h @ d) @ d) / float(d @ d)
    np.testing.assert_allclose((h + tau * np.eye(2)) @ d, -g, atol=1e-12)
    assert np.min(np.linalg.eigvalsh(h + tau * np.eye(2))) > 0
    # Rosenbrock's Hessian is indefinite at (0.5, 1); the line-searched steps still descend.
    model = param_model([0.5, 1.0])
    result = Newton().minimize(model, DUMMY, DUMMY, loss=rosenbrock)
    np.testing.assert_allclose(model.get_weights()[0], [1.0, 1.0], atol=1e-5)
    assert np.all(np.diff(result.history["loss"]) <= 0)


def test_fits_small_keras_models(fit_sine):
    # Logistic regression (convex): at the optimum, the NumPy gradient X^T (sigmoid(z) - y) / N
    # of the mean cross-entropy vanishes.
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 2))
    y = (x @ [1.5, -1.0] + 0.3 + rng.normal(size=60) > 0).astype("float64")[:, None]
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((2,), dtype="float64"), keras.layers.Dense(1, dtype="float64")]
    )
    # A Keras Loss computes in its own dtype (float32 unless told otherwise).
    loss = keras.losses.BinaryCrossentropy(from_logits=True, dtype="float64")
    result = Newton(tolerance=1e-14).minimize(model, x, y, loss=loss)
    kernel, bias = model.get_weights()
    p = 1.0 / (1.0 + np.exp(-(x @ kernel + bias)))
    design = np.hstack([x, np.ones((60, 1))])
    assert np.max(np.abs(design.T @ (p - y) / 60)) < 1e-9
    np.testing.assert_allclose(
        result.loss, np.mean(-y * np.log(p) - (1 - y) * np.log(1 - p)), rtol=1e-10
    )
    assert result.converged and result.iterations <= 10, result

    # A float32 1-4-1 tanh MLP (13 parameters) on a sine.
    result, final = fit_sine(Newton(max_iterations=30))
    assert result.history["loss"][0] > 0.5 and result.loss < 0.01, result
    np.testing.assert_allclose(final, result.loss, rtol=1e-3)  # float32 rounding


def test_evaluation_budget_is_respected(check_evaluation_budget):
    check_evaluation_budget(Newton(max_evaluations=5))


def test_invalid_arguments(check_invalid_arguments):
    check_invalid_arguments(
        Newton, [({"damping": -1.0}, "damping"), ({"step_size": 0.0}, "step_size")]
    )
    with pytest.raises(ValueError, match=r"Received: hessian.shape=\(2, 2\)"):
        Newton().compute_step(np.ones(3), np.eye(2))
    with pytest.raises(ValueError, match="Received: damping="):
        Newton().compute_step(np.ones(2), np.eye(2), -1.0)
