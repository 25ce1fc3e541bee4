"""GoogLeNet (Szegedy et al., 2015) built from `InceptionBlock`, with a width multiplier."""

from __future__ import annotations

import keras

from i2dl_keras.layers.inception_block import InceptionBlock
from i2dl_keras.models.lenet5 import (
    _dropout_rate,
    _input_shape,
    _output_activation,
    _positive_float,
    _positive_int,
    _predictions,
    _scaled,
)

# Table 1 of the paper: (name, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj), and a
# 3x3/2 max pool before blocks 4a and 5a.
_GOOGLENET_BLOCKS = (
    ("3a", 64, 96, 128, 16, 32, 32),
    ("3b", 128, 128, 192, 32, 96, 64),
    ("4a", 192, 96, 208, 16, 48, 64),
    ("4b", 160, 112, 224, 24, 64, 64),
    ("4c", 128, 128, 256, 24, 64, 64),
    ("4d", 112, 144, 288, 32, 64, 64),
    ("4e", 256, 160, 320, 32, 128, 128),
    ("5a", 256, 160, 320, 32, 128, 128),
    ("5b", 384, 192, 384, 48, 128, 128),
)
_POOL_BEFORE = ("4a", "5a")


def inception_net(
    input_shape: tuple[int | None, int | None, int] = (224, 224, 3),
    num_classes: int = 1000,
    width_multiplier: float = 1.0,
    dropout: float = 0.4,
    include_top: bool = True,
    output_activation: str | None = "softmax",
    name: str = "inception_net",
) -> keras.Model:
    """Builds GoogLeNet (Inception v1) from nine `InceptionBlock`s with dimension reductions.

    Szegedy et al. (2015), "Going Deeper with Convolutions", table 1: a stem (7x7/2 convolution,
    3x3/2 max pool, 1x1 and 3x3 convolutions, 3x3/2 max pool), inception blocks 3a-3b, a max pool,
    4a-4e, a max pool, 5a-5b, global average pooling, dropout (40%) and a dense classifier. Every
    convolution is ReLU-activated and "same"-padded and every pool "same"-padded, so the total
    stride is 32 and any input of at least 32x32 works (`None` spatial sizes included).
    `width_multiplier` scales every filter count (at least 1 filter each), which gives small
    GoogLeNets for small images, e.g. `width_multiplier=0.25` on 32x32 inputs.

    Left out from the paper: the two auxiliary classifiers used only during training, and the
    local response normalization of the stem. At width 1.0 with 1000 classes the model has
    6,998,552 parameters (the paper's table: about 6.8M without biases).

    Classification output follows the `i2dl_keras.models` convention: a dense layer named
    `"logits"`, then `output_activation` as a layer named `"predictions"` (`None` for logits).

    Args:
        input_shape: `(height, width, channels)`; height and width may be `None` and must
            otherwise be at least 32. Defaults to `(224, 224, 3)`.
        num_classes: Number of classes. Defaults to `1000`.
        width_multiplier: Scales the filters of every convolution. Defaults to `1.0`.
        dropout: Dropout rate before the classifier; `0` for none. Defaults to `0.4`.
        include_top: Whether to end in pooling and the classifier; if `False`, the model
            returns the feature map of block 5b. Defaults to `True`.
        output_activation: Activation after the logits, or `None`. Defaults to `"softmax"`.
        name: Model name. Defaults to `"inception_net"`.

    Returns:
        A functional `keras.Model`.

    Raises:
        ValueError: if an argument is out of range or the input is smaller than 32.

    Example:

    >>> model = i2dl_keras.models.inception_net(
    ...     input_shape=(32, 32, 3), num_classes=10, width_multiplier=0.25
    ... )
    >>> model.output_shape
    (None, 10)
    """
    input_shape = _input_shape(input_shape, allow_none=True)
    num_classes = _positive_int("num_classes", num_classes)
    width_multiplier = _positive_float("width_multiplier", width_multiplier)
    dropout = _dropout_rate("dropout", dropout)
    output_activation = _output_activation(output_activation)
    for size in input_shape[:2]:
        if size is not None and size < 32:
            raise ValueError(
                "`input_shape` is too small for inception_net: its total stride is 32, so height "
                f"and width must be at least 32. Received: input_shape={input_shape}"
            )

    def width(filters):
        return _scaled(filters, width_multiplier)

    def conv(x, filters, kernel, strides, name):
        return keras.layers.Conv2D(
            width(filters), kernel, strides=strides, padding="same", activation="relu", name=name
        )(x)

    def pool(x, name):
        return keras.layers.MaxPooling2D(3, strides=2, padding="same", name=name)(x)

    inputs = keras.Input(input_shape, name="images")
    x = conv(inputs, 64, 7, 2, "stem_conv_7x7")
    x = pool(x, "stem_pool1")
    x = conv(x, 64, 1, 1, "stem_conv_1x1")
    x = conv(x, 192, 3, 1, "stem_conv_3x3")
    x = pool(x, "stem_pool2")
    for block, f1, r3, f3, r5, f5, fp in _GOOGLENET_BLOCKS:
        if block in _POOL_BEFORE:
            x = pool(x, f"pool_{block[0]}")
        x = InceptionBlock(
            width(f1),
            width(f3),
            width(f5),
            filters_pool=width(fp),
            reduce_3x3=width(r3),
            reduce_5x5=width(r5),
            name=f"inception_{block}",
        )(x)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name="dropout")(x)
        x = keras.layers.Dense(num_classes, name="logits")(x)
        x = _predictions(x, output_activation)
    return keras.Model(inputs, x, name=name)
