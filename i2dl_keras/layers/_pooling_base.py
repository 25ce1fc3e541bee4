"""Shared argument handling for the zero-padded pooling layers (not public)."""

import keras

from i2dl_keras.layers import _checks


def pooled_size(size, pool, stride, pad_before, pad_after):
    """The course's `floor((N - F + 2P) / S) + 1` for one dimension, with asymmetric padding."""
    if size is None:
        return None
    return (size + pad_before + pad_after - pool) // stride + 1


class ZeroPaddedPooling2D(keras.layers.Layer):
    """Base class: validates and stores `pool_size`, `strides`, `padding`; computes shapes."""

    def __init__(self, pool_size=2, strides=None, padding=0, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _checks.int_pair("pool_size", pool_size)
        self.strides = self.pool_size if strides is None else _checks.int_pair("strides", strides)
        self.padding = _checks.padding_pairs("padding", padding)
        for pads, pool in zip(self.padding, self.pool_size):
            # A pad as wide as the window would allow windows made only of padding.
            if max(pads) >= pool:
                raise ValueError(
                    "Each padding amount must be smaller than the pool size along its "
                    f"dimension (pool_size={self.pool_size}). Received: padding={padding!r}"
                )

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"`{type(self).__name__}` expects 4D input (batch, height, width, channels). "
                f"Received: input_shape={input_shape}"
            )
        for axis, name in ((1, "height"), (2, "width")):
            size = input_shape[axis]
            out = pooled_size(size, self.pool_size[axis - 1], 1, *self.padding[axis - 1])
            if size is not None and out < 1:
                raise ValueError(
                    f"The padded input {name} is smaller than the pool size "
                    f"{self.pool_size[axis - 1]}. Received: input_shape={input_shape}"
                )

    def _pad(self, inputs):
        (top, bottom), (left, right) = self.padding
        if top == bottom == left == right == 0:
            return inputs
        return keras.ops.pad(inputs, [[0, 0], [top, bottom], [left, right], [0, 0]])

    def compute_output_shape(self, input_shape):
        return (
            input_shape[0],
            pooled_size(input_shape[1], self.pool_size[0], self.strides[0], *self.padding[0]),
            pooled_size(input_shape[2], self.pool_size[1], self.strides[1], *self.padding[1]),
            input_shape[3],
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "pool_size": list(self.pool_size),
                "strides": list(self.strides),
                "padding": [list(p) for p in self.padding],
            }
        )
        return config
