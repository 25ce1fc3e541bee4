"""BFGS: config, the update formula, quadratic termination, Rosenbrock, and Keras models."""

import keras
import numpy as np
import pytest

from i2dl_keras.optimizers.bfgs import BFGS
from i2dl_keras.testing import run_serialization_test

DUMMY = np.zeros((1, 1))


def random_quadratic(n, seed):
    """A strictly convex quadratic 1/2 p^T A p - b^T p, its A and its minimizer A^{-1} b."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, n))
    a = q @ q.T + 0.5 * np.eye(n)
    b = rng.normal(size=n)

    def loss(y_true, y_pred):
        p = y_pred[0]
        return 0.5 * keras.ops.sum(p * keras.ops.matmul(a, p)) - keras.ops.sum(b * p)

    return loss, a, np.linalg.solve(a, b)


def test_config():
    bfgs = BFGS(
        max_iterations=7, tolerance=1e-6, line_search="armijo", max_evaluations=9,
        max_line_search_steps=4, c1=1e-3, c2=0.5,
    )  # fmt: skip
    revived = run_serialization_test(bfgs)
    assert revived.get_config() == {
        "max_iterations": 7,
        "tolerance": 1e-6,
        "line_search": "armijo",
        "max_evaluations": 9,
        "max_line_search_steps": 4,
        "c1": 1e-3,
        "c2": 0.5,
    }


def test_correctness_of_the_update_formula():
    # By hand, H = I, s = (1, 1), y = (1, 2): rho = 1/3, V = I - rho s y^T = [[2, -2], [-1, 1]] / 3,
    # V V^T = [[8, -4], [-4, 2]] / 9, plus rho s s^T = [[3, 3], [3, 3]] / 9.
    updated = BFGS.update_inverse_hessian(np.eye(2), [1.0, 1.0], [1.0, 2.0])
    np.testing.assert_allclose(updated, np.array([[11.0, -1.0], [-1.0, 5.0]]) / 9, rtol=1e-14)
    np.testing.assert_allclose(updated @ [1.0, 2.0], [1.0, 1.0], rtol=1e-14)  # H y = s

    # In general: the product form, the secant equation, symmetry, positive definiteness.
    rng = np.random.default_rng(0)
    q = rng.normal(size=(5, 5))
    h = q @ q.T + np.eye(5)
    s, y = rng.normal(size=5), rng.normal(size=5)
    y = y if y @ s > 0 else -y
    rho = 1.0 / (y @ s)
    v = np.eye(5) - rho * np.outer(s, y)
    updated = BFGS.update_inverse_hessian(h, s, y)
    np.testing.assert_allclose(updated, v @ h @ v.T + rho * np.outer(s, s), rtol=1e-10)
    np.testing.assert_allclose(updated @ y, s, rtol=1e-10)
    np.testing.assert_allclose(updated, updated.T, rtol=1e-12)
    assert np.min(np.linalg.eigvalsh(updated)) > 0


def test_exact_line_searches_on_a_quadratic_give_the_inverse_hessian_in_n_steps():
    # The textbook property, in NumPy: with exact line searches on 1/2 p^T A p - b^T p, BFGS
    # reaches the minimizer in n steps and H_n = A^{-1} (the steps are A-conjugate and
    # H_n y_j = s_j for every j < n).
    n = 5
    _, a, minimizer = random_quadratic(n, seed=0)
    b = a @ minimizer
    p, h = np.zeros(n), np.eye(n)
    g = a @ p - b
    for _ in range(n):
        d = -h @ g
        t = -(g @ d) / (d @ a @ d)  # the exact line search on a quadratic
        s = t * d
        g_new = a @ (p + s) - b
        h = BFGS.update_inverse_hessian(h, s, g_new - g)
        p, g = p + s, g_new
    np.testing.assert_allclose(p, minimizer, atol=1e-10)
    np.testing.assert_allclose(h, np.linalg.inv(a), atol=1e-8)


def test_quadratic_termination_through_minimize(param_model):
    # A nearly exact Wolfe search (small c2) makes minimize stop after at most n steps; the
    # default, loose c2 = 0.9 needs more.
    n = 5
    loss, _, minimizer = random_quadratic(n, seed=0)
    model = param_model(np.zeros(n))
    result = BFGS(c2=1e-3, tolerance=1e-10).minimize(model, DUMMY, DUMMY, loss=loss)
    np.testing.assert_allclose(model.get_weights()[0], minimizer, atol=1e-9)
    assert result.converged and result.iterations <= n, result
    model = param_model(np.zeros(n))
    loose = BFGS(tolerance=1e-10).minimize(model, DUMMY, DUMMY, loss=loss)
    np.testing.assert_allclose(model.get_weights()[0], minimizer, atol=1e-8)
    assert loose.iterations > n + 1, loose


@pytest.mark.parametrize("line_search", ["wolfe", "armijo"])
def test_rosenbrock(solve_rosenbrock, line_search):
    result = solve_rosenbrock(BFGS(line_search=line_search))
    assert result.converged and result.iterations <= 60 and result.evaluations <= 80, result


def test_fits_small_keras_models(fit_sine):
    # Linear least squares: the minimizer is NumPy's lstsq solution.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = x @ np.array([[0.7], [-1.2], [2.0]]) + 0.4 + 0.1 * rng.normal(size=(40, 1))
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((3,), dtype="float64"), keras.layers.Dense(1, dtype="float64")]
    )
    result = BFGS(tolerance=1e-12).minimize(model, x, y, loss="mse")
    design = np.hstack([x, np.ones((40, 1))])
    solution = np.linalg.lstsq(design, y, rcond=None)[0].ravel()
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(np.concatenate([kernel.ravel(), bias]), solution, atol=1e-6)
    assert result.converged and result.iterations <= 12, result

    # A float32 1-4-1 tanh MLP (13 parameters) on a sine.
    result, final = fit_sine(BFGS(max_iterations=100))
    assert result.history["loss"][0] > 0.5 and result.loss < 1e-3, result
    np.testing.assert_allclose(final, result.loss, rtol=1e-3)  # float32 rounding


def test_evaluation_budget_is_respected(check_evaluation_budget):
    check_evaluation_budget(BFGS(max_evaluations=12))


def test_invalid_arguments(check_invalid_arguments):
    cases = [
        ({"line_search": None}, "line_search"),
        ({"c1": 0.0}, "c1"),
        ({"c1": 1.0, "c2": 1.0}, "c1"),
        ({"c1": 0.5, "c2": 0.1}, "c2"),
        ({"c2": 1.0}, "c2"),
    ]
    check_invalid_arguments(BFGS, cases)
    with pytest.raises(ValueError, match=r"Received: y\^T s=-1"):
        BFGS.update_inverse_hessian(np.eye(2), [1.0, 0.0], [-1.0, 0.0])
    with pytest.raises(ValueError, match=r"Received: inverse_hessian.shape=\(3, 3\)"):
        BFGS.update_inverse_hessian(np.eye(3), [1.0, 0.0], [1.0, 0.0])
