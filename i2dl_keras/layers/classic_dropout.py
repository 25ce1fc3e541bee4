"""Classic (non-inverted) dropout: no scaling in training, scale by (1 - p) at inference."""

import keras

from i2dl_keras.layers import _checks
from i2dl_keras.layers._shape_preserving import RandomCorruptionLayer


@keras.saving.register_keras_serializable(package="i2dl_keras")
class ClassicDropout(RandomCorruptionLayer):
    """Dropout in the course's classic form: drop without scaling, scale by `1 - rate` at test.

    During training each unit is kept with probability `1 - rate` and set to zero otherwise,
    and the kept units pass through unchanged. At inference nothing is dropped and every unit is
    multiplied by `1 - rate`: the course multiplies the *weights* by `1 - p` at test time, and
    scaling the activations that feed the next layer is the same thing. Either way the
    inference output equals the expected training output, `E[mask * x] = (1 - rate) * x`.

    `keras.layers.Dropout` is the *inverted* form of the same idea: it scales the kept units by
    `1 / (1 - rate)` during training and is the identity at inference, so its expected training
    output equals `x`. Both give the same expected activation relative to their own inference
    output; the inverted form is what frameworks use because inference then needs no change.
    This layer exists to show the classic form and to check that equivalence.

    Args:
        rate: Probability of dropping a unit, a float in [0, 1). Defaults to `0.5`.
        noise_shape: Optional shape of the binary mask, broadcast against the input; `None` in
            it takes the input's size, e.g. `(None, 1, None)` shares one mask over time.
            Defaults to `None` (the input's shape).
        seed: Optional integer seed for the mask. Defaults to `None`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: Input tensor of any shape.
        training: Whether to drop units (training) or scale by `1 - rate` (inference).
            Defaults to `False`.

    Input shape:
        Any shape.

    Output shape:
        Same shape as the input.

    Raises:
        ValueError: if `rate` is not in [0, 1) or `seed` is not `None` or an integer >= 0.

    Example:

    >>> layer = i2dl_keras.layers.ClassicDropout(rate=0.5, seed=0)
    >>> keras.ops.convert_to_numpy(layer(np.ones((1, 4), "float32"))).tolist()
    [[0.5, 0.5, 0.5, 0.5]]
    """

    def __init__(self, rate=0.5, noise_shape=None, seed=None, **kwargs):
        super().__init__(rate, seed, **kwargs)
        if noise_shape is not None:
            if not isinstance(noise_shape, (list, tuple)) or not all(
                d is None or (_checks.is_int(d) and d >= 1) for d in noise_shape
            ):
                raise ValueError(
                    "`noise_shape` must be None or a list of positive integers or None. "
                    f"Received: noise_shape={noise_shape!r}"
                )
            noise_shape = tuple(None if d is None else int(d) for d in noise_shape)
        self.noise_shape = noise_shape

    def build(self, input_shape):
        if self.noise_shape is not None and len(self.noise_shape) != len(input_shape):
            raise ValueError(
                "`noise_shape` must have one entry per input axis. "
                f"Received: noise_shape={self.noise_shape} for input_shape={input_shape}"
            )

    def _mask_shape(self, inputs):
        shape = keras.ops.shape(inputs)
        if self.noise_shape is None:
            return shape
        return tuple(s if d is None else d for s, d in zip(shape, self.noise_shape))

    def call(self, inputs, training=False):
        if self.rate == 0.0:
            return inputs
        if training:
            noise = keras.random.uniform(
                self._mask_shape(inputs), dtype=self.compute_dtype, seed=self.seed_generator
            )
            # P(u >= rate) = 1 - rate for u ~ U[0, 1): the keep probability.
            keep = keras.ops.cast(noise >= self.rate, inputs.dtype)
            return inputs * keep
        return inputs * (1.0 - self.rate)

    def get_config(self):
        config = super().get_config()
        noise_shape = None if self.noise_shape is None else list(self.noise_shape)
        config.update({"noise_shape": noise_shape})
        return config
