"""The shared machinery of `Xavier` and `He`: zero-mean draws with a variance set by the fans."""

from __future__ import annotations

import math
import random

import keras

from i2dl_keras.initializers.fans import compute_fans

DISTRIBUTIONS = ("normal", "uniform")


def check_distribution(distribution) -> str:
    if distribution not in DISTRIBUTIONS:
        raise ValueError(
            f"Argument `distribution` must be one of {DISTRIBUTIONS}. "
            f"Received: distribution={distribution!r}"
        )
    return distribution


def check_seed(seed) -> int | None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"Argument `seed` must be None or an int >= 0. Received: seed={seed!r}")
    return seed


class VarianceScalingBase(keras.initializers.Initializer):
    """Draws zero-mean weights with the variance that `variance(fan_in, fan_out)` returns.

    `"normal"` is a plain Gaussian with that variance; `"uniform"` is `U(-limit, limit)` with
    `limit = sqrt(3 * variance)`, whose variance `limit^2 / 3` is the same.
    """

    def __init__(self, distribution: str = "normal", seed: int | None = None):
        self.distribution = check_distribution(distribution)
        self.seed = check_seed(seed)
        # Like Keras' own initializers, an unseeded one fixes a seed from Python's RNG at
        # construction, so `keras.utils.set_random_seed` makes it reproducible too.
        self._draw_seed = seed if seed is not None else random.randint(1, 10**9)

    def variance(self, fan_in: int, fan_out: int) -> float:
        raise NotImplementedError

    def __call__(self, shape, dtype=None):
        dtype = keras.backend.standardize_dtype(dtype or keras.config.floatx())
        if not keras.backend.is_float_dtype(dtype):
            raise ValueError(
                f"Argument `dtype` must be a floating dtype. Received: dtype={dtype!r}"
            )
        variance = self.variance(*compute_fans(shape))
        if self.distribution == "normal":
            return keras.random.normal(
                shape, stddev=math.sqrt(variance), dtype=dtype, seed=self._draw_seed
            )
        limit = math.sqrt(3.0 * variance)
        return keras.random.uniform(
            shape, minval=-limit, maxval=limit, dtype=dtype, seed=self._draw_seed
        )
