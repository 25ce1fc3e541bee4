"""A small CNN for digit-sized images: LeNet-5's 5x5 first layer on the classic Keras MNIST net."""

from __future__ import annotations

from collections.abc import Sequence

import keras

__all__ = ["small_cnn"]

# The 5x5 and 3x3 "valid" convs trim 4 and 2 pixels and each pool halves:
# s -> (s - 4) // 2 - 2 must leave at least two pixels for the second pool.
_MIN_SIZE = 12


def small_cnn(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    width: int = 32,
    dropout: float = 0.4,
    output_activation: str = "softmax",
    name: str = "small_cnn",
) -> keras.Model:
    """Builds a small, fast convolutional classifier for digit-sized images.

    The layout is conv(w, 5x5) - max-pool - conv(2w, 3x3) - max-pool - flatten - dropout -
    dense, all ReLU: the classic two-block Keras MNIST network with LeNet-5's 5x5 first
    convolution, whose output is pooled at once (24x24 -> 12x12 for MNIST), so the expensive second
    convolution runs on a quarter of the pixels. With `width=32` on 28x28x1 inputs it has 35,338
    parameters, about as many as the classic network, and costs less per image (its measured
    accuracy and speed against the classic recipe: `benchmarks/digits.py`).

    Args:
        input_shape: `(height, width, channels)`, each side at least 12. Defaults to
            `(28, 28, 1)`.
        num_classes: Number of classes. Defaults to `10`.
        width: Filters of the first block; the second block has twice as many. Defaults to `32`.
        dropout: Dropout rate before the classifier. Defaults to `0.4`.
        output_activation: `"softmax"` for probabilities or `"linear"` for logits. Defaults to
            `"softmax"`.
        name: Model name. Defaults to `"small_cnn"`.

    Returns:
        An uncompiled `keras.Model`.

    Raises:
        ValueError: if an argument is out of range or the input is too small.

    Example:

    >>> model = i2dl_keras.models.small_cnn((28, 28, 1), num_classes=10)
    >>> model.count_params()
    35338
    """
    if len(input_shape) != 3:
        raise ValueError(
            f"`input_shape` must be (height, width, channels). Received: input_shape={input_shape}"
        )
    if any(size is not None and size < _MIN_SIZE for size in input_shape[:2]):
        raise ValueError(
            f"`input_shape` must be at least {_MIN_SIZE}x{_MIN_SIZE} for two poolings after "
            f"valid convolutions. Received: input_shape={tuple(input_shape)}"
        )
    if num_classes < 2:
        raise ValueError(f"`num_classes` must be at least 2. Received: num_classes={num_classes}")
    if width < 1:
        raise ValueError(f"`width` must be a positive integer. Received: width={width}")
    if not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
    inputs = keras.Input(shape=tuple(input_shape), name="pixels")
    x = keras.layers.Conv2D(width, 5, activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(2 * width, 3, activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    # float32 output keeps softmax stable under a mixed_float16 policy.
    outputs = keras.layers.Dense(
        num_classes, activation=output_activation, dtype="float32", name="classifier"
    )(x)
    return keras.Model(inputs, outputs, name=name)
