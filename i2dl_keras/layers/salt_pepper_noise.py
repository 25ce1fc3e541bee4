"""Salt-and-pepper corruption for denoising autoencoders, active only in training."""

import keras

from i2dl_keras.layers import _checks
from i2dl_keras.layers._shape_preserving import RandomCorruptionLayer
from i2dl_keras.layers.corruption import salt_pepper_corruption


@keras.saving.register_keras_serializable(package="i2dl_keras")
class SaltPepperNoise(RandomCorruptionLayer):
    """Sets a random fraction of the inputs to their minimum or maximum value, in training only.

    One of the corruption processes `q_D(x~ | x)` of the denoising autoencoder (Vincent et al.,
    2010): each element is independently chosen with probability `rate`, and a chosen element
    is replaced by `low` or `high` on a fair coin flip ("pepper" and "salt"); the others pass
    through. The model then learns to reconstruct the clean `x` from `x~`. At inference the
    layer is the identity, so the trained model is a plain autoencoder. The corruption is
    `i2dl_keras.layers.salt_pepper_corruption`, drawn from the layer's own seed generator.

    Args:
        rate: Probability that an element is corrupted, a float in [0, 1). Defaults to `0.1`.
        low: The "pepper" value, usually the inputs' minimum. Defaults to `0.0`.
        high: The "salt" value, usually the inputs' maximum. Defaults to `1.0`.
        seed: Optional integer seed. Defaults to `None`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: Input tensor of any shape.
        training: Whether to corrupt (training) or pass the input through (inference).
            Defaults to `False`.

    Input shape:
        Any shape.

    Output shape:
        Same shape as the input.

    Raises:
        ValueError: if `rate` is not in [0, 1), `low` or `high` is not a number, `low > high`,
            or `seed` is not `None` or an integer >= 0.

    Example:

    >>> layer = i2dl_keras.layers.SaltPepperNoise(rate=0.2, seed=0)
    >>> x = np.full((2, 8), 0.5, "float32")
    >>> y = layer(x, training=True)  # about 20% of the entries are now 0.0 or 1.0
    """

    def __init__(self, rate=0.1, low=0.0, high=1.0, seed=None, **kwargs):
        super().__init__(rate, seed, **kwargs)
        if not _checks.is_real(low):
            raise ValueError(f"`low` must be a number. Received: low={low!r}")
        if not _checks.is_real(high) or high < low:
            raise ValueError(f"`high` must be a number >= low={low!r}. Received: high={high!r}")
        self.low = float(low)
        self.high = float(high)

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        return salt_pepper_corruption(
            inputs, self.rate, seed=self.seed_generator, low=self.low, high=self.high
        )

    def get_config(self):
        config = super().get_config()
        config.update({"low": self.low, "high": self.high})
        return config
