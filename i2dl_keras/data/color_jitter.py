"""Colour augmentation for tf.data pipelines of 0-255 images: brightness, contrast, saturation."""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
import tensorflow as tf

__all__ = ["color_jitter"]


def _check(name: str, value, upper: float | None = None, closed: bool = True) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and value >= 0 and (upper is None or value < upper or (closed and value == upper)):
        return float(value)
    bound = "" if upper is None else (f" and at most {upper}" if closed else f" and below {upper}")
    raise ValueError(f"`{name}` must be a number of 0 or more{bound}. Received: {name}={value!r}")


def color_jitter(
    brightness: float = 0.0,
    contrast: float = 0.0,
    saturation: float = 0.0,
    seed: int | None = None,
) -> Callable[[tf.Tensor], tf.Tensor]:
    """A random brightness, contrast and saturation change per image, for 0-255 pixels.

    Built from Keras' own preprocessing layers, applied in this order, each drawing one factor
    per image: `keras.layers.RandomBrightness` adds `d * 255` with `d` uniform in
    `[-brightness, brightness]`; `keras.layers.RandomContrast` maps each channel to
    `(x - mean) * f + mean` with `f` uniform in `[1 - contrast, 1 + contrast]`;
    `keras.layers.RandomSaturation` converts to HSV and multiplies the saturation by a factor
    between `1 / (1 + saturation)` and `1 + saturation` (then clips it to 1), keeping hue and
    value. Every result is clipped to 0-255. A zero turns its change off; saturation needs RGB.

    Args:
        brightness: Largest brightness shift as a fraction of 255, in [0, 1]. Defaults to `0.0`.
        contrast: Largest relative contrast change, in [0, 1). Defaults to `0.0`.
        saturation: Saturation factors span `[1 / (1 + saturation), 1 + saturation]`; 0 or
            more. Defaults to `0.0`.
        seed: Seed of the first layer (the next ones take `seed + 1`, `seed + 2`); with a
            global seed (`keras.utils.set_random_seed`) the changes repeat. Defaults to `None`.

    Returns:
        A function from float images `[batch, height, width, channels]` in 0-255 to float32
        images of the same shape, for use inside a `tf.data` map (or eagerly).

    Raises:
        ValueError: if a range is negative or too large, or (when called) `saturation` is set
            for images without three channels.

    Example:

    >>> jitter = i2dl_keras.data.color_jitter(brightness=0.2, contrast=0.2, saturation=0.5)
    >>> augmented = jitter(tf.random.uniform((8, 32, 32, 3), 0, 255))
    """
    brightness = _check("brightness", brightness, 1.0)
    contrast = _check("contrast", contrast, 1.0, closed=False)
    saturation = _check("saturation", saturation)
    seeds = (None, None, None) if seed is None else (seed, seed + 1, seed + 2)
    layers = []
    if brightness:
        layers.append(keras.layers.RandomBrightness(brightness, (0, 255), seed=seeds[0]))
    if contrast:
        # A pair (c, c) spans [1 - c, 1 + c]; Keras 3 reads a single float c as [1, 1 + c].
        pair = (contrast, contrast)
        layers.append(keras.layers.RandomContrast(pair, (0, 255), seed=seeds[1]))
    saturate = None
    if saturation:
        # Keras' factor f scales the saturation by f / (1 - f): this range gives
        # [1 / (1 + s), 1 + s]. The layer clips the saturation channel to `value_range`, which
        # must then be (0, 1) for the channel to stay a valid saturation, so it works on
        # pixels scaled to [0, 1].
        factor = (1.0 / (2.0 + saturation), (1.0 + saturation) / (2.0 + saturation))
        saturate = keras.layers.RandomSaturation(factor, (0, 1), seed=seeds[2])

    def jitter(images: tf.Tensor) -> tf.Tensor:
        images = tf.cast(images, tf.float32)
        for layer in layers:
            images = layer(images, training=True)
        if saturate is not None:
            channels = images.shape[-1]
            if channels != 3:
                raise ValueError(
                    f"`saturation` needs RGB images (3 channels), got {channels} channel(s). "
                    f"Received: saturation={saturation}"
                )
            images = saturate(images / 255.0, training=True) * 255.0
        return tf.clip_by_value(images, 0.0, 255.0)

    return jitter
