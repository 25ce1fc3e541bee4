"""The shared machinery of `SmallGaussian` and `LargeGaussian`: a fixed-scale zero-mean Gaussian."""

from __future__ import annotations

import math
import random

import keras

from i2dl_keras.initializers._variance_scaling import check_seed


def check_stddev(stddev) -> float:
    if (
        isinstance(stddev, bool)
        or not isinstance(stddev, (int, float))
        or not math.isfinite(stddev)
        or stddev <= 0
    ):
        raise ValueError(
            f"Argument `stddev` must be a positive finite number. Received: stddev={stddev!r}"
        )
    return float(stddev)


class GaussianBase(keras.initializers.Initializer):
    """Draws every weight from `N(0, stddev^2)`, whatever the layer's size.

    Unlike `Xavier` and `He`, the scale does not depend on the fans: that is what makes these
    initializations too small or too large for most layers.
    """

    def __init__(self, stddev: float, seed: int | None = None):
        self.stddev = check_stddev(stddev)
        self.seed = check_seed(seed)
        # As in VarianceScalingBase: an unseeded initializer fixes a seed from Python's RNG at
        # construction, so `keras.utils.set_random_seed` makes it reproducible too.
        self._draw_seed = seed if seed is not None else random.randint(1, 10**9)

    def __call__(self, shape, dtype=None):
        dtype = keras.backend.standardize_dtype(dtype or keras.config.floatx())
        if not keras.backend.is_float_dtype(dtype):
            raise ValueError(
                f"Argument `dtype` must be a floating dtype. Received: dtype={dtype!r}"
            )
        return keras.random.normal(shape, stddev=self.stddev, dtype=dtype, seed=self._draw_seed)

    def get_config(self):
        config = super().get_config()
        config.update({"stddev": self.stddev, "seed": self.seed})
        return config
