"""L-BFGS: a limited-memory quasi-Newton optimizer for full-batch training of small models."""

from __future__ import annotations

from collections import deque
from typing import Any

import keras
import numpy as np

from i2dl_keras.optimizers._full_batch import LineSearchDescent, check_positive_int


@keras.saving.register_keras_serializable(package="i2dl_keras")
class LBFGS(LineSearchDescent):
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
        super().__init__(
            max_iterations, tolerance, line_search, max_evaluations, max_line_search_steps
        )
        self.history_size = check_positive_int("history_size", history_size)

    # Hooks of the shared loop: the state is the deques of the last (s, y) pairs ------------

    @staticmethod
    def _two_loop(g: np.ndarray, s_list, y_list) -> np.ndarray:
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

    def _start(self) -> tuple[deque, deque]:
        return deque(maxlen=self.history_size), deque(maxlen=self.history_size)

    def _direction(self, state, g: np.ndarray, extra: Any) -> np.ndarray:
        return self._two_loop(g, *state)

    def _first_step(self, state, g: np.ndarray) -> float:
        # Without curvature information the first trial step has length at most 1.
        return 1.0 if state[0] else min(1.0, 1.0 / float(np.linalg.norm(g)))

    def _update(self, state, s: np.ndarray, y_change: np.ndarray, extra: Any):
        if s @ y_change > 1e-10 * np.linalg.norm(s) * np.linalg.norm(y_change):
            state[0].append(s)
            state[1].append(y_change)
        return state
