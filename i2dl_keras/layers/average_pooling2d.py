"""Average pooling over a zero-padded input, with or without counting the padding."""

import keras

from i2dl_keras.layers._pooling_base import ZeroPaddedPooling2D


@keras.saving.register_keras_serializable(package="i2dl_keras")
class AveragePooling2D(ZeroPaddedPooling2D):
    """2D average pooling over an explicitly zero-padded input.

    The input is padded with zeros by `padding`, then each `pool_size` window, moved by
    `strides`, is replaced by its average. With `count_padding=False` (the course's worked
    example) the average is taken over the real values in the window only: the sum divided by
    how many of them there are. With `count_padding=True` the padded zeros count, so border
    windows are divided by the full window size. The output size per spatial dimension is the
    course's `floor((N - F + 2P) / S) + 1` (it holds per dimension; the notes write it squared).

    Worked example (course): the 3x3 matrix 1..9, padded to 4x4 with one row of zeros at the
    bottom and one column at the right (`padding=((0, 1), (0, 1))`), pooled 2x2 with stride 1,
    gives `[[3, 4, 4.5], [6, 7, 7.5], [7.5, 8.5, 9]]`.

    Args:
        pool_size: Window size, an int or a pair `(height, width)`. Defaults to `2`.
        strides: Step of the window, an int or a pair. Defaults to `None` (= `pool_size`).
        padding: Zeros added around the input: an int (every side), a pair `(pad_h, pad_w)`
            (both sides of each dimension) or `((top, bottom), (left, right))`. Each amount
            must be smaller than the pool size along its dimension. Defaults to `0`.
        count_padding: Whether padded zeros count in the average's denominator.
            Defaults to `False`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        4D tensor `(batch_size, height, width, channels)`.

    Output shape:
        `(batch_size, floor((height + top + bottom - pool_h) / stride_h) + 1,
        floor((width + left + right - pool_w) / stride_w) + 1, channels)`.

    Raises:
        ValueError: if `pool_size`, `strides` or `padding` are malformed, a padding amount is
            not smaller than the pool size, `count_padding` is not a bool, or (at build time)
            the input is not 4D or is smaller than the window after padding.

    Example:

    >>> x = np.arange(1, 10, dtype="float32").reshape(1, 3, 3, 1)
    >>> layer = i2dl_keras.layers.AveragePooling2D(2, strides=1, padding=((0, 1), (0, 1)))
    >>> keras.ops.convert_to_numpy(layer(x))[0, :, :, 0].tolist()
    [[3.0, 4.0, 4.5], [6.0, 7.0, 7.5], [7.5, 8.5, 9.0]]
    """

    def __init__(self, pool_size=2, strides=None, padding=0, count_padding=False, **kwargs):
        super().__init__(pool_size=pool_size, strides=strides, padding=padding, **kwargs)
        if not isinstance(count_padding, bool):
            raise ValueError(
                f"`count_padding` must be a bool. Received: count_padding={count_padding!r}"
            )
        self.count_padding = count_padding

    def _average(self, values):
        return keras.ops.average_pool(
            values, pool_size=self.pool_size, strides=self.strides, padding="valid"
        )

    def call(self, inputs):
        mean = self._average(self._pad(inputs))
        if self.count_padding or not any(p for pads in self.padding for p in pads):
            return mean
        # The share of real values in each window; the window sums cancel in the ratio.
        real = self._average(self._pad(keras.ops.ones_like(inputs[:1, :, :, :1])))
        return mean / real

    def get_config(self):
        config = super().get_config()
        config.update({"count_padding": self.count_padding})
        return config
