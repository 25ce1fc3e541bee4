"""Max unpooling: puts pooled maxima back where max pooling found them."""

import keras

from i2dl_keras.layers import _checks


def _unpooled_size(size, pool, stride, pad_before, pad_after):
    """The smallest input size that `floor((N - F + 2P) / S) + 1` maps to `size`."""
    if size is None:
        return None
    return (size - 1) * stride + pool - pad_before - pad_after


@keras.saving.register_keras_serializable(package="i2dl_keras")
class MaxUnpooling2D(keras.layers.Layer):
    """2D max unpooling: scatters pooled values back to the positions their maxima came from.

    The inverse of `i2dl_keras.layers.MaxPooling2D(..., return_indices=True)` up to the values
    pooling threw away: each pooled value goes back to the input position recorded in
    `indices`, every other position is zero. The course builds its learned upsampling
    ("transposed convolution: unpooling + learned conv filter", as in SegNet's decoder) from
    this and a convolution that fills in the zeros. An index of `-1` (a padded zero won the
    window) places nothing. A position recorded by several overlapping windows receives the
    mean of their values: right after pooling they are all that position's value, so it comes
    back once, not summed.

    The output's spatial size is `output_size` when given. Otherwise it is the smallest input
    size that pooling with `pool_size`, `strides` and `padding` maps to the input's size,
    `(N_out - 1) * S + F - 2P` per dimension: exact when the windows tiled the pooled input
    without a remainder (e.g. a 2x2 window with stride 2 on an even size). Pooling floors away
    the remainder, so pass `output_size` for other sizes.

    Args:
        pool_size: The pooling window, an int or a pair `(height, width)`; as in the
            `MaxPooling2D` that made the indices. Defaults to `2`.
        strides: The pooling step, an int or a pair. Defaults to `None` (= `pool_size`).
        padding: The pooling's zero padding: an int, a pair `(pad_h, pad_w)` or
            `((top, bottom), (left, right))`. Defaults to `0`.
        output_size: The unpooled `(height, width)`, i.e. the pooling input's size, an int or
            a pair of positive ints. Defaults to `None` (computed as above).
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: Pooled values, `(batch_size, pooled_height, pooled_width, channels)`.
        indices: Integer tensor of the same shape: for each value, the flat position
            `row * width + col` in its image and channel of the unpooled output, or `-1`.

    Input shape:
        4D tensors `(batch_size, pooled_height, pooled_width, channels)`, twice.

    Output shape:
        `(batch_size, height, width, channels)` with `height, width` as described above.

    Raises:
        ValueError: if an argument is malformed, or (at build time) the input is not 4D or the
            output size is unknown because the pooled size is not fixed and `output_size` is
            not given.

    Example:

    >>> x = np.array([[1, 2, 0, 5], [4, 3, 6, 0]], "float32").reshape(1, 2, 4, 1)
    >>> pool = i2dl_keras.layers.MaxPooling2D(pool_size=2, return_indices=True)
    >>> pooled, indices = pool(x)  # [[4, 6]] from positions 4 and 6
    >>> y = i2dl_keras.layers.MaxUnpooling2D(pool_size=2)(pooled, indices)
    >>> keras.ops.convert_to_numpy(y)[0, :, :, 0].tolist()
    [[0.0, 0.0, 0.0, 0.0], [4.0, 0.0, 6.0, 0.0]]
    """

    def __init__(self, pool_size=2, strides=None, padding=0, output_size=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _checks.int_pair("pool_size", pool_size)
        self.strides = self.pool_size if strides is None else _checks.int_pair("strides", strides)
        self.padding = _checks.padding_pairs("padding", padding)
        self.output_size = (
            None if output_size is None else _checks.int_pair("output_size", output_size)
        )

    def build(self, inputs_shape, indices_shape):
        if len(inputs_shape) != 4:
            raise ValueError(
                "`MaxUnpooling2D` expects 4D input (batch, height, width, channels). "
                f"Received: input_shape={inputs_shape}"
            )
        if len(indices_shape) != 4 or any(
            a is not None and b is not None and a != b for a, b in zip(inputs_shape, indices_shape)
        ):
            raise ValueError(
                f"`indices` must have the shape of the pooled input {inputs_shape}. "
                f"Received: indices_shape={indices_shape}"
            )
        if self.output_size is None and None in (inputs_shape[1], inputs_shape[2]):
            raise ValueError(
                "`MaxUnpooling2D` needs `output_size` when the pooled height or width is not "
                f"fixed. Received: input_shape={inputs_shape}"
            )

    def _output_hw(self, input_shape):
        if self.output_size is not None:
            return self.output_size
        return tuple(
            _unpooled_size(input_shape[axis], pool, stride, *pads)
            for axis, pool, stride, pads in zip((1, 2), self.pool_size, self.strides, self.padding)
        )

    def call(self, inputs, indices):
        ops = keras.ops
        height, width = self._output_hw(inputs.shape)
        shape = ops.shape(inputs)
        batch, channels = shape[0], shape[3]
        plane = height * width
        indices = ops.cast(indices, "int32")
        # One flat buffer per (image, channel) plane, plus a last slot that takes the `-1`
        # indices and is cut off afterwards.
        slot = ops.where(indices < 0, plane, indices)
        image = ops.reshape(ops.arange(batch, dtype="int32"), (-1, 1, 1, 1))
        channel = ops.reshape(ops.arange(channels, dtype="int32"), (1, 1, 1, -1))
        flat = (image * (plane + 1) + slot) * channels + channel
        flat = ops.reshape(flat, (-1, 1))
        updates = ops.reshape(inputs, (-1,))
        zeros = ops.zeros((batch * (plane + 1) * channels,), dtype=inputs.dtype)
        # Sum and count per position: a position recorded by several windows gets the mean.
        sums = ops.scatter_update(zeros, flat, updates, reduction="add")
        counts = ops.scatter_update(zeros, flat, ops.ones_like(updates), reduction="add")
        buffer = sums / ops.maximum(counts, 1.0)
        buffer = ops.reshape(buffer, (batch, plane + 1, channels))[:, :plane, :]
        return ops.reshape(buffer, (batch, height, width, channels))

    def compute_output_shape(self, input_shape, indices_shape=None):
        height, width = self._output_hw(input_shape)
        return (input_shape[0], height, width, input_shape[3])

    def compute_output_spec(self, inputs, indices):
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "pool_size": list(self.pool_size),
                "strides": list(self.strides),
                "padding": [list(p) for p in self.padding],
                "output_size": None if self.output_size is None else list(self.output_size),
            }
        )
        return config
