"""Ten-crop test-time augmentation: the corner and centre crops of images and their mirrors."""

from __future__ import annotations

import keras

from i2dl_keras.layers import _checks


def _flip_flag(value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"`flip` must be True or False. Received: flip={value!r}")
    return value


def _check_fits(size: tuple[int, int], height, width, requested) -> None:
    for extent, crop in ((height, size[0]), (width, size[1])):
        if isinstance(extent, int) and crop > extent:
            raise ValueError(
                f"`size` must fit in the images ({height}x{width}). Received: size={requested!r}"
            )


def ten_crops(images, size, flip: bool = True) -> list:
    """The four corner crops and the centre crop of each image, then their mirror images.

    For an `H x W` image and `h x w` crops, the corner crops start at rows `0` and `H - h` and
    columns `0` and `W - w`; the centre crop starts at row `(H - h) // 2` and column
    `(W - w) // 2`. The order is top-left, top-right, bottom-left, bottom-right, centre; with
    `flip`, the same five crops follow, each mirrored left to right (its columns reversed).

    Args:
        images: `[batch, height, width, channels]` images (channels last).
        size: Crop size, an int `s` for `s x s` or a pair `(h, w)`; at most the image size.
        flip: Whether to add the mirrored crops (ten crops) or not (five). Defaults to `True`.

    Returns:
        A list of 10 (or 5) tensors `[batch, h, w, channels]`, in the order above.

    Raises:
        ValueError: if `size` is not a positive int or a pair of them or does not fit in the
            images, or `flip` is not a bool.

    Example:

    >>> crops = i2dl_keras.layers.ten_crops(np.zeros((2, 32, 32, 3)), 28)
    >>> len(crops), tuple(crops[0].shape)
    (10, (2, 28, 28, 3))
    """
    h, w = _checks.int_pair("size", size)
    flip = _flip_flag(flip)
    images = keras.ops.convert_to_tensor(images)
    batch, height, width, channels = keras.ops.shape(images)
    _check_fits((h, w), height, width, size)
    starts = [
        (0, 0),
        (0, width - w),
        (height - h, 0),
        (height - h, width - w),
        ((height - h) // 2, (width - w) // 2),
    ]
    crops = [
        keras.ops.slice(images, [0, top, left, 0], [batch, h, w, channels]) for top, left in starts
    ]
    if flip:
        crops += [keras.ops.flip(crop, axis=2) for crop in crops]
    return crops


@keras.saving.register_keras_serializable(package="i2dl_keras")
class TenCrop(keras.layers.Layer):
    """Cuts each image into its four corner crops, its centre crop and their mirror images.

    Ten-crop evaluation (Krizhevsky et al., 2012) averages a classifier's probabilities over
    these views of each test image, `p(y | x) = (1/10) sum_k p(y | crop_k(x))`: this layer
    returns the crops (`i2dl_keras.layers.ten_crops`), the classifier runs on each, and
    `keras.layers.Average` averages them (see the example). With `flip=False` it returns the
    five crops only, for images that are not mirror-symmetric (digits, text). A classifier that
    resizes its input itself (as the `i2dl_keras.apps` models do) can take crops smaller than
    its own input size. The layer has no weights and behaves the same in training.

    Args:
        size: Crop size, an int `s` for `s x s` or a pair `(h, w)`; at most the input size.
        flip: Whether to add the mirrored crops (ten crops) or not (five). Defaults to `True`.
        **kwargs: Base layer keyword arguments, such as `name`.

    Call arguments:
        inputs: Images `[batch, height, width, channels]`.

    Input shape:
        `(batch, height, width, channels)` with `height >= h` and `width >= w`.

    Output shape:
        A list of 10 (or 5) tensors `(batch, h, w, channels)`: top-left, top-right,
        bottom-left, bottom-right, centre, then the same mirrored.

    Raises:
        ValueError: if `size` is not a positive int or a pair of them (or does not fit in the
            input), or `flip` is not a bool.

    Example:

    >>> pixels = keras.Input((160, 160, 3))
    >>> crops = i2dl_keras.layers.TenCrop(144)(pixels)
    >>> probabilities = keras.layers.Average()([classifier(crop) for crop in crops])
    >>> ten_crop_classifier = keras.Model(pixels, probabilities)
    """

    def __init__(self, size, flip=True, **kwargs):
        super().__init__(**kwargs)
        self.size = _checks.int_pair("size", size)
        self.flip = _flip_flag(flip)

    def build(self, input_shape):
        _check_fits(self.size, input_shape[1], input_shape[2], self.size)

    def call(self, inputs):
        return ten_crops(inputs, self.size, self.flip)

    def compute_output_shape(self, input_shape):
        _check_fits(self.size, input_shape[1], input_shape[2], self.size)
        shape = (input_shape[0], *self.size, input_shape[3])
        return [shape] * (10 if self.flip else 5)

    def get_config(self):
        config = super().get_config()
        config.update({"size": list(self.size), "flip": self.flip})
        return config
