"""Small random Gaussian weights: `N(0, 0.01^2)` for every layer."""

from __future__ import annotations

import keras

from i2dl_keras.initializers._gaussian import GaussianBase


@keras.saving.register_keras_serializable(package="i2dl_keras")
class SmallGaussian(GaussianBase):
    """Small random Gaussian initializer: zero-mean weights with a small, fixed `stddev`.

    Course notes, "Small Random Gaussian Weights": random draws break the symmetry of all-zero
    weights, and small ones are a safe place for tanh and sigmoid (the units work near 0, where
    the activations have good gradients). But each layer multiplies its input by these small
    weights: with `n` inputs the activations shrink by about `stddev * sqrt(n)` per layer
    (`0.01 * sqrt(64) = 0.08` for 64 units), so in a deep network they, and the gradients,
    vanish; with sigmoids, too small weights also leave the units in their linear region. The
    notes give no number; `0.01` is the customary "small" (`0.01 * randn`). `Xavier` picks the
    scale from the fans instead. `i2dl_keras.diagnostics.activation_statistics` shows the
    shrinking activations layer by layer.

    Args:
        stddev: The standard deviation of the draws, a positive number. Defaults to `0.01`.
        seed: An int for reproducible draws (every call then returns the same values), or
            `None` to fix one from Python's `random` at construction. Defaults to `None`.

    Returns:
        Called with `(shape, dtype=None)`, a tensor of that shape.

    Raises:
        ValueError: if `stddev` is not a positive finite number, `seed` is neither `None` nor
            an int `>= 0`, or a call asks for a non-floating dtype.

    Example:
        ```python
        init = i2dl_keras.initializers.SmallGaussian(seed=0)
        dense = keras.layers.Dense(64, activation="tanh", kernel_initializer=init)
        ```
    """

    def __init__(self, stddev: float = 0.01, seed: int | None = None):
        super().__init__(stddev=stddev, seed=seed)
