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

    With `return_indices=True` the layer also returns where each maximum came from, for
    `i2dl_keras.layers.MaxUnpooling2D` (the "unpooling" half of the course's transposed
    convolution, as in SegNet): for every output element, the flat position
    `row * width + col` of the winning input element within its own image and channel, or
    `-1` when a padded zero was the maximum (it has no position in the input). Among equal
    values in a window, the index names one of them.

    Args:
        pool_size: Window size, an int or a pair `(height, width)`. Defaults to `2`.
        strides: Step of the window, an int or a pair. Defaults to `None` (= `pool_size`).
        padding: Zeros added around the input: an int (every side), a pair `(pad_h, pad_w)`
            (both sides of each dimension) or `((top, bottom), (left, right))`. Each amount
            must be smaller than the pool size along its dimension. Defaults to `0`.
        return_indices: Whether to return `(pooled, indices)` instead of `pooled`, with
            `indices` an `int32` tensor of the pooled shape as described above. Defaults to
            `False`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        4D tensor `(batch_size, height, width, channels)`.

    Output shape:
        `(batch_size, floor((height + top + bottom - pool_h) / stride_h) + 1,
        floor((width + left + right - pool_w) / stride_w) + 1, channels)`; with
        `return_indices=True`, a pair of tensors of that shape (values, then `int32` indices).

    Raises:
        ValueError: if `pool_size`, `strides` or `padding` are malformed, a padding amount is
            not smaller than the pool size, `return_indices` is not a bool, or (at build time)
            the input is not 4D or is smaller than the window after padding.

    Example:

    >>> x = np.arange(1, 16, dtype="float32").reshape(1, 3, 5, 1)
    >>> y = i2dl_keras.layers.MaxPooling2D(pool_size=3, strides=2, padding=1)(x)
    >>> keras.ops.convert_to_numpy(y)[0, :, :, 0].tolist()
    [[7.0, 9.0, 10.0], [12.0, 14.0, 15.0]]
    >>> layer = i2dl_keras.layers.MaxPooling2D(3, strides=2, padding=1, return_indices=True)
    >>> _, indices = layer(x)  # 7 sits at row 1, column 1 of the 3x5 input: 1 * 5 + 1 = 6
    >>> keras.ops.convert_to_numpy(indices)[0, :, :, 0].tolist()
    [[6, 8, 9], [11, 13, 14]]
    """

    def __init__(self, pool_size=2, strides=None, padding=0, return_indices=False, **kwargs):
        super().__init__(pool_size=pool_size, strides=strides, padding=padding, **kwargs)
        if not isinstance(return_indices, bool):
            raise ValueError(
                f"`return_indices` must be a bool. Received: return_indices={return_indices!r}"
            )
        self.return_indices = return_indices

    def call(self, inputs):
        if self.return_indices:
            return self._pool_with_indices(inputs)
        return keras.ops.max_pool(
            self._pad(inputs), pool_size=self.pool_size, strides=self.strides, padding="valid"
        )

    def _pool_with_indices(self, inputs):
        ops = keras.ops
        (pool_h, pool_w), (stride_h, stride_w) = self.pool_size, self.strides
        (top, _), (left, _) = self.padding
        padded = self._pad(inputs)
        shape = ops.shape(inputs)
        height, width = shape[1], shape[2]
        padded_shape = ops.shape(padded)
        out_h = (padded_shape[1] - pool_h) // stride_h + 1
        out_w = (padded_shape[2] - pool_w) // stride_w + 1
        # One strided view per window offset, stacked on a new axis in row-major window order:
        # (batch, out_h, out_w, pool_h * pool_w, channels).
        windows = ops.stack(
            [
                padded[
                    :,
                    di : di + (out_h - 1) * stride_h + 1 : stride_h,
                    dj : dj + (out_w - 1) * stride_w + 1 : stride_w,
                    :,
                ]
                for di in range(pool_h)
                for dj in range(pool_w)
            ],
            axis=3,
        )
        values = ops.max(windows, axis=3)
        offset = ops.cast(ops.argmax(windows, axis=3), "int32")
        # The winner's row and column in the unpadded input.
        rows = ops.reshape(ops.arange(out_h, dtype="int32") * stride_h - top, (1, -1, 1, 1))
        cols = ops.reshape(ops.arange(out_w, dtype="int32") * stride_w - left, (1, 1, -1, 1))
        row = rows + offset // pool_w
        col = cols + offset % pool_w
        height, width = ops.cast(height, "int32"), ops.cast(width, "int32")
        inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
        indices = ops.where(inside, row * width + col, -1)
        return values, ops.cast(indices, "int32")

    def compute_output_shape(self, input_shape):
        shape = super().compute_output_shape(input_shape)
        return (shape, shape) if self.return_indices else shape

    def compute_output_spec(self, inputs):
        shape = super().compute_output_shape(inputs.shape)
        values = keras.KerasTensor(shape, dtype=self.compute_dtype)
        if not self.return_indices:
            return values
        return values, keras.KerasTensor(shape, dtype="int32")

    def get_config(self):
        config = super().get_config()
        config.update({"return_indices": self.return_indices})
        return config
