"""Fully convolutional network for semantic segmentation (Long, Shelhamer and Darrell, 2015)."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from i2dl_keras.models.lenet5 import (
    _check_multiple,
    _dropout_rate,
    _input_shape,
    _one_of,
    _output_activation,
    _positive_int,
    _predictions,
)

# How many of the deepest pools feed the prediction: FCN-32s uses the last one only, FCN-16s
# adds the stride-16 pool, FCN-8s the stride-16 and stride-8 pools.
_SKIPS = {"fcn32s": 1, "fcn16s": 2, "fcn8s": 3}


def _upsample(x, factor, num_classes, upsampling, name):
    if upsampling == "bilinear":
        return keras.layers.UpSampling2D(factor, interpolation="bilinear", name=name)(x)
    # Kernel 2f with stride f, as in the paper; "same" padding makes the output exactly f times
    # the input.
    return keras.layers.Conv2DTranspose(
        num_classes, 2 * factor, strides=factor, padding="same", use_bias=False, name=name
    )(x)


def fcn(
    input_shape: tuple[int | None, int | None, int] = (None, None, 3),
    num_classes: int = 21,
    base_filters: int = 64,
    convs_per_stage: Sequence[int] = (2, 2, 3, 3, 3),
    head_filters: int | None = None,
    head_kernel_size: int = 7,
    upsampling: str = "transposed",
    skips: str = "fcn8s",
    dropout: float = 0.5,
    output_activation: str | None = "softmax",
    name: str | None = None,
) -> keras.Model:
    """Builds an FCN: a conv encoder, a 1x1-conv classifier, upsampling and skip fusion.

    Long, Shelhamer and Darrell (2015), "Fully Convolutional Networks for Semantic
    Segmentation", as in the course: a network of convolutions only, where the dense layers of a
    classifier become convolutions (so any input size works) and upsampling returns to image
    space for a prediction per pixel.

    - Encoder: VGG-style stages of 3x3 "same" ReLU convolutions, each followed by a 2x2 max pool;
      stage `i` has `min(base_filters * 2**i, 8 * base_filters)` filters (64, 128, 256, 512, 512
      at the defaults, VGG-16's layout). With `S` stages the total stride is `2**S`.
    - Head: VGG's dense layers as convolutions, `head_kernel_size` x `head_kernel_size` and 1x1
      with `head_filters` filters (4096 at the defaults) and dropout, then a 1x1 convolution to
      `num_classes` scores (the classifier).
    - Decoder: FCN-32s upsamples the scores by `2**S`. FCN-16s upsamples them by 2, adds 1x1-conv
      scores of the last-but-one pool and upsamples by `2**(S-1)`; FCN-8s also adds the scores of
      the pool before that and upsamples by `2**(S-2)`. The skip score convolutions start at
      zero, as in the paper, so training starts from the coarser net's prediction.

    Upsampling is a learned transposed convolution (kernel `2f`, stride `f`; the course's
    "unpooling + learned conv filter") or fixed bilinear interpolation. Convolutions use "same"
    padding instead of the paper's 100-pixel padding and cropping, so the output has the input's
    height and width whenever both are multiples of `2**S` (32 at the defaults); the same model
    accepts any such size. The paper starts transposed convolutions at bilinear weights; here
    they use Keras' default initializer.

    Segmentation output follows the `i2dl_keras.models` convention: the per-pixel scores come
    from a layer named `"logits"` and `output_activation` (softmax over the classes by default)
    is a layer named `"predictions"`; pass `None` to get logits.

    Args:
        input_shape: `(height, width, channels)`; height and width may be `None` and must
            otherwise be multiples of `2**len(convs_per_stage)`. Defaults to `(None, None, 3)`.
        num_classes: Number of classes, background included. Defaults to `21` (PASCAL VOC).
        base_filters: Filters of the first encoder stage. Defaults to `64`.
        convs_per_stage: Number of convolutions in each encoder stage. Defaults to
            `(2, 2, 3, 3, 3)` (VGG-16).
        head_filters: Filters of the two head convolutions. Defaults to `None`, which means
            `64 * base_filters`.
        head_kernel_size: Kernel size of the first head convolution. Defaults to `7`.
        upsampling: `"transposed"` or `"bilinear"`. Defaults to `"transposed"`.
        skips: `"fcn32s"`, `"fcn16s"` or `"fcn8s"`. Defaults to `"fcn8s"`.
        dropout: Dropout rate after the two head convolutions; `0` for none. Defaults to `0.5`.
        output_activation: Activation after the logits, or `None`. Defaults to `"softmax"`.
        name: Model name. Defaults to `None`, which means the value of `skips`.

    Returns:
        A functional `keras.Model` from `(batch, H, W, C)` images to `(batch, H, W,
        num_classes)` per-pixel class probabilities (or logits).

    Raises:
        ValueError: if an argument is out of range, the encoder has too few stages for `skips`,
            or a known input size is not a multiple of the total stride.

    Example:

    >>> model = i2dl_keras.models.fcn(num_classes=3, base_filters=4)
    >>> tuple(model(np.zeros((1, 64, 96, 3), "float32")).shape)
    (1, 64, 96, 3)
    """
    input_shape = _input_shape(input_shape, allow_none=True)
    num_classes = _positive_int("num_classes", num_classes)
    base_filters = _positive_int("base_filters", base_filters)
    if (
        not isinstance(convs_per_stage, (tuple, list))
        or not convs_per_stage
        or not all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in convs_per_stage
        )
    ):
        raise ValueError(
            "`convs_per_stage` must be a non-empty sequence of positive integers. "
            f"Received: convs_per_stage={convs_per_stage!r}"
        )
    head_filters = _positive_int(
        "head_filters", 64 * base_filters if head_filters is None else head_filters
    )
    head_kernel_size = _positive_int("head_kernel_size", head_kernel_size)
    _one_of("upsampling", upsampling, ("transposed", "bilinear"))
    _one_of("skips", skips, tuple(_SKIPS))
    dropout = _dropout_rate("dropout", dropout)
    output_activation = _output_activation(output_activation)
    stages = len(convs_per_stage)
    if stages < _SKIPS[skips]:
        raise ValueError(
            f"`convs_per_stage` must have at least {_SKIPS[skips]} stages for skips={skips!r}, "
            f"which fuses the last {_SKIPS[skips]} pools. "
            f"Received: convs_per_stage={convs_per_stage!r}"
        )
    _check_multiple(input_shape, 2**stages, "fcn", f"{stages} stages of 2x2 pooling")

    inputs = keras.Input(input_shape, name="images")
    x = inputs
    pools = []
    for stage, convs in enumerate(convs_per_stage, start=1):
        filters = min(base_filters * 2 ** (stage - 1), 8 * base_filters)
        for conv in range(1, convs + 1):
            x = keras.layers.Conv2D(
                filters, 3, padding="same", activation="relu", name=f"block{stage}_conv{conv}"
            )(x)
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{stage}_pool")(x)
        pools.append(x)

    for i, kernel in ((6, head_kernel_size), (7, 1)):
        x = keras.layers.Conv2D(
            head_filters, kernel, padding="same", activation="relu", name=f"fc{i}_conv"
        )(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    score = keras.layers.Conv2D(num_classes, 1, name="score")(x)

    stride = 2**stages
    for skip in range(1, _SKIPS[skips]):
        pool = pools[-1 - skip]
        up = _upsample(score, 2, num_classes, upsampling, f"score_up{stride}")
        stride //= 2
        skip_score = keras.layers.Conv2D(
            num_classes, 1, kernel_initializer="zeros", name=f"score_pool{stages - skip}"
        )(pool)
        score = keras.layers.Add(name=f"fuse{stride}")([up, skip_score])
    x = _upsample(score, stride, num_classes, upsampling, "upsample")
    # The final upsampling has no nonlinearity, so its output is the logits.
    x = keras.layers.Identity(name="logits")(x)
    outputs = _predictions(x, output_activation)
    return keras.Model(inputs, outputs, name=name or skips)
