"""ResNet (He et al., 2016) built from `ResidualBlock`."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from i2dl_keras.layers.residual_block import ResidualBlock
from i2dl_keras.models.lenet5 import (
    _input_shape,
    _one_of,
    _output_activation,
    _positive_int,
    _predictions,
)

# Blocks per stage and whether they are bottleneck blocks, from table 1 of the paper.
_DEPTHS = {
    18: ((2, 2, 2, 2), False),
    34: ((3, 4, 6, 3), False),
    50: ((3, 4, 6, 3), True),
    101: ((3, 4, 23, 3), True),
    152: ((3, 8, 36, 3), True),
}


def resnet(
    depth: int | None = None,
    blocks_per_stage: Sequence[int] | None = None,
    input_shape: tuple[int | None, int | None, int] = (224, 224, 3),
    num_classes: int = 1000,
    base_filters: int = 64,
    bottleneck: bool | None = None,
    stem: str = "imagenet",
    include_top: bool = True,
    output_activation: str | None = "softmax",
    name: str | None = None,
) -> keras.Model:
    """Builds a ResNet: a stem, stages of residual blocks, global average pooling, a classifier.

    He et al. (2016), "Deep Residual Learning for Image Recognition", as in the course: the
    network stacks `ResidualBlock`s, whose skip connections let gradients reach early layers so
    that much deeper networks still train. Stage `i` (counting from 0) has
    `base_filters * 2**i` filters; its first block halves the spatial size with stride 2 (except
    in stage 0) and uses a 1x1 projection shortcut where the shape changes, the others use the
    identity.

    The `"imagenet"` stem is a 7x7 convolution with stride 2 and a 3x3 max pool with stride 2
    (total stride 32 with four stages); the `"cifar"` stem is one 3x3 convolution with stride 1,
    as in the paper's CIFAR-10 networks. All convolutions and pools use "same" padding, so any
    input size works (`None` spatial sizes included) and the feature map of the last stage is
    `ceil(size / total_stride)` wide. Convolutions have no bias, since batch normalization
    follows each; `resnet(18)`, `resnet(34)` and `resnet(50)` at 224x224x3 with 1000 classes
    have 11,689,512, 21,797,672 and 25,557,032 trainable parameters, as in the paper's
    reference implementations (`count_params()` also counts batch normalization's moving mean
    and variance: 11,699,112, 21,814,696 and 25,610,152). `keras.applications.ResNet50` keeps
    the biases of its convolutions and so has more.

    Classification output follows the `i2dl_keras.models` convention: a dense layer named
    `"logits"`, then `output_activation` as a layer named `"predictions"` (`None` for logits).

    Args:
        depth: 18, 34 (basic blocks), 50, 101 or 152 (bottleneck blocks), the ImageNet
            networks of the paper. Give `depth` or `blocks_per_stage`, not both. Defaults to
            `None`.
        blocks_per_stage: Number of residual blocks in each stage, e.g. `(3, 3, 3)` with
            `base_filters=16` and `stem="cifar"` for the paper's ResNet-20. Defaults to `None`.
        input_shape: `(height, width, channels)`; height and width may be `None`, and must
            otherwise be at least the total stride. Defaults to `(224, 224, 3)`.
        num_classes: Number of classes. Defaults to `1000`.
        base_filters: Filters of the stem and of the first stage. Defaults to `64`.
        bottleneck: Whether to use bottleneck blocks; `None` means what `depth` implies, or
            basic blocks with `blocks_per_stage`. Defaults to `None`.
        stem: `"imagenet"` or `"cifar"`. Defaults to `"imagenet"`.
        include_top: Whether to end in pooling and the classifier; if `False`, the model
            returns the last stage's feature map. Defaults to `True`.
        output_activation: Activation after the logits, or `None`. Defaults to `"softmax"`.
        name: Model name. Defaults to `None`, which means `f"resnet{depth}"` (counting the
            weighted layers when `blocks_per_stage` is given).

    Returns:
        A functional `keras.Model`.

    Raises:
        ValueError: if `depth` is unknown, both or neither of `depth` and `blocks_per_stage`
            are given, another argument is out of range, or the input is smaller than the
            total stride.

    Example:

    >>> model = i2dl_keras.models.resnet(18)
    >>> sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    11689512
    """
    if (depth is None) == (blocks_per_stage is None):
        raise ValueError(
            "Give exactly one of `depth` and `blocks_per_stage`. "
            f"Received: depth={depth!r}, blocks_per_stage={blocks_per_stage!r}"
        )
    if depth is not None:
        _positive_int("depth", depth)
        _one_of("depth", depth, tuple(_DEPTHS))
        blocks_per_stage, default_bottleneck = _DEPTHS[depth]
    else:
        if (
            not isinstance(blocks_per_stage, (tuple, list))
            or not blocks_per_stage
            or not all(
                isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in blocks_per_stage
            )
        ):
            raise ValueError(
                "`blocks_per_stage` must be a non-empty sequence of positive integers. "
                f"Received: blocks_per_stage={blocks_per_stage!r}"
            )
        default_bottleneck = False
    bottleneck = default_bottleneck if bottleneck is None else bool(bottleneck)
    input_shape = _input_shape(input_shape, allow_none=True)
    num_classes = _positive_int("num_classes", num_classes)
    base_filters = _positive_int("base_filters", base_filters)
    _one_of("stem", stem, ("imagenet", "cifar"))
    output_activation = _output_activation(output_activation)
    total_stride = (4 if stem == "imagenet" else 1) * 2 ** (len(blocks_per_stage) - 1)
    for size in input_shape[:2]:
        if size is not None and size < total_stride:
            raise ValueError(
                f"`input_shape` is too small for this ResNet: its total stride is {total_stride}, "
                f"so height and width must be at least {total_stride}. "
                f"Received: input_shape={input_shape}"
            )
    if name is None:
        layers = 2 + (3 if bottleneck else 2) * sum(blocks_per_stage)
        name = f"resnet{depth or layers}"

    inputs = keras.Input(input_shape, name="images")
    if stem == "imagenet":
        x = keras.layers.Conv2D(
            base_filters, 7, strides=2, padding="same", use_bias=False, name="stem_conv"
        )(inputs)
    else:
        x = keras.layers.Conv2D(base_filters, 3, padding="same", use_bias=False, name="stem_conv")(
            inputs
        )
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.Activation("relu", name="stem_relu")(x)
    if stem == "imagenet":
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for stage, blocks in enumerate(blocks_per_stage):
        for block in range(blocks):
            x = ResidualBlock(
                base_filters * 2**stage,
                strides=2 if stage > 0 and block == 0 else 1,
                bottleneck=bottleneck,
                name=f"stage{stage + 1}_block{block + 1}",
            )(x)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(num_classes, name="logits")(x)
        x = _predictions(x, output_activation)
    return keras.Model(inputs, x, name=name)
