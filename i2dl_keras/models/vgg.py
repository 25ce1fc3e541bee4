"""VGG-11/13/16/19 (Simonyan and Zisserman, 2015)."""

from __future__ import annotations

import keras

from i2dl_keras.models.lenet5 import (
    _check_downsampling,
    _dropout_rate,
    _input_shape,
    _one_of,
    _output_activation,
    _positive_float,
    _positive_int,
    _predictions,
    _scaled,
)

# Convolutions per block for configurations A (11), B (13), D (16) and E (19) of the paper.
_CONVS_PER_BLOCK = {
    11: (1, 1, 2, 2, 2),
    13: (2, 2, 2, 2, 2),
    16: (2, 2, 3, 3, 3),
    19: (2, 2, 4, 4, 4),
}
_FILTERS = (64, 128, 256, 512, 512)


def vgg(
    depth: int = 16,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    width_multiplier: float = 1.0,
    dropout: float = 0.5,
    use_batch_norm: bool = False,
    output_activation: str | None = "softmax",
    name: str | None = None,
) -> keras.Model:
    """Builds VGG: blocks of 3x3 "same" convolutions, each followed by a 2x2 max pool.

    Simonyan and Zisserman (2015), "Very Deep Convolutional Networks for Large-Scale Image
    Recognition", as in the course: every convolution is 3x3 with stride 1 and "same" padding,
    every pool is 2x2 with stride 2, the filters double from block to block (64, 128, 256, 512,
    512), and two or more convolutions per block extract features slowly before each pool.
    After five blocks come two 4096-unit ReLU dense layers and the classifier. `depth` counts the
    layers with weights: VGG-16 has 13 convolutions and 3 dense layers (138,357,544 parameters at
    224x224x3 and 1000 classes), VGG-19 has 16 and 3 (143,667,240), the same counts as
    `keras.applications.VGG16` / `VGG19`. Dropout after the two hidden dense layers is the
    paper's; it adds no parameters.

    Classification output follows the `i2dl_keras.models` convention: a dense layer named
    `"logits"`, then `output_activation` as a layer named `"predictions"` (`None` for logits).

    Args:
        depth: 11, 13, 16 or 19 (configurations A, B, D, E of the paper). Defaults to `16`.
        input_shape: `(height, width, channels)`; height and width must be at least 32 (five
            2x2 pools). Defaults to `(224, 224, 3)`.
        num_classes: Number of classes. Defaults to `1000`.
        width_multiplier: Scales the filters of every convolution and the units of the two
            hidden dense layers. Defaults to `1.0`.
        dropout: Dropout rate after each hidden dense layer; `0` for none. Defaults to `0.5`.
        use_batch_norm: Whether to batch-normalize after every convolution (the later "VGG-BN"
            variant). Defaults to `False`.
        output_activation: Activation after the logits, or `None`. Defaults to `"softmax"`.
        name: Model name. Defaults to `None`, which means `f"vgg{depth}"`.

    Returns:
        A functional `keras.Model` from images to class probabilities (or logits).

    Raises:
        ValueError: if `depth` is not 11, 13, 16 or 19, another argument is out of range, or
            the input is too small.

    Example:

    >>> model = i2dl_keras.models.vgg(16)
    >>> model.count_params()
    138357544
    """
    _positive_int("depth", depth)
    _one_of("depth", depth, tuple(_CONVS_PER_BLOCK))
    input_shape = _input_shape(input_shape, allow_none=False)
    num_classes = _positive_int("num_classes", num_classes)
    width_multiplier = _positive_float("width_multiplier", width_multiplier)
    dropout = _dropout_rate("dropout", dropout)
    output_activation = _output_activation(output_activation)
    _check_downsampling(input_shape, [(3, 1, "same"), (2, 2, "valid")] * 5, f"vgg{depth}")

    inputs = keras.Input(input_shape, name="images")
    x = inputs
    for block, (convs, filters) in enumerate(zip(_CONVS_PER_BLOCK[depth], _FILTERS), start=1):
        for conv in range(1, convs + 1):
            prefix = f"block{block}_conv{conv}"
            x = keras.layers.Conv2D(
                _scaled(filters, width_multiplier),
                3,
                padding="same",
                activation=None if use_batch_norm else "relu",
                name=prefix,
            )(x)
            if use_batch_norm:
                x = keras.layers.BatchNormalization(name=f"{prefix}_bn")(x)
                x = keras.layers.Activation("relu", name=f"{prefix}_relu")(x)
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for i in (1, 2):
        x = keras.layers.Dense(_scaled(4096, width_multiplier), activation="relu", name=f"fc{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    x = keras.layers.Dense(num_classes, name="logits")(x)
    outputs = _predictions(x, output_activation)
    return keras.Model(inputs, outputs, name=name or f"vgg{depth}")
