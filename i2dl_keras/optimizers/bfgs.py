"""BFGS: the quasi-Newton method with a dense inverse-Hessian approximation, full batch."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from i2dl_keras.optimizers._full_batch import C1, C2, LineSearchDescent, check_float


@keras.saving.register_keras_serializable(package="i2dl_keras")
class BFGS(LineSearchDescent):
    """BFGS on a model's trainable variables, on the full batch, with a dense `n x n` matrix.

    BFGS (Broyden-Fletcher-Goldfarb-Shanno) keeps an approximation `H_k` of the inverse Hessian
    and moves along `d_k = -H_k g_k` with a line search (course: "BFGS and L-BFGS (Quasi-Newton
    Methods)"). After a step `s_k = theta_{k+1} - theta_k` that changes the gradient by
    `y_k = g_{k+1} - g_k`, with `rho_k = 1 / (y_k^T s_k)`,

        H_{k+1} = (I - rho_k s_k y_k^T) H_k (I - rho_k y_k s_k^T) + rho_k s_k s_k^T,

    the symmetric matrix closest to `H_k` that satisfies the secant equation
    `H_{k+1} y_k = s_k` (Nocedal & Wright, *Numerical Optimization*, eq. 6.17; the course names
    the method but gives no formula). It stays positive definite while `y_k^T s_k > 0`, which
    the strong Wolfe line search guarantees; pairs with `y_k^T s_k <= 1e-10 |s_k| |y_k|` are
    skipped. `H_0 = I`, rescaled to `(s_0^T y_0 / y_0^T y_0) I` before the first update
    (eq. 6.20). On a convex quadratic with exact line searches, BFGS takes at most `n` steps
    and `H_n` is the inverse Hessian; a small `c2` makes the Wolfe search nearly exact.

    The matrix costs `O(n^2)` memory and time per step for `n` parameters (up to a few thousand
    is practical); `LBFGS` keeps only the last few pairs instead. Like `LBFGS`, this is for
    small data sets trained on the full batch, evaluated with `training=False` and including
    `model.losses`; the loss and gradient come from TensorFlow in the model's dtype and the
    algorithm runs in float64 NumPy (TensorFlow backend only). Call `minimize` rather than
    `model.fit`.

    Args:
        max_iterations: Maximum number of iterations (accepted steps). Defaults to `100`.
        tolerance: The stopping tolerance on the gradient and on the loss change, as in
            `LBFGS`. Defaults to `1e-9`.
        line_search: `"wolfe"` (strong Wolfe conditions) or `"armijo"` (backtracking to
            sufficient decrease; updates that would lose positive definiteness are skipped).
            Defaults to `"wolfe"`.
        max_evaluations: Budget of loss-and-gradient evaluations, as in `LBFGS`. Defaults to
            `None` (no budget).
        max_line_search_steps: Maximum evaluations per line search. Defaults to `20`.
        c1: Sufficient-decrease constant, `f(theta + t d) <= f(theta) + c1 t g^T d`, in
            `(0, c2)`. Defaults to `1e-4`.
        c2: Curvature constant of the Wolfe search, `|g(theta + t d)^T d| <= c2 |g^T d|`, in
            `(c1, 1)`; smaller is a more exact line search. Defaults to `0.9`.

    Raises:
        ValueError: if an argument is out of range or `line_search` is unknown.

    Example:

    >>> import keras, numpy as np
    >>> from i2dl_keras.optimizers import BFGS
    >>> x = np.linspace(-3, 3, 64, dtype="float32")[:, None]
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(8, "tanh"),
    ...                           keras.layers.Dense(1)])
    >>> result = BFGS(max_iterations=50).minimize(model, x, np.sin(x), loss="mse")
    >>> result.history["loss"][-1] < result.history["loss"][0]
    True
    """

    def __init__(
        self,
        max_iterations: int = 100,
        tolerance: float = 1e-9,
        line_search: str = "wolfe",
        max_evaluations: int | None = None,
        max_line_search_steps: int = 20,
        c1: float = C1,
        c2: float = C2,
    ) -> None:
        super().__init__(
            max_iterations, tolerance, line_search, max_evaluations, max_line_search_steps
        )
        self.c1 = check_float("c1", c1, 0.0, strict=True)
        if not self.c1 < 1.0:
            raise ValueError(f"`c1` must be in (0, 1). Received: c1={c1!r}")
        self.c2 = check_float("c2", c2, self.c1, strict=True)
        if not self.c2 < 1.0:
            raise ValueError(f"`c2` must be in (c1, 1) = ({self.c1}, 1). Received: c2={c2!r}")

    @staticmethod
    def update_inverse_hessian(
        inverse_hessian: np.ndarray, s: np.ndarray, y: np.ndarray
    ) -> np.ndarray:
        """The BFGS update `(I - rho s y^T) H (I - rho y s^T) + rho s s^T`, `rho = 1 / y^T s`.

        Args:
            inverse_hessian: The current `(n, n)` symmetric approximation `H`.
            s: The step `(n,)`.
            y: The change of the gradient over the step, `(n,)`.

        Returns:
            The updated `(n, n)` float64 matrix; it satisfies `H_new y = s`.

        Raises:
            ValueError: if the shapes do not match or `y^T s <= 0`.
        """
        h = np.asarray(inverse_hessian, np.float64)
        s = np.asarray(s, np.float64).ravel()
        y = np.asarray(y, np.float64).ravel()
        n = s.shape[0]
        if h.shape != (n, n) or y.shape != (n,):
            raise ValueError(
                f"`inverse_hessian` must have shape ({n}, {n}) and `y` shape ({n},) for a step "
                f"of length {n}. Received: inverse_hessian.shape={h.shape}, y.shape={y.shape}"
            )
        curvature = float(y @ s)
        if not curvature > 0.0:
            raise ValueError(
                f"The BFGS update needs y^T s > 0 to stay positive definite. "
                f"Received: y^T s={curvature}"
            )
        rho = 1.0 / curvature
        hy = h @ y
        # The product form expanded: H - rho (s (Hy)^T + (Hy) s^T) + (rho^2 y^T H y + rho) s s^T.
        return (
            h
            - rho * (np.outer(s, hy) + np.outer(hy, s))
            + (rho * rho * float(y @ hy) + rho) * np.outer(s, s)
        )

    # Hooks of the shared loop: the state is H, or None while it is still the identity ------

    def _start(self) -> None:
        return None

    def _direction(self, h: np.ndarray | None, g: np.ndarray, extra: Any) -> np.ndarray:
        return -g if h is None else -(h @ g)

    def _first_step(self, h: np.ndarray | None, g: np.ndarray) -> float:
        # Without curvature information the first trial step has length at most 1.
        return 1.0 if h is not None else min(1.0, 1.0 / float(np.linalg.norm(g)))

    def _update(
        self, h: np.ndarray | None, s: np.ndarray, y_change: np.ndarray, extra: Any
    ) -> np.ndarray | None:
        if not s @ y_change > 1e-10 * np.linalg.norm(s) * np.linalg.norm(y_change):
            return h
        if h is None:
            h = (s @ y_change) / (y_change @ y_change) * np.eye(s.shape[0])
        return self.update_inverse_hessian(h, s, y_change)
