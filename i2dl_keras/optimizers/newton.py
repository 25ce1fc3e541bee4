"""Newton's method: full-batch second-order steps with the exact Hessian, for small models."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from i2dl_keras.optimizers._full_batch import FlatProblem, LineSearchDescent, check_float

# Largest number of times the identity shift is doubled before giving up on the Hessian.
_MAX_SHIFTS = 100


@keras.saving.register_keras_serializable(package="i2dl_keras")
class Newton(LineSearchDescent):
    """Newton's method on a model's trainable variables, on the full batch.

    Newton's method approximates the loss by its second-order Taylor expansion around `theta`,
    `L(theta + d) ~ L + g^T d + 1/2 d^T H d`, with the gradient `g` and the Hessian `H`, and
    steps to its minimizer: setting the derivative to zero gives `H d = -g`, so
    `theta <- theta - H^{-1} g`. There is no learning rate, and on a convex quadratic one step
    lands on the minimum (course: "Newton's Method"). Levenberg damping solves
    `(H + lambda I) d = -g` instead: `lambda = 0` is Newton's step, and as `lambda` grows the
    step turns towards a short gradient-descent step `-g / lambda`. Where `H + lambda I` is not
    positive definite (near saddle points and maxima of a non-convex loss), a multiple of the
    identity is added until it is (Nocedal & Wright, *Numerical Optimization*, Alg. 3.3), so
    every step is a descent direction. The step is then scaled by a line search that starts
    from `step_size` (`"armijo"` or `"wolfe"`, as in `LBFGS`), or taken with the fixed length
    `step_size` (`line_search=None`).

    The Hessian has `n^2` entries for `n` parameters and solving for the step costs `O(n^3)`,
    so this is for small models (a few hundred parameters) trained on the full batch; it does
    not work on mini-batches. The Hessian is the Jacobian of the gradient, by autodiff
    (`tf.GradientTape`, TensorFlow backend only), in the model's dtype; the linear algebra runs
    in float64 NumPy, so build the model in float64 for tight tolerances. The loss is evaluated
    with `training=False` and includes `model.losses`; every evaluation computes the loss, the
    gradient and the Hessian. Call `minimize` rather than `model.fit`.

    Args:
        max_iterations: Maximum number of iterations (accepted steps). Defaults to `50`.
        damping: The Levenberg term `lambda` (>= 0) added to the Hessian's diagonal; `0` gives
            Newton's step. Defaults to `0.0`.
        line_search: `"armijo"`, `"wolfe"`, or `None` for fixed steps of length `step_size`.
            Defaults to `"armijo"`.
        step_size: The first step length tried by the line search, or the fixed step length
            without one. Defaults to `1.0`.
        tolerance: The stopping tolerance on the gradient and on the loss change, as in
            `LBFGS`. Defaults to `1e-9`.
        max_evaluations: Budget of evaluations as in `LBFGS`, where each one computes the loss,
            the gradient and the Hessian. Defaults to `None` (no budget).
        max_line_search_steps: Maximum evaluations per line search. Defaults to `20`.

    Raises:
        ValueError: if an argument is out of range or `line_search` is unknown.

    Example:

    >>> import keras, numpy as np
    >>> from i2dl_keras.optimizers import Newton
    >>> x = np.random.default_rng(0).normal(size=(32, 3))
    >>> y = x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
    >>> model = keras.Sequential([keras.Input((3,), dtype="float64"),
    ...                           keras.layers.Dense(1, dtype="float64")])
    >>> result = Newton().minimize(model, x, y, loss="mse")
    >>> result.iterations, bool(result.loss < 1e-20)
    (1, True)
    """

    def __init__(
        self,
        max_iterations: int = 50,
        damping: float = 0.0,
        line_search: str | None = "armijo",
        step_size: float = 1.0,
        tolerance: float = 1e-9,
        max_evaluations: int | None = None,
        max_line_search_steps: int = 20,
    ) -> None:
        super().__init__(
            max_iterations,
            tolerance,
            line_search,
            max_evaluations,
            max_line_search_steps,
            allow_fixed_step=True,
        )
        self.damping = check_float("damping", damping, 0.0)
        self.step_size = check_float("step_size", step_size, 0.0, strict=True)

    def compute_step(
        self, gradient: np.ndarray, hessian: np.ndarray, damping: float | None = None
    ) -> np.ndarray:
        """Solves `(H + lambda I) d = -g` for the Newton step `d`.

        If `A = H + lambda I` is not positive definite, `A + tau I` is used instead, with the
        first `tau` of `tau_0, max(2 tau_0, beta), ...` (doubling) for which it is: `tau_0 = 0`
        if the diagonal of `A` is positive and `beta - min_i A_ii` otherwise, where
        `beta = 1e-3 max_i |A_ii|`.

        Args:
            gradient: The `(n,)` gradient `g`.
            hessian: The `(n, n)` Hessian `H`; its symmetric part is used.
            damping: `lambda`; `0` gives Newton's step. Defaults to `None` (the optimizer's
                `damping`).

        Returns:
            The `(n,)` float64 step; `-g` if the Hessian has non-finite entries.

        Raises:
            ValueError: if the shapes do not match or `damping` is negative.
        """
        gradient = np.asarray(gradient, np.float64).ravel()
        hessian = np.asarray(hessian, np.float64)
        n = gradient.shape[0]
        if hessian.shape != (n, n):
            raise ValueError(
                f"`hessian` must have shape ({n}, {n}) for a gradient of length {n}. "
                f"Received: hessian.shape={hessian.shape}"
            )
        damping = self.damping if damping is None else check_float("damping", damping, 0.0)
        if not np.all(np.isfinite(hessian)):
            return -gradient
        system = 0.5 * (hessian + hessian.T) + damping * np.eye(n)
        diagonal = np.diag(system)
        beta = 1e-3 * float(np.max(np.abs(diagonal))) or 1e-3
        shift = 0.0 if np.min(diagonal) > 0.0 else beta - float(np.min(diagonal))
        for _ in range(_MAX_SHIFTS):
            try:
                lower = np.linalg.cholesky(system + shift * np.eye(n))
            except np.linalg.LinAlgError:
                shift = max(2.0 * shift, beta)
                continue
            return np.linalg.solve(lower.T, np.linalg.solve(lower, -gradient))
        return -gradient

    # Hooks of the shared loop -------------------------------------------------------------------

    def _evaluate(self, problem: FlatProblem, theta: np.ndarray, loss: Any):
        return problem.value_grad_and_hessian(theta, loss)

    def _start(self) -> None:
        return None

    def _direction(self, state: None, g: np.ndarray, hessian: np.ndarray) -> np.ndarray:
        return self.compute_step(g, hessian)

    def _first_step(self, state: None, g: np.ndarray) -> float:
        return self.step_size
