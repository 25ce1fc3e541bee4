"""Levenberg-Marquardt: damped Gauss-Newton for full-batch nonlinear least squares."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from i2dl_keras.optimizers._full_batch import (
    FlatProblem,
    FullBatchOptimizer,
    check_float,
    check_positive_int,
)
from i2dl_keras.optimizers.optimization_result import OptimizationResult

SCALINGS = ("identity", "marquardt")


@keras.saving.register_keras_serializable(package="i2dl_keras")
class LevenbergMarquardt(FullBatchOptimizer):
    """Levenberg-Marquardt on a model's trainable variables for the residuals `model(x) - y`.

    For residuals `r(theta)` with Jacobian `J`, Gauss-Newton approximates the Hessian of
    `1/2 |r|^2` by `J^T J` and solves `J^T J delta = -J^T r`. Levenberg damps the system,
    `(J^T J + lambda D) delta = -J^T r`, with `D = I`; Marquardt's variant uses
    `D = diag(J^T J)`, which scales each component by its curvature so that directions with small
    gradients still move (course: "Gauss-Newton", "Levenberg", "Levenberg-Marquardt").
    `lambda = 0` is Gauss-Newton; as `lambda` grows, the step tends to `-J^T r / lambda`
    (`D = I`): a short gradient-descent step. Erratum: the course notes say `lambda = 1` means
    gradient descent; it does not, only the limit of large `lambda` does, and the step then
    shrinks like `1 / lambda`.

    Each iteration solves for one step and evaluates the residuals there. A step that lowers
    the loss is accepted and `lambda` is divided by `damping_down` (trust the quadratic model
    more); otherwise it is rejected and `lambda` is multiplied by `damping_up`. With `damping=0`
    the method is plain Gauss-Newton: every step is accepted (there is no damping to raise) and
    the step is the minimum-norm least-squares solution of `J delta = -r`.

    The reported loss is the mean squared residual (Keras' `"mse"`), which has the same
    minimizer as `1/2 |r|^2`. The model is evaluated with `training=False`; `model.losses` are
    ignored (they are not residuals). The Jacobian comes from `tf.GradientTape.jacobian` in the
    model's dtype and the linear algebra runs in float64 NumPy (TensorFlow backend only). The
    normal equations are `n x n` for `n` parameters and the Jacobian is `m x n` for `m` residuals,
    so this is for small models; build the model in float64 for tight tolerances.

    Args:
        max_iterations: Maximum number of iterations (each solves for and tries one step).
            Defaults to `100`.
        damping: The initial `lambda` (>= 0); `0` gives Gauss-Newton. Defaults to `1e-3`.
        damping_up: Factor (> 1) applied to `lambda` after a rejected step. Defaults to `10`.
        damping_down: Divisor (> 1) applied to `lambda` after an accepted step. Defaults to `10`.
        tolerance: Stop when the largest absolute entry of `J^T r` is at most `tolerance`, or a
            step is shorter than `tolerance * (|theta| + tolerance)`. Defaults to `1e-10`.
        scaling: `"identity"` (Levenberg, `D = I`) or `"marquardt"` (`D = diag(J^T J)`).
            Defaults to `"identity"`.
        max_damping: Stop (not converged) when `lambda` exceeds this. Defaults to `1e16`.

    Raises:
        ValueError: if an argument is out of range or `scaling` is unknown.

    Example:

    >>> import keras, numpy as np
    >>> from i2dl_keras.optimizers import LevenbergMarquardt
    >>> x = np.linspace(-1, 1, 32)[:, None]
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(8, "tanh"),
    ...                           keras.layers.Dense(1)])
    >>> result = LevenbergMarquardt(max_iterations=20).minimize(model, x, np.sin(3 * x))
    >>> result.history["loss"][-1] < result.history["loss"][0]
    True
    """

    def __init__(
        self,
        max_iterations: int = 100,
        damping: float = 1e-3,
        damping_up: float = 10.0,
        damping_down: float = 10.0,
        tolerance: float = 1e-10,
        scaling: str = "identity",
        max_damping: float = 1e16,
    ) -> None:
        self.max_iterations = check_positive_int("max_iterations", max_iterations)
        self.damping = check_float("damping", damping, 0.0)
        self.damping_up = check_float("damping_up", damping_up, 1.0, strict=True)
        self.damping_down = check_float("damping_down", damping_down, 1.0, strict=True)
        self.tolerance = check_float("tolerance", tolerance, 0.0)
        if scaling not in SCALINGS:
            raise ValueError(f"`scaling` must be one of {SCALINGS}. Received: scaling={scaling!r}")
        self.scaling = scaling
        self.max_damping = check_float("max_damping", max_damping, 0.0, strict=True)

    def compute_step(
        self, jacobian: np.ndarray, residuals: np.ndarray, damping: float | None = None
    ) -> np.ndarray:
        """Solves `(J^T J + damping * D) delta = -J^T r` for the step `delta`.

        Args:
            jacobian: The `(m, n)` Jacobian of the residuals.
            residuals: The `(m,)` residuals.
            damping: `lambda`; `0` gives the Gauss-Newton step. Defaults to `None` (the
                optimizer's initial `damping`).

        Returns:
            The `(n,)` float64 step.

        Raises:
            ValueError: if the shapes do not match or `damping` is negative.
        """
        jacobian = np.asarray(jacobian, np.float64)
        residuals = np.asarray(residuals, np.float64).ravel()
        if jacobian.ndim != 2 or jacobian.shape[0] != residuals.shape[0]:
            raise ValueError(
                "`jacobian` must have shape (len(residuals), n). "
                f"Received: jacobian.shape={jacobian.shape}"
            )
        damping = self.damping if damping is None else check_float("damping", damping, 0.0)
        if damping == 0.0:
            return np.linalg.lstsq(jacobian, -residuals, rcond=None)[0]
        normal = jacobian.T @ jacobian
        gradient = jacobian.T @ residuals
        if self.scaling == "identity":
            diagonal = np.ones(normal.shape[0])
        else:
            # A zero column of J would make Marquardt's system singular: floor its curvature.
            diagonal = np.diag(normal).copy()
            floor = max(1e-12 * float(np.max(diagonal, initial=0.0)), 1e-300)
            diagonal = np.maximum(diagonal, floor)
        system = normal + damping * np.diag(diagonal)
        try:
            return np.linalg.solve(system, -gradient)
        except np.linalg.LinAlgError:
            return np.linalg.lstsq(system, -gradient, rcond=None)[0]

    def minimize(self, model: keras.Model, x: Any, y: Any) -> OptimizationResult:
        """Minimizes the sum of squared residuals `model(x) - y`, in place.

        Args:
            model: A Keras model with float trainable variables (built here if needed).
            x: The full batch of inputs (an array, or a list of arrays).
            y: The targets, shaped like the model's output.

        Returns:
            An `OptimizationResult` whose `history` has, per iteration (the start first):
            `"loss"` (mean squared residual after the iteration), `"evaluations"` (cumulative
            residual evaluations, Jacobian evaluations included), `"jacobian_evaluations"`,
            `"damping"` (`lambda` after the iteration) and `"accepted"`. The model holds the
            final parameters.

        Raises:
            ValueError: if `model` has no trainable variables or mixes dtypes.
        """
        problem = FlatProblem(model, x, y)
        theta = problem.get_flat()
        residuals, jacobian = problem.residuals_and_jacobian(theta)
        cost = float(np.mean(residuals**2))
        if not np.isfinite(cost):
            raise ValueError(f"The loss at the starting point is not finite. Received: loss={cost}")
        damping = self.damping
        history: dict[str, list] = {
            "loss": [cost],
            "evaluations": [problem.evaluations],
            "jacobian_evaluations": [problem.jacobian_evaluations],
            "damping": [damping],
            "accepted": [True],
        }
        converged, message, iterations = False, "max_iterations reached", 0
        for _ in range(self.max_iterations):
            if cost == 0.0 or np.max(np.abs(jacobian.T @ residuals)) <= self.tolerance:
                converged, message = True, "gradient tolerance"
                break
            step = self.compute_step(jacobian, residuals, damping)
            if np.linalg.norm(step) <= self.tolerance * (np.linalg.norm(theta) + self.tolerance):
                converged, message = True, "step tolerance"
                break
            trial = theta + step
            iterations += 1
            if damping == 0.0:  # Gauss-Newton accepts every step: get its Jacobian at once
                residuals, jacobian = problem.residuals_and_jacobian(trial)
                theta, cost, accepted = trial, float(np.mean(residuals**2)), True
            else:
                trial_cost = float(np.mean(problem.residuals(trial) ** 2))
                accepted = bool(np.isfinite(trial_cost) and trial_cost < cost)
                if accepted:
                    theta, cost = trial, trial_cost
                    damping /= self.damping_down
                    residuals, jacobian = problem.residuals_and_jacobian(theta)
                else:
                    damping *= self.damping_up
            history["loss"].append(cost)
            history["evaluations"].append(problem.evaluations)
            history["jacobian_evaluations"].append(problem.jacobian_evaluations)
            history["damping"].append(damping)
            history["accepted"].append(bool(accepted))
            if damping > self.max_damping:
                message = "damping exceeded max_damping"
                break
        problem.set_flat(theta)
        return OptimizationResult(history, iterations, problem.evaluations, converged, message)
