"""Raw decoded pixels in, the model's input out: dtype, channels, size and scale."""

import keras
from keras import ops

from i2dl_keras.layers import _checks

# ITU-R BT.601 luma weights, as PIL's "L" mode and `tf.image.rgb_to_grayscale` use.
_LUMA = (0.299, 0.587, 0.114)


@keras.saving.register_keras_serializable(package="i2dl_keras")
class ImagePreprocessing(keras.layers.Layer):
    """Turns images as a decoder gives them into what the network was trained on.

    The first layer of every image app's model, so that `model.predict` takes the same raw
    pixels a user holds (uint8 0-255 from PNG/JPEG, or any integer or float dtype on the same
    0-255 scale) and the saved model needs no preprocessing outside it: the pixels are cast to
    float, brought to `channels` (an alpha channel is dropped, colour becomes luma
    `0.299 R + 0.587 G + 0.114 B`, grey is repeated into three channels), resized to `size`
    (bilinear, antialiased when shrinking; skipped when the input already has that size) and
    mapped to `pixels * scale + offset`.

    Args:
        size: `(height, width)` to resize to, or `None` to keep each input's size (fully
            convolutional models). Defaults to `None`.
        channels: Output channels, 1 or 3. Defaults to `3`.
        scale: Factor applied to the 0-255 pixels. Defaults to `1 / 255`.
        offset: Added after scaling. Defaults to `0.0`.
        **kwargs: Base layer keyword arguments, such as `name`.

    Input shape:
        `(batch, height, width, c)` with `c` in 1, 3 or 4, or `(batch, height, width)` for grey
        images without a channel axis.

    Output shape:
        `(batch, size[0], size[1], channels)`, float32 (height and width of the input when
        `size` is `None`).

    Raises:
        ValueError: if `size` is not `None` or two positive integers, `channels` is not 1 or 3,
            or `scale`/`offset` are not finite numbers.

    Example:

    >>> layer = i2dl_keras.layers.ImagePreprocessing(size=(28, 28), channels=1)
    >>> layer(np.full((2, 56, 56, 3), 255, "uint8")).shape  # (2, 28, 28, 1), values 1.0
    """

    def __init__(self, size=None, channels=3, scale=1.0 / 255.0, offset=0.0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if size is not None:
            if not isinstance(size, (tuple, list)) or len(size) != 2:
                raise ValueError(f"`size` must be None or (height, width). Received: size={size!r}")
            size = tuple(_checks.positive_int("size", s) for s in size)
        if channels not in (1, 3):
            raise ValueError(f"`channels` must be 1 or 3. Received: channels={channels!r}")
        self.size = size
        self.channels = channels
        self.scale = _finite("scale", scale)
        self.offset = _finite("offset", offset)

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        if len(x.shape) == 3:
            x = ops.expand_dims(x, -1)
        found = x.shape[-1]
        if found == 1 and self.channels == 3:
            x = ops.repeat(x, 3, axis=-1)
        elif found != self.channels:
            # RGB from any channel count, also when it is only known at run time: grey (with or
            # without alpha) is repeated, an alpha channel after RGB is dropped.
            count = ops.shape(x)[-1]
            if isinstance(count, int):
                index = [0, 0, 0] if count < 3 else [0, 1, 2]
            else:
                index = ops.where(count < 3, [0, 0, 0], [0, 1, 2])
            x = ops.take(x, index, axis=-1)
            if self.channels == 1:
                x = ops.sum(x * ops.convert_to_tensor(_LUMA, "float32"), axis=-1, keepdims=True)
        if self.size is not None and tuple(x.shape[1:3]) != self.size:
            x = ops.image.resize(x, self.size, interpolation="bilinear", antialias=True)
        return x * self.scale + self.offset

    def compute_output_shape(self, input_shape):
        height, width = self.size if self.size is not None else tuple(input_shape[1:3])
        return (input_shape[0], height, width, self.channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "size": list(self.size) if self.size is not None else None,
                "channels": self.channels,
                "scale": self.scale,
                "offset": self.offset,
            }
        )
        return config


def _finite(name, value):
    if not _checks.is_real(value) or value != value or abs(value) == float("inf"):
        raise ValueError(f"`{name}` must be a finite number. Received: {name}={value!r}")
    return float(value)
