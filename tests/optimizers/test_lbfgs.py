"""LBFGS: config, exact minimizers (least squares, Rosenbrock), budget, and L-BFGS vs Adam."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras.optimizers import LBFGS
from i2dl_keras.testing import run_serialization_test


def test_config():
    lbfgs = LBFGS(
        max_iterations=7, history_size=3, tolerance=1e-6, line_search="wolfe", max_evaluations=9
    )
    revived = run_serialization_test(lbfgs)
    assert revived.get_config() == {
        "max_iterations": 7,
        "history_size": 3,
        "tolerance": 1e-6,
        "line_search": "wolfe",
        "max_evaluations": 9,
        "max_line_search_steps": 20,
    }


@pytest.mark.parametrize("line_search", ["armijo", "wolfe"])
def test_correctness_least_squares_and_rosenbrock(solve_rosenbrock, line_search):
    # Linear least squares: the minimizer is NumPy's lstsq solution.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = x @ np.array([[0.7], [-1.2], [2.0]]) + 0.4 + 0.1 * rng.normal(size=(40, 1))
    model = keras.Sequential(
        [keras.Input((3,), dtype="float64"), keras.layers.Dense(1, dtype="float64")]
    )
    result = LBFGS(max_iterations=50, line_search=line_search).minimize(model, x, y, loss="mse")
    design = np.hstack([x, np.ones((40, 1))])
    solution = np.linalg.lstsq(design, y, rcond=None)[0].ravel()
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(np.concatenate([kernel.ravel(), bias]), solution, atol=1e-6)
    np.testing.assert_allclose(
        result.loss, np.mean((design @ solution - y.ravel()) ** 2), rtol=1e-9
    )
    assert result.converged and result.iterations <= 20
    assert (
        len(result.history["loss"]) == len(result.history["evaluations"]) == result.iterations + 1
    )
    # Every accepted step satisfies sufficient decrease, so the loss never goes up.
    assert np.all(np.diff(result.history["loss"]) <= 0)

    # model.losses are part of the objective: an L2 kernel penalty gives the ridge solution of
    # (X^T X / N + l2 diag(1, 1, 1, 0)) theta = X^T y / N.
    l2 = 0.05
    model = keras.Sequential(
        [
            keras.Input((3,), dtype="float64"),
            keras.layers.Dense(1, dtype="float64", kernel_regularizer=keras.regularizers.L2(l2)),
        ]
    )
    LBFGS(max_iterations=50, line_search=line_search).minimize(model, x, y, loss="mse")
    penalty = l2 * np.diag([1.0, 1.0, 1.0, 0.0])
    ridge = np.linalg.solve(design.T @ design / 40 + penalty, design.T @ y.ravel() / 40)
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(np.concatenate([kernel.ravel(), bias]), ridge, atol=1e-6)
    assert np.max(np.abs(ridge - solution)) > 1e-2  # the penalty does move the minimizer

    # Rosenbrock from the classic start (-1.2, 1): minimizer (1, 1).
    result = solve_rosenbrock(LBFGS(max_iterations=200, line_search=line_search))
    assert result.converged, result.message
    assert result.evaluations < 150


def test_evaluation_budget_is_respected():
    x = np.linspace(-3, 3, 64, dtype="float32")[:, None]
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(8, "tanh"), keras.layers.Dense(1)]
    )
    result = LBFGS(max_iterations=1000, max_evaluations=25).minimize(model, x, np.sin(x))
    assert result.evaluations == 25 and result.history["evaluations"][-1] == 25
    assert result.message == "max_evaluations reached" and not result.converged
    # The model holds the reported final point.
    final = float(np.mean((keras.ops.convert_to_numpy(model(x)) - np.sin(x)) ** 2))
    np.testing.assert_allclose(final, result.loss, rtol=1e-5)


def test_lbfgs_beats_tuned_adam_on_the_same_gradient_evaluations():
    """The acceptance test: a 1-16-1 tanh MLP on 64 points of a sine, full batch.

    Both optimizers get N = 150 loss-and-gradient evaluations: L-BFGS counts every line-search
    evaluation (the starting point included); Adam takes 150 full-batch steps. Adam's learning
    rate is tuned on the same budget over {0.003, 0.01, 0.03, 0.1, 0.3} and its best final loss
    is used (at seed 0 the best is 0.3, loss ~1.4e-3; L-BFGS reaches ~2e-4).
    """
    n_evaluations = 150
    x = np.linspace(-3, 3, 64, dtype="float32")[:, None]
    y = np.sin(x)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(16, "tanh"), keras.layers.Dense(1)]
    )
    initial = model.get_weights()

    def full_batch_mse():
        return float(np.mean((keras.ops.convert_to_numpy(model(x)) - y) ** 2))

    lbfgs_losses = {}
    for line_search in ("armijo", "wolfe"):
        model.set_weights(initial)
        result = LBFGS(
            max_iterations=1000, max_evaluations=n_evaluations, line_search=line_search
        ).minimize(model, x, y, loss="mse")
        assert result.evaluations == n_evaluations
        lbfgs_losses[line_search] = full_batch_mse()
        np.testing.assert_allclose(lbfgs_losses[line_search], result.loss, rtol=1e-5)

    adam = keras.optimizers.Adam(0.001)
    x_t, y_t = tf.constant(x), tf.constant(y)

    @tf.function
    def adam_step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x_t) - y_t))
        adam.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)

    adam_losses = {}
    for learning_rate in (0.003, 0.01, 0.03, 0.1, 0.3):
        model.set_weights(initial)
        if adam.built:  # a fresh Adam: zero moments and step count, new learning rate
            for variable in adam.variables:
                variable.assign(np.zeros(variable.shape, variable.dtype))
        adam.learning_rate = learning_rate
        for _ in range(n_evaluations):
            adam_step()
        adam_losses[learning_rate] = full_batch_mse()
    best_adam = min(adam_losses.values())
    assert np.isfinite(best_adam) and best_adam < 0.05, adam_losses  # Adam did train
    for line_search, loss in lbfgs_losses.items():
        assert loss < best_adam / 3, (line_search, loss, adam_losses)


def test_invalid_arguments(check_invalid_arguments):
    check_invalid_arguments(LBFGS, [({"history_size": 0}, "history_size")])
