"""He (Kaiming) initialization: variance 2/fan_in, for ReLU networks."""

from __future__ import annotations

import keras

from i2dl_keras.initializers._variance_scaling import VarianceScalingBase


@keras.saving.register_keras_serializable(package="i2dl_keras")
class He(VarianceScalingBase):
    """He initializer: zero-mean weights of variance `2 / fan_in`.

    Course notes, "Xavier Initialization": a ReLU zeroes half of its inputs, which halves the
    variance passed on by each layer, so Xavier's `1 / n` still lets signals vanish in ReLU
    networks; doubling it to `2 / n` (He et al., 2015) compensates. Fans are those of
    `i2dl_keras.initializers.compute_fans`.

    Args:
        distribution: `"normal"` (a plain Gaussian of variance `2 / fan_in`) or `"uniform"`
            (`U(-limit, limit)`, `limit = sqrt(6 / fan_in)`). Defaults to `"normal"`.
        seed: An int for reproducible draws (every call then returns the same values), or
            `None` to fix one from Python's `random` at construction. Defaults to `None`.

    Returns:
        Called with `(shape, dtype=None)`, a tensor of that shape.

    Raises:
        ValueError: if `distribution` is not `"normal"` or `"uniform"`, `seed` is neither `None`
            nor an int `>= 0`, or a call asks for a non-floating dtype.

    Example:
        ```python
        conv = keras.layers.Conv2D(
            32, 3, activation="relu", kernel_initializer=i2dl_keras.initializers.He(seed=0)
        )
        ```
    """

    def variance(self, fan_in: int, fan_out: int) -> float:
        """The target variance for the given fans: `2 / fan_in`."""
        return 2.0 / fan_in

    def get_config(self):
        config = super().get_config()
        config.update({"distribution": self.distribution, "seed": self.seed})
        return config
