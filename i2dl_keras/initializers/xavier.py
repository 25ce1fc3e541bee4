"""Xavier initialization: variance 1/fan_in (the course) or 2/(fan_in + fan_out) (Glorot)."""

from __future__ import annotations

import keras

from i2dl_keras.initializers._variance_scaling import VarianceScalingBase

MODES = ("fan_in", "fan_avg")


@keras.saving.register_keras_serializable(package="i2dl_keras")
class Xavier(VarianceScalingBase):
    """Xavier initializer: zero-mean weights whose variance keeps activations' scale constant.

    Course notes, "Xavier Initialization": with inputs of zero mean, sampling the weights of a
    layer with `n` inputs from a zero-mean Gaussian of variance `1/n` keeps the variance of the
    pre-activations equal to that of the inputs, so tanh/sigmoid units neither saturate nor die
    out. `mode="fan_in"` is that variance, `1 / fan_in`. `mode="fan_avg"` is Glorot and Bengio's
    (2010) compromise between the forward and backward passes, `2 / (fan_in + fan_out)`, which is
    Keras' `GlorotNormal`/`GlorotUniform` (up to Keras' truncation of the normal). For ReLU
    networks use `He`.

    Fans are those of `i2dl_keras.initializers.compute_fans`: `(in, out)` for a dense kernel,
    the receptive field size times the channels for a convolution kernel.

    Args:
        mode: `"fan_in"` or `"fan_avg"`. Defaults to `"fan_in"`.
        distribution: `"normal"` (a plain Gaussian with that variance) or `"uniform"`
            (`U(-limit, limit)`, `limit = sqrt(3 * variance)`). Defaults to `"normal"`.
        seed: An int for reproducible draws (every call then returns the same values), or
            `None` to fix one from Python's `random` at construction. Defaults to `None`.

    Returns:
        Called with `(shape, dtype=None)`, a tensor of that shape.

    Raises:
        ValueError: if `mode` or `distribution` is not one listed above, `seed` is neither
            `None` nor an int `>= 0`, or a call asks for a non-floating dtype.

    Example:
        ```python
        init = i2dl_keras.initializers.Xavier(mode="fan_avg", distribution="uniform", seed=0)
        dense = keras.layers.Dense(64, activation="tanh", kernel_initializer=init)
        ```
    """

    def __init__(self, mode: str = "fan_in", distribution: str = "normal", seed: int | None = None):
        if mode not in MODES:
            raise ValueError(f"Argument `mode` must be one of {MODES}. Received: mode={mode!r}")
        self.mode = mode
        super().__init__(distribution=distribution, seed=seed)

    def variance(self, fan_in: int, fan_out: int) -> float:
        """The target variance for the given fans."""
        if self.mode == "fan_in":
            return 1.0 / fan_in
        return 2.0 / (fan_in + fan_out)

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode, "distribution": self.distribution, "seed": self.seed})
        return config
