"""Masking corruption for denoising autoencoders: zero a random fraction, in training only."""

import keras

from i2dl_keras.layers._shape_preserving import RandomCorruptionLayer
from i2dl_keras.layers.corruption import masking_corruption


@keras.saving.register_keras_serializable(package="i2dl_keras")
class MaskingNoise(RandomCorruptionLayer):
    """Sets a random fraction of the inputs to zero, without rescaling, in training only.

    The "masking noise" corruption of the denoising autoencoder (Vincent et al., 2008): each
    element is independently set to `0` with probability `rate`, and the rest pass through
    unchanged. Unlike `keras.layers.Dropout`, the kept elements are *not* scaled by
    `1 / (1 - rate)`: the corrupted input must look like a damaged version of the data, and the
    target stays the clean input. At inference the layer is the identity. The corruption is
    `i2dl_keras.layers.masking_corruption`, drawn from the layer's own seed generator.

    Args:
        rate: Probability that an element is zeroed, a float in [0, 1). Defaults to `0.1`.
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
        ValueError: if `rate` is not in [0, 1) or `seed` is not `None` or an integer >= 0.

    Example:

    >>> layer = i2dl_keras.layers.MaskingNoise(rate=0.25, seed=0)
    >>> y = layer(np.ones((2, 8), "float32"), training=True)  # about 25% zeros, the rest 1.0
    """

    def __init__(self, rate=0.1, seed=None, **kwargs):
        super().__init__(rate, seed, **kwargs)

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        return masking_corruption(inputs, self.rate, seed=self.seed_generator)
