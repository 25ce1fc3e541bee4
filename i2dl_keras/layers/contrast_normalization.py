"""Local contrast normalization within or across feature maps."""

import keras

from i2dl_keras.layers import _checks

_MODES = ("within", "across")


@keras.saving.register_keras_serializable(package="i2dl_keras")
class ContrastNormalization(keras.layers.Layer):
    """Local contrast normalization: standardise each value against its neighbourhood.

    The course lists contrast normalization "between/across feature maps" as the normalization
    step of early CNNs (Jarrett et al. 2009): it equalises the feature maps so that a feature
    stands out by its local contrast, not its absolute level. For every value `x` this layer
    takes a neighbourhood `N`, its mean `mu_N` and its (population) variance `var_N`, and returns

        `y = (x - mu_N) / sqrt(var_N + epsilon)`.

    - `mode="within"`: `N` is the `size x size` spatial window centred on the value, inside its
      own feature map (channel).
    - `mode="across"`: `N` is the `size` adjacent feature maps centred on the value's channel,
      at the same spatial position.

    At the borders the window is cut to the values that exist: the padding is not counted in the
    mean or the variance. Jarrett et al. weight the window with a Gaussian and divide by
    `max(c, sigma)`; this layer uses the plain (box) window and `sqrt(var + epsilon)`, which is
    the "subtract the local mean, divide by the local standard deviation" of the course. The
    window statistics are computed from `size ** 2` (within) or `size` (across) shifted copies
    of the input, in two passes for numerical stability, so keep `size` small (3 to 7).

    Args:
        size: Width of the neighbourhood, a positive odd integer. Defaults to `3`.
        mode: `"within"` (spatial window per feature map) or `"across"` (window over feature
            maps at each position). Defaults to `"within"`.
        epsilon: Added to the variance before the square root, a float > 0. Defaults to `1e-5`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        4D tensor `(batch_size, height, width, channels)` (channels last).

    Output shape:
        Same shape as the input.

    Raises:
        ValueError: if `size` is not a positive odd integer, `mode` is not one of `"within"`,
            `"across"`, `epsilon` is not a float > 0, or (at build time) the input is not 4D
            with a known number of channels.

    Example:

    >>> layer = i2dl_keras.layers.ContrastNormalization(size=3, mode="across")
    >>> tuple(layer(np.random.rand(2, 8, 8, 6).astype("float32")).shape)
    (2, 8, 8, 6)
    """

    def __init__(self, size=3, mode="within", epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        if not _checks.is_int(size) or size < 1 or size % 2 == 0:
            raise ValueError(f"`size` must be a positive odd integer. Received: size={size!r}")
        self.size = int(size)
        if mode not in _MODES:
            raise ValueError(f"`mode` must be one of {_MODES}. Received: mode={mode!r}")
        self.mode = mode
        self.epsilon = _checks.positive_float("epsilon", epsilon)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(
                "`ContrastNormalization` expects 4D input (batch, height, width, channels) "
                f"with a known number of channels. Received: input_shape={input_shape}"
            )

    def _neighbours(self, padded):
        """Yields, for every offset in the window, the padded tensor shifted by that offset."""
        span = self.size - 1

        def window(k):
            return slice(k, k - span if k < span else None)

        for di in range(self.size):
            if self.mode == "across":
                yield padded[..., window(di)]
                continue
            for dj in range(self.size):
                yield padded[:, window(di), window(dj), :]

    def call(self, inputs):
        half = self.size // 2
        if self.mode == "within":
            pad = [[0, 0], [half, half], [half, half], [0, 0]]
            ones = keras.ops.ones_like(inputs[:1, :, :, :1])
        else:
            pad = [[0, 0], [0, 0], [0, 0], [half, half]]
            ones = keras.ops.ones_like(inputs[:1, :1, :1, :])
        # Zero padding plus a 0/1 map of which neighbours exist: the border cuts the window.
        values = list(self._neighbours(keras.ops.pad(inputs, pad)))
        exists = list(self._neighbours(keras.ops.pad(ones, pad)))
        count = sum(exists[1:], exists[0])
        mean = sum(values[1:], values[0]) / count
        # Two passes (mean first, then squared deviations) rather than E[x^2] - mean^2, which
        # loses most of its digits in float32 when a window's spread is small.
        deviations = [e * keras.ops.square(v - mean) for v, e in zip(values, exists)]
        variance = sum(deviations[1:], deviations[0]) / count
        return (inputs - mean) / keras.ops.sqrt(variance + self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"size": self.size, "mode": self.mode, "epsilon": self.epsilon})
        return config
