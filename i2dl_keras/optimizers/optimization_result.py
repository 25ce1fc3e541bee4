"""What a full-batch optimizer (`LBFGS`, `LevenbergMarquardt`) returns from `minimize`."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class OptimizationResult:
    """The outcome of a full-batch `minimize` call, shaped like Keras' `History.history`.

    `history` maps a name to one value per iteration, the starting point included as entry 0,
    so `history["loss"][k]` is the full-batch loss after `k` iterations and
    `history["evaluations"][k]` the number of loss-and-gradient (or residual) evaluations spent
    to get there. Optimizers add their own keys (`LevenbergMarquardt` adds `"damping"`,
    `"accepted"` and `"jacobian_evaluations"`).

    Args:
        history: Per-iteration records; every list has `iterations + 1` entries.
        iterations: Iterations run.
        evaluations: Total loss-and-gradient (or residual) evaluations.
        converged: Whether a tolerance was met (rather than a budget running out or the line
            search failing).
        message: Why the optimizer stopped.

    Returns:
        A plain record; `loss` is the final loss.

    Example:

    >>> from i2dl_keras.optimizers import OptimizationResult
    >>> result = OptimizationResult({"loss": [1.0, 0.5]}, 1, 2, False, "max_iterations reached")
    >>> result.loss
    0.5
    """

    history: dict[str, list]
    iterations: int
    evaluations: int
    converged: bool
    message: str

    @property
    def loss(self) -> float:
        """The final full-batch loss."""
        return self.history["loss"][-1]
