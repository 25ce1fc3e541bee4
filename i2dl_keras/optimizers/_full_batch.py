"""Shared machinery of the full-batch optimizers: a flat parameter vector and line searches.

`FlatProblem` views a model's trainable variables as one float64 vector and computes the loss,
gradient, Hessian, residuals and Jacobian at a point. `armijo_search` and `wolfe_search` are the
line searches, and `LineSearchDescent` is the loop of the line-searched methods (`LBFGS`, `BFGS`,
`Newton`): a subclass supplies the search direction and its curvature update. The outer
algorithms run in float64 NumPy, which is cheap for the small models they are meant for; the
derivatives are computed by TensorFlow (`tf.GradientTape` inside `tf.function`) in the model's
own dtype. These optimizers are therefore TensorFlow-only.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from i2dl_keras.optimizers.optimization_result import OptimizationResult

LINE_SEARCHES = ("armijo", "wolfe")

# Default sufficient-decrease and curvature constants of the line search (Nocedal & Wright, ch. 3).
C1 = 1e-4
C2 = 0.9


class EvaluationBudgetExhausted(Exception):
    """Raised by `FlatProblem` when `max_evaluations` loss evaluations have been spent."""


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}")
    return int(value)


def check_float(name: str, value: Any, minimum: float, strict: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.floating))
    if ok:
        ok = float(value) > minimum if strict else float(value) >= minimum
        ok = ok and np.isfinite(float(value))
    if not ok:
        relation = ">" if strict else ">="
        raise ValueError(
            f"`{name}` must be a finite number {relation} {minimum}. Received: {name}={value!r}"
        )
    return float(value)


def resolve_loss(loss: Any):
    """A callable `(y_true, y_pred) -> scalar` from a Keras loss identifier, object or function."""
    if isinstance(loss, keras.losses.Loss):
        return loss
    fn = keras.losses.get(loss) if isinstance(loss, (str, dict)) else loss
    if not callable(fn):
        raise ValueError(
            f"`loss` must be a Keras loss identifier, a Loss or a callable. Received: loss={loss!r}"
        )
    if isinstance(fn, keras.losses.Loss):
        return fn

    def mean_loss(y_true, y_pred):
        return keras.ops.mean(fn(y_true, y_pred))

    return mean_loss


class FlatProblem:
    """A model, full-batch data and the model's trainable variables as one float64 vector.

    Args:
        model: A built Keras model (it is built here if it is not).
        x: Inputs: an array or a list of arrays.
        y: Targets.
        max_evaluations: Evaluation budget; exceeding it raises `EvaluationBudgetExhausted`.
    """

    def __init__(self, model: keras.Model, x: Any, y: Any, max_evaluations: int | None = None):
        if not isinstance(model, keras.Model):
            raise ValueError(f"`model` must be a keras.Model. Received: model={model!r}")
        if not model.built:
            model(x)
        self.model = model
        self.variables = list(model.trainable_variables)
        if not self.variables:
            raise ValueError(
                "`model` must have trainable variables. "
                f"Received: model with {len(model.trainable_variables)} trainable variables"
            )
        dtypes = {v.dtype for v in self.variables}
        if len(dtypes) != 1:
            raise ValueError(
                "`model` must keep all trainable variables in one dtype. "
                f"Received: dtypes={sorted(dtypes)}"
            )
        self.dtype = tf.as_dtype(dtypes.pop())
        self.shapes = [tuple(v.shape) for v in self.variables]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.size = sum(self.sizes)
        self.x = keras.tree.map_structure(lambda a: tf.convert_to_tensor(a), x)
        self.y = tf.cast(tf.convert_to_tensor(y), self.dtype)
        self.max_evaluations = max_evaluations
        self.evaluations = 0
        self.jacobian_evaluations = 0
        self.hessian_evaluations = 0
        self._value_and_grad_fn = None
        self._value_grad_and_hessian_fn = None
        self._residuals_fn = None
        self._residuals_and_jacobian_fn = None

    # Vector <-> variables ----------------------------------------------------------------------

    def get_flat(self) -> np.ndarray:
        return np.concatenate(
            [np.asarray(keras.ops.convert_to_numpy(v), np.float64).ravel() for v in self.variables]
        )

    def set_flat(self, theta: np.ndarray) -> None:
        self._assign(tf.constant(theta, self.dtype))

    def _assign(self, flat):
        pieces = tf.split(flat, self.sizes)
        for variable, piece, shape in zip(self.variables, pieces, self.shapes):
            variable.assign(tf.reshape(piece, shape))

    def _flatten(self, tensors):
        return tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)

    def _count(self) -> None:
        if self.max_evaluations is not None and self.evaluations >= self.max_evaluations:
            raise EvaluationBudgetExhausted
        self.evaluations += 1

    # Loss, gradient and Hessian -----------------------------------------------------------------

    def _objective(self, loss_fn):
        prediction = self.model(self.x, training=False)
        value = tf.cast(loss_fn(self.y, prediction), self.dtype)
        if self.model.losses:
            value += tf.cast(tf.add_n(self.model.losses), self.dtype)
        return value

    def _flat_gradient(self, loss_fn):
        with tf.GradientTape() as tape:
            value = self._objective(loss_fn)
        grads = tape.gradient(
            value, self.variables, unconnected_gradients=tf.UnconnectedGradients.ZERO
        )
        return value, self._flatten(grads)

    def value_and_grad(self, theta: np.ndarray, loss: Any) -> tuple[float, np.ndarray]:
        """The full-batch loss (plus `model.losses`) and its gradient at `theta`, in float64."""
        if self._value_and_grad_fn is None:
            loss_fn = resolve_loss(loss)

            @tf.function(reduce_retracing=True)
            def value_and_grad_fn(flat):
                self._assign(flat)
                return self._flat_gradient(loss_fn)

            self._value_and_grad_fn = value_and_grad_fn
        self._count()
        value, grad = self._value_and_grad_fn(tf.constant(theta, self.dtype))
        return float(value.numpy()), np.asarray(grad.numpy(), np.float64)

    def value_grad_and_hessian(
        self, theta: np.ndarray, loss: Any
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """The loss, its gradient and its symmetric `(n, n)` Hessian at `theta`, in float64.

        The Hessian is the Jacobian of the gradient (forward-over-reverse with two tapes); it
        counts as one evaluation.
        """
        if self._value_grad_and_hessian_fn is None:
            loss_fn = resolve_loss(loss)

            @tf.function(reduce_retracing=True)
            def value_grad_and_hessian_fn(flat):
                self._assign(flat)
                with tf.GradientTape() as tape:
                    value, grad = self._flat_gradient(loss_fn)
                blocks = tape.jacobian(
                    grad, self.variables, unconnected_gradients=tf.UnconnectedGradients.ZERO
                )
                hessian = tf.concat([tf.reshape(b, [self.size, -1]) for b in blocks], axis=1)
                return value, grad, hessian

            self._value_grad_and_hessian_fn = value_grad_and_hessian_fn
        self._count()
        self.hessian_evaluations += 1
        value, grad, hessian = self._value_grad_and_hessian_fn(tf.constant(theta, self.dtype))
        hessian = np.asarray(hessian.numpy(), np.float64)
        return (
            float(value.numpy()),
            np.asarray(grad.numpy(), np.float64),
            0.5 * (hessian + hessian.T),
        )

    # Residuals and Jacobian ----------------------------------------------------------------------

    def _residuals(self):
        prediction = tf.cast(self.model(self.x, training=False), self.dtype)
        return tf.reshape(prediction - self.y, [-1])

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        """The flattened residuals `model(x) - y` at `theta`, in float64."""
        if self._residuals_fn is None:

            @tf.function(reduce_retracing=True)
            def residuals_fn(flat):
                self._assign(flat)
                return self._residuals()

            self._residuals_fn = residuals_fn
        self._count()
        return np.asarray(self._residuals_fn(tf.constant(theta, self.dtype)).numpy(), np.float64)

    def residuals_and_jacobian(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Residuals `(m,)` and their Jacobian `(m, n)` with respect to the flat parameters."""
        if self._residuals_and_jacobian_fn is None:

            @tf.function(reduce_retracing=True)
            def residuals_and_jacobian_fn(flat):
                self._assign(flat)
                with tf.GradientTape() as tape:
                    residuals = self._residuals()
                blocks = tape.jacobian(
                    residuals, self.variables, unconnected_gradients=tf.UnconnectedGradients.ZERO
                )
                rows = tf.shape(residuals)[0]
                jacobian = tf.concat([tf.reshape(b, [rows, -1]) for b in blocks], axis=1)
                return residuals, jacobian

            self._residuals_and_jacobian_fn = residuals_and_jacobian_fn
        self._count()
        self.jacobian_evaluations += 1
        residuals, jacobian = self._residuals_and_jacobian_fn(tf.constant(theta, self.dtype))
        return (
            np.asarray(residuals.numpy(), np.float64),
            np.asarray(jacobian.numpy(), np.float64),
        )


# Line searches ---------------------------------------------------------------------------------


class Trial:
    """One evaluated point of a line search.

    It holds the step length `t`, the loss `f`, the gradient `g`, the slope `g^T d` along the
    direction, and whatever else the evaluation returned in `extra` (the Hessian, for `Newton`).
    """

    __slots__ = ("t", "f", "g", "slope", "extra")

    def __init__(self, t: float, f: float, g: np.ndarray | None, slope: float, extra: Any = None):
        self.t, self.f, self.g, self.slope, self.extra = t, f, g, slope, extra


Evaluate = Callable[[np.ndarray], tuple[float, np.ndarray, Any]]


class SearchLine:
    """The ray `theta + t d` a line search runs along; the start has loss `f0`, slope `slope0`."""

    __slots__ = ("evaluate", "theta", "f0", "slope0", "d")

    def __init__(
        self, evaluate: Evaluate, theta: np.ndarray, f0: float, slope0: float, d: np.ndarray
    ):
        self.evaluate, self.theta, self.f0, self.slope0, self.d = evaluate, theta, f0, slope0, d

    def trial(self, t: float) -> Trial:
        """Evaluates the point at step length `t`."""
        f, g, extra = self.evaluate(self.theta + t * self.d)
        return Trial(t, f, g, float(g @ self.d) if np.isfinite(f) else np.nan, extra)


def armijo_search(line: SearchLine, t: float, max_steps: int, c1: float = C1) -> Trial | None:
    """Backtracking with safeguarded quadratic interpolation until sufficient decrease.

    Returns the first trial with `f(theta + t d) <= f0 + c1 t slope0`, or `None` after
    `max_steps` evaluations without one.
    """
    f0, slope0 = line.f0, line.slope0
    for _ in range(max_steps):
        trial = line.trial(t)
        if np.isfinite(trial.f) and trial.f <= f0 + c1 * t * slope0:
            return trial
        if np.isfinite(trial.f):
            # Minimizer of the quadratic through f0, slope0 and f(t), kept in [0.1t, 0.5t].
            denominator = 2.0 * (trial.f - f0 - slope0 * t)
            t_new = -slope0 * t * t / denominator if denominator > 0 else 0.5 * t
            t = float(np.clip(t_new, 0.1 * t, 0.5 * t))
        else:
            t *= 0.1
    return None


def wolfe_search(
    line: SearchLine, t: float, max_steps: int, c1: float = C1, c2: float = C2
) -> Trial | None:
    """Bracketing search for the strong Wolfe conditions (Nocedal & Wright, Alg. 3.5).

    Returns a trial with sufficient decrease and `|slope(t)| <= c2 |slope0|`; when `max_steps`
    evaluations run out, the best trial with sufficient decrease, or `None` if there is none.
    """
    f0, slope0 = line.f0, line.slope0
    previous = Trial(0.0, f0, None, slope0)
    steps = 0
    while steps < max_steps:
        current = line.trial(t)
        steps += 1
        f = current.f
        if not np.isfinite(f) or f > f0 + c1 * t * slope0 or (steps > 1 and f >= previous.f):
            return _zoom(line, previous, current, steps, max_steps, c1, c2)
        if abs(current.slope) <= -c2 * slope0:
            return current
        if current.slope >= 0.0:
            return _zoom(line, current, previous, steps, max_steps, c1, c2)
        previous = current
        t *= 2.0
    return previous if previous.t > 0.0 else None


def _zoom(line, lo, hi, steps, max_steps, c1, c2):
    """Shrinks the bracket [lo, hi] to a strong-Wolfe point (Nocedal & Wright, Alg. 3.6)."""
    f0, slope0 = line.f0, line.slope0
    while steps < max_steps:
        t = _cubic_minimizer(lo, hi)
        current = line.trial(t)
        steps += 1
        if not np.isfinite(current.f) or current.f > f0 + c1 * t * slope0 or current.f >= lo.f:
            hi = current
            continue
        if abs(current.slope) <= -c2 * slope0:
            return current
        if current.slope * (hi.t - lo.t) >= 0.0:
            hi = lo
        lo = current
    # Out of steps: `lo` satisfies sufficient decrease whenever it is not the start point.
    return lo if lo.t > 0.0 else None


def _cubic_minimizer(lo: Trial, hi: Trial) -> float:
    """Minimizer of the cubic interpolating both ends, else the bisection point."""
    a, b = lo.t, hi.t
    width = abs(b - a)
    middle = 0.5 * (a + b)
    if not (np.isfinite(hi.f) and np.isfinite(hi.slope)):
        return middle
    d1 = lo.slope + hi.slope - 3.0 * (lo.f - hi.f) / (a - b)
    radicand = d1 * d1 - lo.slope * hi.slope
    if radicand < 0.0:
        return middle
    d2 = np.sign(b - a) * np.sqrt(radicand)
    denominator = hi.slope - lo.slope + 2.0 * d2
    if denominator == 0.0:
        return middle
    t = b - (b - a) * (hi.slope + d2 - d1) / denominator
    # Stay well inside the bracket, so that it shrinks every step.
    low, high = min(a, b) + 0.1 * width, max(a, b) - 0.1 * width
    if not np.isfinite(t) or t < low or t > high:
        return middle
    return float(t)


def check_line_search(value: Any, allow_none: bool = False) -> str | None:
    choices = LINE_SEARCHES + ((None,) if allow_none else ())
    if value not in choices:
        raise ValueError(f"`line_search` must be one of {choices}. Received: line_search={value!r}")
    return value


def check_optional_positive_int(name: str, value: Any) -> int | None:
    return None if value is None else check_positive_int(name, value)


# The optimizers' common base and the line-searched descent loop ------------------------------


class FullBatchOptimizer:
    """The config of a full-batch optimizer: its constructor arguments, stored by name.

    A subclass stores every constructor argument as an attribute of the same name, so that
    `get_config` can read them back in the constructor's order and `from_config` can pass them
    on.
    """

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, for `from_config`."""
        return {name: getattr(self, name) for name in inspect.signature(type(self)).parameters}

    @classmethod
    def from_config(cls, config: dict[str, Any]):
        """Creates the optimizer from `get_config()`'s output."""
        return cls(**config)


class LineSearchDescent(FullBatchOptimizer):
    """The loop of `LBFGS`, `BFGS` and `Newton`: direction, line search, curvature update.

    The constructor validates and stores the loop's arguments (`line_search` is `"armijo"`,
    `"wolfe"`, or `None` for a fixed step where `allow_fixed_step`); a subclass calls it, adds
    its own arguments (and may override `c1`, `c2`), and implements the hooks `_start`,
    `_direction`, `_first_step` and `_update`; `_evaluate` computes the loss and gradient (plus
    an extra, such as the Hessian) at a point.
    """

    c1 = C1
    c2 = C2

    def __init__(
        self,
        max_iterations: int,
        tolerance: float,
        line_search: str | None,
        max_evaluations: int | None,
        max_line_search_steps: int,
        allow_fixed_step: bool = False,
    ) -> None:
        self.max_iterations = check_positive_int("max_iterations", max_iterations)
        self.tolerance = check_float("tolerance", tolerance, 0.0)
        self.line_search = check_line_search(line_search, allow_none=allow_fixed_step)
        self.max_evaluations = check_optional_positive_int("max_evaluations", max_evaluations)
        self.max_line_search_steps = check_positive_int(
            "max_line_search_steps", max_line_search_steps
        )

    # Hooks ----------------------------------------------------------------------------------------

    def _evaluate(self, problem: FlatProblem, theta: np.ndarray, loss: Any):
        value, grad = problem.value_and_grad(theta, loss)
        return value, grad, None

    def _start(self) -> Any:
        """Fresh per-call state (the curvature memory)."""
        raise NotImplementedError

    def _direction(self, state: Any, g: np.ndarray, extra: Any) -> np.ndarray:
        raise NotImplementedError

    def _restart(self, state: Any) -> Any:
        """State after a direction that was not a descent direction (a fresh start).

        The loop takes a steepest-descent step instead.
        """
        return self._start()

    def _first_step(self, state: Any, g: np.ndarray) -> float:
        raise NotImplementedError

    def _update(self, state: Any, s: np.ndarray, y_change: np.ndarray, extra: Any) -> Any:
        """State after an accepted step `s` that changed the gradient by `y_change`."""
        return state

    # The loop -------------------------------------------------------------------------------------

    def minimize(self, model: keras.Model, x: Any, y: Any, loss: Any = "mse") -> OptimizationResult:
        """Minimizes `loss(y, model(x))` over the model's trainable variables, in place.

        Args:
            model: A Keras model with float trainable variables (built here if needed).
            x: The full batch of inputs (an array, or a list of arrays).
            y: The targets.
            loss: A Keras loss identifier, `keras.losses.Loss` or callable
                `(y_true, y_pred) -> loss`; a per-sample loss is averaged. Defaults to `"mse"`.

        Returns:
            An `OptimizationResult` whose `history` has `"loss"` and `"evaluations"` (cumulative
            evaluations: loss and gradient, plus the Hessian for `Newton`) per iteration, the
            starting point first. The model holds the final parameters.

        Raises:
            ValueError: if `model` has no trainable variables or mixes dtypes, or the loss at the
                starting point is not finite.
        """
        problem = FlatProblem(model, x, y, self.max_evaluations)
        theta = problem.get_flat()
        best = {"f": np.inf, "theta": theta, "g": None, "extra": None}

        def evaluate(point):
            value, grad, extra = self._evaluate(problem, point, loss)
            if np.isfinite(value) and value < best["f"]:
                best.update(f=value, theta=point.copy(), g=grad, extra=extra)
            return value, grad, extra

        history: dict[str, list] = {"loss": [], "evaluations": []}
        converged, message, iterations = False, "max_iterations reached", 0
        f, g, extra = evaluate(theta)  # max_evaluations >= 1, so the start is always evaluated
        if not np.isfinite(f):
            raise ValueError(f"The loss at the starting point is not finite. Received: loss={f}")
        history["loss"].append(f)
        history["evaluations"].append(problem.evaluations)
        if np.max(np.abs(g)) <= self.tolerance:
            return OptimizationResult(history, 0, problem.evaluations, True, "gradient tolerance")
        state = self._start()
        try:
            for _ in range(self.max_iterations):
                d = self._direction(state, g, extra)
                slope = float(g @ d)
                if not slope < 0.0:  # not a descent direction: forget the curvature memory
                    state = self._restart(state)
                    d, slope = -g, -float(g @ g)
                t0 = self._first_step(state, g)
                line = SearchLine(evaluate, theta, f, slope, d)
                if self.line_search is None:
                    trial = line.trial(t0)
                    if not np.isfinite(trial.f):
                        message = "loss is not finite"
                        break
                else:
                    search = armijo_search if self.line_search == "armijo" else wolfe_search
                    constants = (self.c1,) if self.line_search == "armijo" else (self.c1, self.c2)
                    trial = search(line, t0, self.max_line_search_steps, *constants)
                    if trial is None:
                        message = "line search found no decrease"
                        break
                s = trial.t * d
                state = self._update(state, s, trial.g - g, trial.extra)
                f_previous = f
                theta, f, g, extra = theta + s, trial.f, trial.g, trial.extra
                iterations += 1
                history["loss"].append(f)
                history["evaluations"].append(problem.evaluations)
                if np.max(np.abs(g)) <= self.tolerance:
                    converged, message = True, "gradient tolerance"
                    break
                if abs(f_previous - f) <= self.tolerance * max(1.0, abs(f)):
                    converged, message = True, "loss change tolerance"
                    break
        except EvaluationBudgetExhausted:
            message = "max_evaluations reached"
            # The budget may run out inside a line search: keep its best point if it is better.
            if best["f"] < f:
                theta, f = best["theta"], best["f"]
                iterations += 1
                history["loss"].append(f)
                history["evaluations"].append(problem.evaluations)
        problem.set_flat(theta)
        return OptimizationResult(history, iterations, problem.evaluations, converged, message)
