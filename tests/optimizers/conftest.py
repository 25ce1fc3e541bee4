"""Fixtures of the full-batch optimizer tests: models whose weights are the point to optimize."""

import keras
import numpy as np
import pytest


class Params(keras.layers.Layer):
    """One float64 weight vector `p`, started at `start`; the output is `fn(p, x)`."""

    def __init__(self, start, fn, **kwargs):
        super().__init__(dtype="float64", **kwargs)
        self.start = list(start)
        self.fn = fn

    def build(self, input_shape):
        # A float64 array: Constant would round a Python list through float32.
        start = np.asarray(self.start, "float64")
        self.p = self.add_weight(
            shape=start.shape, initializer=keras.initializers.Constant(start), name="p"
        )

    def call(self, x):
        return self.fn(self.p, x)


def point(p, x):
    """Outputs the weights themselves, so that a loss on the output is a function of them."""
    return keras.ops.zeros_like(x[:1, :1]) + p


@pytest.fixture
def param_model():
    """`make(start, fn=point)`: a model on float64 inputs `(batch, 1)` computing `fn(p, x)`."""

    def make(start, fn=point):
        inputs = keras.Input((1,), dtype="float64")
        return keras.Model(inputs, Params(start, fn)(inputs))

    return make


@pytest.fixture
def rosenbrock():
    """The Rosenbrock function of the first two outputs, minimum 0 at (1, 1)."""

    def loss(y_true, y_pred):
        a, b = y_pred[0, 0], y_pred[0, 1]
        return (1.0 - a) ** 2 + 100.0 * (b - a**2) ** 2

    return loss


# Invalid values of the arguments every full-batch optimizer takes, with the name each error
# must end with (`Received: name=...`).
COMMON_INVALID_ARGUMENTS = [
    ({"max_iterations": 0}, "max_iterations"),
    ({"tolerance": -1.0}, "tolerance"),
]
# ... and of those of the line-searched ones (`LBFGS`, `BFGS`, `Newton`).
LINE_SEARCH_INVALID_ARGUMENTS = [
    ({"line_search": "exact"}, "line_search"),
    ({"max_evaluations": 0}, "max_evaluations"),
    ({"max_line_search_steps": 1.5}, "max_line_search_steps"),
]


@pytest.fixture
def check_invalid_arguments():
    """`check(cls, cases, line_search=True)`: every case is rejected, naming its argument.

    The common cases (and, with `line_search`, the line-search cases) run before `cases`, a list
    of `(kwargs, name)`. With `line_search`, `minimize` must also reject a model without
    trainable variables.
    """

    def check(cls, cases, line_search=True):
        common = COMMON_INVALID_ARGUMENTS + (LINE_SEARCH_INVALID_ARGUMENTS if line_search else [])
        for kwargs, name in common + cases:
            with pytest.raises(ValueError, match=rf"Received: {name}="):
                cls(**kwargs)
        if line_search:
            model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, trainable=False)])
            with pytest.raises(ValueError, match="trainable variables"):
                cls().minimize(model, np.zeros((2, 1)), np.zeros((2, 1)))

    return check


@pytest.fixture
def fit_sine():
    """`fit(optimizer)`: minimizes the MSE of a float32 1-4-1 tanh MLP on 32 points of a sine.

    Returns the `OptimizationResult` and the full-batch MSE of the model after the call.
    """

    def fit(optimizer):
        x = np.linspace(-3, 3, 32, dtype="float32")[:, None]
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [keras.Input((1,)), keras.layers.Dense(4, "tanh"), keras.layers.Dense(1)]
        )
        result = optimizer.minimize(model, x, np.sin(x), loss="mse")
        final = float(np.mean((keras.ops.convert_to_numpy(model(x)) - np.sin(x)) ** 2))
        return result, final

    return fit


@pytest.fixture
def check_evaluation_budget(param_model, rosenbrock):
    """`check(optimizer)`: on Rosenbrock from (-1.2, 1), `max_evaluations` stops the run.

    The result must report exactly the budget, not converged, and the model must hold the
    reported final point.
    """

    def check(optimizer):
        budget = optimizer.max_evaluations
        model = param_model([-1.2, 1.0])
        dummy = np.zeros((1, 1))
        result = optimizer.minimize(model, dummy, dummy, loss=rosenbrock)
        assert result.evaluations == budget and result.history["evaluations"][-1] == budget
        assert result.message == "max_evaluations reached" and not result.converged
        final = float(rosenbrock(None, model(dummy)))
        np.testing.assert_allclose(final, result.loss, rtol=1e-12)

    return check


@pytest.fixture
def solve_rosenbrock(param_model, rosenbrock):
    """`solve(optimizer, monotone=True)`: from (-1.2, 1) it must reach the minimizer (1, 1).

    With `monotone`, the loss must also never go up. Returns the `OptimizationResult`.
    """

    def solve(optimizer, monotone=True):
        model = param_model([-1.2, 1.0])
        dummy = np.zeros((1, 1))
        result = optimizer.minimize(model, dummy, dummy, loss=rosenbrock)
        np.testing.assert_allclose(model.get_weights()[0], [1.0, 1.0], atol=1e-5)
        if monotone:
            assert np.all(np.diff(result.history["loss"]) <= 0)
        return result

    return solve
