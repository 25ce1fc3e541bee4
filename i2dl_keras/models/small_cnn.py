"""A small modern CNN for small images: conv-BN-ReLU blocks, global pooling, dropout."""

from __future__ import annotations

from collections.abc import Sequence

import keras

__all__ = ["small_cnn"]


def small_cnn(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    filters: Sequence[int] = (32, 64, 128),
    convs_per_block: int = 1,
    dropout: float = 0.2,
    bn_momentum: float = 0.9,
    output_activation: str = "softmax",
    name: str = "small_cnn",
) -> keras.Model:
    """Builds a VGG-style network of conv-BatchNorm-ReLU blocks for digit-sized images.

    Each block is `convs_per_block` 3x3 convolutions with batch normalization (Ioffe & Szegedy,
    2015; the course's "Batch Normalization") and ReLU, followed by 2x2 max pooling except after
    the last block; global average pooling then replaces the large dense layers of LeNet and
    AlexNet, which keeps the parameter count low and lets the input size vary.

    Args:
        input_shape: `(height, width, channels)`. Defaults to `(28, 28, 1)`.
        num_classes: Number of classes. Defaults to `10`.
        filters: Filters of each block. Defaults to `(32, 64, 128)`.
        convs_per_block: Convolutions per block. Defaults to `1`.
        dropout: Dropout rate before the classifier. Defaults to `0.2`.
        bn_momentum: Momentum of the batch-norm moving statistics. Keras' 0.99 needs a few
            hundred steps before inference statistics settle, which small data sets never
            reach in a short run. Defaults to `0.9`.
        output_activation: `"softmax"` for probabilities or `"linear"` for logits. Defaults to
            `"softmax"`.
        name: Model name. Defaults to `"small_cnn"`.

    Returns:
        An uncompiled `keras.Model`.

    Raises:
        ValueError: if an argument is out of range or the input is too small for the pooling.

    Example:

    >>> model = i2dl_keras.models.small_cnn((28, 28, 1), num_classes=10)
    >>> model.output_shape
    (None, 10)
    """
    if len(input_shape) != 3:
        raise ValueError(
            f"`input_shape` must be (height, width, channels). Received: input_shape={input_shape}"
        )
    if num_classes < 2:
        raise ValueError(f"`num_classes` must be at least 2. Received: num_classes={num_classes}")
    if not filters or any(f < 1 for f in filters):
        raise ValueError(f"`filters` must be positive integers. Received: filters={filters}")
    if convs_per_block < 1:
        raise ValueError(
            f"`convs_per_block` must be at least 1. Received: convs_per_block={convs_per_block}"
        )
    if not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
    if not 0 < bn_momentum < 1:
        raise ValueError(f"`bn_momentum` must be in (0, 1). Received: bn_momentum={bn_momentum}")
    downsampling = 2 ** (len(filters) - 1)
    for size in input_shape[:2]:
        if size is not None and size < downsampling:
            raise ValueError(
                f"`input_shape` {tuple(input_shape)} is smaller than the network's total "
                f"pooling stride {downsampling}. Received: input_shape={input_shape}"
            )
    inputs = keras.Input(shape=tuple(input_shape), name="pixels")
    x = inputs
    for b, width in enumerate(filters):
        for c in range(convs_per_block):
            x = keras.layers.Conv2D(
                width, 3, padding="same", use_bias=False, name=f"block{b + 1}_conv{c + 1}"
            )(x)
            x = keras.layers.BatchNormalization(
                momentum=bn_momentum, name=f"block{b + 1}_bn{c + 1}"
            )(x)
            x = keras.layers.ReLU(name=f"block{b + 1}_relu{c + 1}")(x)
        if b < len(filters) - 1:
            x = keras.layers.MaxPooling2D(2, name=f"block{b + 1}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    # float32 output keeps softmax stable under a mixed_float16 policy.
    outputs = keras.layers.Dense(
        num_classes, activation=output_activation, dtype="float32", name="classifier"
    )(x)
    return keras.Model(inputs, outputs, name=name)
