"""L-BFGS: a limited-memory quasi-Newton optimizer for full-batch training of small models."""

from __future__ import annotations

from collections import deque
from typing import Any

import keras
import numpy as np

from i2dl_keras.optimizers._full_batch import (
    EvaluationBudgetExhausted,
    FlatProblem,
    check_float,
    check_positive_int,
)
from i2dl_keras.optimizers.optimization_result import OptimizationResult

LINE_SEARCHES = ("armijo", "wolfe")

# Sufficient-decrease and curvature constants of the line search (Nocedal & Wright, ch. 3).
_C1 = 1e-4
_C2 = 0.9


class _Trial:
    """One evaluated point of the line search: step length, loss, gradient, slope along d."""

    __slots__ = ("t", "f", "g", "slope")

    def __init__(self, t: float, f: float, g: np.ndarray | None, slope: float):
        self.t, self.f, self.g, self.slope = t, f, g, slope


@keras.saving.register_keras_serializable(package="i2dl_keras")
class LBFGS:
    """Limited-memory BFGS on a model's trainable variables, on the full batch.

    BFGS builds an approximation of the inverse Hessian from the changes in parameters
    `s_k = theta_{k+1} - theta_k` and gradients `y_k = g_{k+1} - g_k`; L-BFGS keeps only the last
    `history_size` pairs and applies the approximation with the two-loop recursion, in
    `O(history_size * n)` memory and time instead of `O(n^2)` (course: "BFGS and L-BFGS
    (Quasi-Newton Methods)"; Nocedal & Wright, *Numerical Optimization*, Alg. 7.4). The initial
    inverse Hessian is `(s^T y / y^T y) I`. Each iteration moves along the quasi-Newton direction
    with a line search: backtracking with quadratic interpolation until the Armijo condition
    holds (`"armijo"`), or a bracketing search for the strong Wolfe conditions with cubic
    interpolation (`"wolfe"`, Alg. 3.5/3.6; it guarantees `s^T y > 0`). Pairs with
    `s^T y <= 1e-10 |s| |y|` are skipped so the approximation stays positive definite.

    Full-batch quasi-Newton methods suit small data sets with little redundancy; they do not
    work on noisy mini-batch gradients (course: "Which Optimizer for which Dataset?"). This is
    not a `keras.optimizers.Optimizer`, because a line search needs to re-evaluate the loss at
    trial points, which `model.fit` cannot do; call `minimize` instead. The loss is evaluated
    with `training=False` (so dropout is off and the objective is deterministic) and includes
    `model.losses`. The outer algorithm runs in float64 NumPy and the loss and gradient are
    computed with TensorFlow in the model's dtype (TensorFlow backend only); for tolerances
    below float32 resolution build the model in float64.

    Args:
        max_iterations: Maximum number of iterations (accepted steps). Defaults to `100`.
        history_size: Number of `(s, y)` pairs kept. Defaults to `10`.
        tolerance: Stop when the gradient's largest absolute entry is at most `tolerance`, or
            when an iteration lowers the loss by at most `tolerance * max(1, |loss|)`.
            Defaults to `1e-9`.
        line_search: `"armijo"` or `"wolfe"`. Defaults to `"armijo"`.
        max_evaluations: Budget of loss-and-gradient evaluations (one forward and backward pass
            each), the starting point included. Defaults to `None` (no budget beyond
            `max_iterations` and `max_line_search_steps`).
        max_line_search_steps: Maximum evaluations per line search. Defaults to `20`.

    Raises:
        ValueError: if an argument is out of range or `line_search` is unknown.

    Example:

    >>> import keras, numpy as np
    >>> from i2dl_keras.optimizers import LBFGS
    >>> x = np.linspace(-3, 3, 64, dtype="float32")[:, None]
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(16, "tanh"),
    ...                           keras.layers.Dense(1)])
    >>> result = LBFGS(max_iterations=50).minimize(model, x, np.sin(x), loss="mse")
    >>> result.history["loss"][-1] < result.history["loss"][0]
    True
    """

    def __init__(
        self,
        max_iterations: int = 100,
        history_size: int = 10,
        tolerance: float = 1e-9,
        line_search: str = "armijo",
        max_evaluations: int | None = None,
        max_line_search_steps: int = 20,
    ) -> None:
        self.max_iterations = check_positive_int("max_iterations", max_iterations)
        self.history_size = check_positive_int("history_size", history_size)
        self.tolerance = check_float("tolerance", tolerance, 0.0)
        if line_search not in LINE_SEARCHES:
            raise ValueError(
                f"`line_search` must be one of {LINE_SEARCHES}. "
                f"Received: line_search={line_search!r}"
            )
        self.line_search = line_search
        self.max_evaluations = (
            None
            if max_evaluations is None
            else check_positive_int("max_evaluations", max_evaluations)
        )
        self.max_line_search_steps = check_positive_int(
            "max_line_search_steps", max_line_search_steps
        )

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, for `from_config`."""
        return {
            "max_iterations": self.max_iterations,
            "history_size": self.history_size,
            "tolerance": self.tolerance,
            "line_search": self.line_search,
            "max_evaluations": self.max_evaluations,
            "max_line_search_steps": self.max_line_search_steps,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LBFGS:
        """Creates an `LBFGS` from `get_config()`'s output."""
        return cls(**config)

    # The algorithm -----------------------------------------------------------------------------

    @staticmethod
    def _direction(g: np.ndarray, s_list, y_list) -> np.ndarray:
        """The two-loop recursion: `-H g` for the L-BFGS inverse-Hessian approximation `H`."""
        q = g.copy()
        alphas = []
        for s, y in zip(reversed(s_list), reversed(y_list)):
            rho = 1.0 / (y @ s)
            alpha = rho * (s @ q)
            q -= alpha * y
            alphas.append((rho, alpha))
        if s_list:
            s, y = s_list[-1], y_list[-1]
            q *= (s @ y) / (y @ y)
        for (s, y), (rho, alpha) in zip(zip(s_list, y_list), reversed(alphas)):
            beta = rho * (y @ q)
            q += (alpha - beta) * s
        return -q

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
            loss-and-gradient evaluations) per iteration, the starting point first. The model
            holds the final parameters.

        Raises:
            ValueError: if `model` has no trainable variables or mixes dtypes.
        """
        problem = FlatProblem(model, x, y, self.max_evaluations)
        theta = problem.get_flat()
        best = {"f": np.inf, "theta": theta, "g": None}

        def evaluate(point):
            value, grad = problem.value_and_grad(point, loss)
            if np.isfinite(value) and value < best["f"]:
                best.update(f=value, theta=point.copy(), g=grad)
            return value, grad

        history: dict[str, list] = {"loss": [], "evaluations": []}
        converged, message, iterations = False, "max_iterations reached", 0
        f, g = evaluate(theta)  # max_evaluations >= 1, so the start is always evaluated
        if not np.isfinite(f):
            raise ValueError(f"The loss at the starting point is not finite. Received: loss={f}")
        history["loss"].append(f)
        history["evaluations"].append(problem.evaluations)
        s_list: deque = deque(maxlen=self.history_size)
        y_list: deque = deque(maxlen=self.history_size)
        if np.max(np.abs(g)) <= self.tolerance:
            return OptimizationResult(history, 0, problem.evaluations, True, "gradient tolerance")
        try:
            for _ in range(self.max_iterations):
                d = self._direction(g, s_list, y_list)
                slope = float(g @ d)
                if not slope < 0.0:  # not a descent direction: forget the curvature pairs
                    s_list.clear()
                    y_list.clear()
                    d, slope = -g, -float(g @ g)
                # Without curvature information the first trial step has length at most 1.
                t0 = 1.0 if s_list else min(1.0, 1.0 / np.linalg.norm(g))
                search = self._armijo if self.line_search == "armijo" else self._wolfe
                trial = search(evaluate, theta, f, slope, d, t0)
                if trial is None:
                    message = "line search found no decrease"
                    break
                s = trial.t * d
                y_change = trial.g - g
                if s @ y_change > 1e-10 * np.linalg.norm(s) * np.linalg.norm(y_change):
                    s_list.append(s)
                    y_list.append(y_change)
                f_previous = f
                theta, f, g = theta + s, trial.f, trial.g
                iterations += 1
                history["loss"].append(f)
                history["evaluations"].append(problem.evaluations)
                if np.max(np.abs(g)) <= self.tolerance:
                    converged, message = True, "gradient tolerance"
                    break
                if f_previous - f <= self.tolerance * max(1.0, abs(f)):
                    converged, message = True, "loss change tolerance"
                    break
        except EvaluationBudgetExhausted:
            message = "max_evaluations reached"
            # The budget may run out inside a line search: keep its best point if it is better.
            if best["f"] < f:
                theta, f, g = best["theta"], best["f"], best["g"]
                iterations += 1
                history["loss"].append(f)
                history["evaluations"].append(problem.evaluations)
        problem.set_flat(theta)
        return OptimizationResult(history, iterations, problem.evaluations, converged, message)

    def _armijo(self, evaluate, theta, f0, slope0, d, t):
        """Backtracking with safeguarded quadratic interpolation until sufficient decrease."""
        for _ in range(self.max_line_search_steps):
            f, g = evaluate(theta + t * d)
            if np.isfinite(f) and f <= f0 + _C1 * t * slope0:
                return _Trial(t, f, g, float(g @ d))
            if np.isfinite(f):
                # Minimizer of the quadratic through f0, slope0 and f(t), kept in [0.1t, 0.5t].
                denominator = 2.0 * (f - f0 - slope0 * t)
                t_new = -slope0 * t * t / denominator if denominator > 0 else 0.5 * t
                t = float(np.clip(t_new, 0.1 * t, 0.5 * t))
            else:
                t *= 0.1
        return None

    def _wolfe(self, evaluate, theta, f0, slope0, d, t):
        """Bracketing search for the strong Wolfe conditions (Nocedal & Wright, Alg. 3.5)."""
        previous = _Trial(0.0, f0, None, slope0)
        steps = 0
        while steps < self.max_line_search_steps:
            f, g = evaluate(theta + t * d)
            steps += 1
            current = _Trial(t, f, g, float(g @ d) if np.isfinite(f) else np.nan)
            if not np.isfinite(f) or f > f0 + _C1 * t * slope0 or (steps > 1 and f >= previous.f):
                return self._zoom(evaluate, theta, f0, slope0, d, previous, current, steps)
            if abs(current.slope) <= -_C2 * slope0:
                return current
            if current.slope >= 0.0:
                return self._zoom(evaluate, theta, f0, slope0, d, current, previous, steps)
            previous = current
            t *= 2.0
        return previous if previous.t > 0.0 else None

    def _zoom(self, evaluate, theta, f0, slope0, d, lo, hi, steps):
        """Shrinks the bracket [lo, hi] to a strong-Wolfe point (Nocedal & Wright, Alg. 3.6)."""
        while steps < self.max_line_search_steps:
            t = self._cubic_minimizer(lo, hi)
            f, g = evaluate(theta + t * d)
            steps += 1
            current = _Trial(t, f, g, float(g @ d) if np.isfinite(f) else np.nan)
            if not np.isfinite(f) or f > f0 + _C1 * t * slope0 or f >= lo.f:
                hi = current
                continue
            if abs(current.slope) <= -_C2 * slope0:
                return current
            if current.slope * (hi.t - lo.t) >= 0.0:
                hi = lo
            lo = current
        # Out of steps: `lo` satisfies sufficient decrease whenever it is not the start point.
        return lo if lo.t > 0.0 else None

    @staticmethod
    def _cubic_minimizer(lo: _Trial, hi: _Trial) -> float:
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
