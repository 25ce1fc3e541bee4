"""Max pooling over a zero-padded input, as in the course's worked example."""

import keras

from i2dl_keras.layers._pooling_base import ZeroPaddedPooling2D


@keras.saving.register_keras_serializable(package="i2dl_keras")
class MaxPooling2D(ZeroPaddedPooling2D):
    """2D max pooling over an explicitly zero-padded input.

    The input is padded with zeros by `padding`, then each `pool_size` window, moved by
    `strides`, is replaced by its maximum. The output size per spatial dimension is the
    course's `floor((N - F + 2P) / S) + 1` (the notes write it squared for square inputs; it
    holds per dimension, with `2P` read as top + bottom or left + right padding).

    The padded zeros take part in the maximum, as in the course's worked example. This differs
    from `keras.layers.MaxPooling2D(padding="same")`, whose padding never wins: on negative
    inputs this layer returns 0 in windows that touch the border, Keras' returns the largest
    real value. With `padding=0` the two agree with Keras' `padding="valid"`.

    Args:
        pool_size: Window size, an int or a pair `(height, width)`. Defaults to `2`.
        strides: Step of the window, an int or a pair. Defaults to `None` (= `pool_size`).
        padding: Zeros added around the input: an int (every side), a pair `(pad_h, pad_w)`
            (both sides of each dimension) or `((top, bottom), (left, right))`. Each amount
            must be smaller than the pool size along its dimension. Defaults to `0`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        4D tensor `(batch_size, height, width, channels)`.

    Output shape:
        `(batch_size, floor((height + top + bottom - pool_h) / stride_h) + 1,
        floor((width + left + right - pool_w) / stride_w) + 1, channels)`.

    Raises:
        ValueError: if `pool_size`, `strides` or `padding` are malformed, a padding amount is
            not smaller than the pool size, or (at build time) the input is not 4D or is
            smaller than the window after padding.

    Example:

    >>> x = np.arange(1, 16, dtype="float32").reshape(1, 3, 5, 1)
    >>> y = i2dl_keras.layers.MaxPooling2D(pool_size=3, strides=2, padding=1)(x)
    >>> keras.ops.convert_to_numpy(y)[0, :, :, 0].tolist()
    [[7.0, 9.0, 10.0], [12.0, 14.0, 15.0]]
    """

    def call(self, inputs):
        return keras.ops.max_pool(
            self._pad(inputs), pool_size=self.pool_size, strides=self.strides, padding="valid"
        )
