"""Big random Gaussian weights: `N(0, 1)` for every layer."""

from __future__ import annotations

import keras

from i2dl_keras.initializers._gaussian import GaussianBase


@keras.saving.register_keras_serializable(package="i2dl_keras")
class LargeGaussian(GaussianBase):
    """Big random Gaussian initializer: zero-mean weights with a large, fixed `stddev`.

    Course notes, "Big Random Gaussian Weights": everything is saturated, so the gradients
    vanish at the activations. With `n` inputs of unit scale a unit's pre-activation has a
    standard deviation of about `stddev * sqrt(n)` (`8` for 64 inputs), far outside tanh's and
    sigmoid's linear region: almost every tanh output is close to -1 or +1, where
    `tanh' = 1 - tanh^2` is nearly 0. The notes give no number; `1.0` (plain `randn`) is the
    customary "big". `Xavier` picks the scale from the fans instead.
    `i2dl_keras.diagnostics.activation_statistics` shows the saturation layer by layer.

    Args:
        stddev: The standard deviation of the draws, a positive number. Defaults to `1.0`.
        seed: An int for reproducible draws, or `None`, as in `SmallGaussian`. Defaults to
            `None`.

    Returns:
        Called with `(shape, dtype=None)`, a tensor of that shape.

    Raises:
        ValueError: in the cases `SmallGaussian` lists.

    Example:
        ```python
        init = i2dl_keras.initializers.LargeGaussian(seed=0)
        kernel = init((64, 32))  # entries of size ~1: tanh units with 64 inputs saturate
        ```
    """

    def __init__(self, stddev: float = 1.0, seed: int | None = None):
        super().__init__(stddev=stddev, seed=seed)
