"""AlexNet (Krizhevsky et al., 2012), single-tower form."""

from __future__ import annotations

import keras

from i2dl_keras.models.lenet5 import (
    _check_downsampling,
    _dropout_rate,
    _input_shape,
    _output_activation,
    _positive_float,
    _positive_int,
    _predictions,
    _scaled,
)

# (filters, kernel, stride, padding, max pool 3x3/2 after it)
_CONVS = (
    (96, 11, 4, "valid", True),
    (256, 5, 1, "same", True),
    (384, 3, 1, "same", False),
    (384, 3, 1, "same", False),
    (256, 3, 1, "same", True),
)


def alexnet(
    input_shape: tuple[int, int, int] = (227, 227, 3),
    num_classes: int = 1000,
    width_multiplier: float = 1.0,
    dropout: float = 0.5,
    use_batch_norm: bool = False,
    output_activation: str | None = "softmax",
    name: str = "alexnet",
) -> keras.Model:
    """Builds AlexNet: five convolutions, three max pools, and three dense layers.

    Krizhevsky, Sutskever and Hinton (2012), "ImageNet Classification with Deep Convolutional
    Neural Networks", as in the course: RGB 227x227 images to 1000 classes, ReLU, max pooling, a
    first 11x11 convolution with stride 4 that shrinks the image early, "same" convolutions
    afterwards and two 4096-unit hidden dense layers with dropout. The layer table:

    | layer | filters / units | kernel, stride | output (227 input) | parameters |
    |---|---|---|---|---|
    | conv1 | 96 | 11x11, 4, valid | 55x55x96 | 34,944 |
    | pool1 | | 3x3, 2 | 27x27x96 | |
    | conv2 | 256 | 5x5, 1, same | 27x27x256 | 614,656 |
    | pool2 | | 3x3, 2 | 13x13x256 | |
    | conv3 | 384 | 3x3, 1, same | 13x13x384 | 885,120 |
    | conv4 | 384 | 3x3, 1, same | 13x13x384 | 1,327,488 |
    | conv5 | 256 | 3x3, 1, same | 13x13x256 | 884,992 |
    | pool5 | | 3x3, 2 | 6x6x256 | |
    | fc6 | 4096 | | 4096 | 37,752,832 |
    | fc7 | 4096 | | 4096 | 16,781,312 |
    | logits | 1000 | | 1000 | 4,097,000 |

    62,378,344 parameters in all (the course's "60M"). This is the single-tower form used by
    most reimplementations: the paper splits conv2, conv4, conv5 into two groups, one per GPU
    (60,965,224 parameters), and has local response normalization after conv1 and conv2, which
    later work replaced by batch normalization (`use_batch_norm=True`, after every
    convolution).

    Classification output follows the `i2dl_keras.models` convention: a dense layer named
    `"logits"`, then `output_activation` as a layer named `"predictions"` (`None` for logits).

    Args:
        input_shape: `(height, width, channels)`; height and width must be at least 67.
            Defaults to `(227, 227, 3)`.
        num_classes: Number of classes. Defaults to `1000`.
        width_multiplier: Scales the filters of every convolution and the units of fc6 and
            fc7. Defaults to `1.0`.
        dropout: Dropout rate after fc6 and after fc7, as in the paper; `0` for none.
            Defaults to `0.5`.
        use_batch_norm: Whether to batch-normalize after every convolution. Defaults to
            `False`.
        output_activation: Activation after the logits, or `None`. Defaults to `"softmax"`.
        name: Model name. Defaults to `"alexnet"`.

    Returns:
        A functional `keras.Model` from images to class probabilities (or logits).

    Raises:
        ValueError: if an argument is out of range or the input is too small.

    Example:

    >>> model = i2dl_keras.models.alexnet()
    >>> model.count_params()
    62378344
    """
    input_shape = _input_shape(input_shape, allow_none=False)
    num_classes = _positive_int("num_classes", num_classes)
    width_multiplier = _positive_float("width_multiplier", width_multiplier)
    dropout = _dropout_rate("dropout", dropout)
    output_activation = _output_activation(output_activation)
    ops = []
    for _, kernel, stride, padding, pool in _CONVS:
        ops.append((kernel, stride, padding))
        if pool:
            ops.append((3, 2, "valid"))
    _check_downsampling(input_shape, ops, "alexnet")

    inputs = keras.Input(input_shape, name="images")
    x = inputs
    for i, (filters, kernel, stride, padding, pool) in enumerate(_CONVS, start=1):
        x = keras.layers.Conv2D(
            _scaled(filters, width_multiplier),
            kernel,
            strides=stride,
            padding=padding,
            activation=None if use_batch_norm else "relu",
            name=f"conv{i}",
        )(x)
        if use_batch_norm:
            x = keras.layers.BatchNormalization(name=f"conv{i}_bn")(x)
            x = keras.layers.Activation("relu", name=f"conv{i}_relu")(x)
        if pool:
            x = keras.layers.MaxPooling2D(3, strides=2, name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for i in (6, 7):
        x = keras.layers.Dense(_scaled(4096, width_multiplier), activation="relu", name=f"fc{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    x = keras.layers.Dense(num_classes, name="logits")(x)
    outputs = _predictions(x, output_activation)
    return keras.Model(inputs, outputs, name=name)
