"""U-Net decoder on a MobileNetV2 encoder (`keras.applications`) for per-pixel segmentation."""

from __future__ import annotations

import os
import warnings

import keras

from i2dl_keras.models.lenet5 import (
    _check_multiple,
    _dropout_rate,
    _input_shape,
    _output_activation,
    _positive_float,
    _positive_int,
    _predictions,
)

# MobileNetV2 layers whose outputs feed the decoder, at strides 2, 4, 8, 16 and 32.
MOBILENET_V2_FEATURES = (
    "block_1_expand_relu",
    "block_3_expand_relu",
    "block_6_expand_relu",
    "block_13_expand_relu",
    "block_16_project",
)
STRIDE = 32


def _encoder(alpha: float, encoder_weights: str | None) -> keras.Model:
    """MobileNetV2 without its top, as a model with the five feature maps as outputs."""
    backbone = keras.applications.MobileNetV2(
        input_shape=(None, None, 3), include_top=False, weights=None, alpha=alpha
    )
    if encoder_weights is not None:
        # Keras warns once per layer it could not fill before it raises; the error says it all.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                backbone.load_weights(encoder_weights)
            except (ValueError, OSError) as err:
                raise ValueError(
                    f"`encoder_weights` cannot be loaded into MobileNetV2(include_top=False, "
                    f"alpha={alpha}): {str(err).splitlines()[0]} "
                    f"Received: encoder_weights={encoder_weights!r}"
                ) from None
        for warning in caught:
            warnings.warn(warning.message, warning.category, stacklevel=3)
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
    return keras.Model(
        backbone.input,
        [backbone.get_layer(name).output for name in MOBILENET_V2_FEATURES],
        name="mobilenet_v2_encoder",
    )


def mobilenet_v2_unet(
    input_shape: tuple[int | None, int | None, int] = (None, None, 3),
    num_classes: int = 2,
    alpha: float = 1.0,
    encoder_weights: str | os.PathLike | None = None,
    decoder_filters: int = 16,
    batch_norm_momentum: float = 0.99,
    output_activation: str | None = "softmax",
    name: str = "mobilenet_v2_unet",
) -> keras.Model:
    """Builds a U-Net whose contracting path is a (pretrained) MobileNetV2.

    Transfer learning for segmentation: the encoder is `keras.applications.MobileNetV2`
    without its classifier (Sandler et al., 2018, "MobileNetV2: Inverted Residuals and Linear
    Bottlenecks"); its feature maps at strides 2, 4, 8, 16 and 32 take the place of the U-Net's
    contracting path (Ronneberger, Fischer and Brox, 2015). The expanding path starts from the
    stride-32 features and, per level `i` from 3 down to 0, upsamples by 2 with a 3x3
    transposed convolution to `decoder_filters * 2**i` filters, concatenates the encoder's
    feature map of that size (the skip connection), and applies a 3x3 convolution; every
    convolution of the decoder is followed by batch normalization and ReLU. A last 3x3
    transposed convolution with stride 2 returns to the input resolution with `num_classes`
    scores per pixel.

    With `encoder_weights`, the encoder's convolutions are fine-tuned with the decoder, but its
    batch-normalization layers are frozen (`trainable=False`, which in Keras 3 also means
    inference mode), as the Keras transfer-learning guide advises: their statistics and scales
    keep the pretrained values instead of drifting to those of a small data set. Without
    weights, the whole encoder trains from scratch.

    The model takes RGB images scaled to `[-1, 1]`, as
    `keras.applications.mobilenet_v2.preprocess_input` gives. Segmentation output follows the
    `i2dl_keras.models` convention: the last transposed convolution is named `"logits"` and
    `output_activation` (softmax over the classes by default) is a layer named
    `"predictions"`; pass `None` to get logits.

    Args:
        input_shape: `(height, width, 3)`; height and width may be `None` and must otherwise be
            multiples of 32. Defaults to `(None, None, 3)`.
        num_classes: Number of classes. Defaults to `2`.
        alpha: MobileNetV2's width multiplier; Keras publishes ImageNet weights for 0.35, 0.5,
            0.75, 1.0, 1.3 and 1.4. Defaults to `1.0`.
        encoder_weights: Path of a MobileNetV2 weights file of the same `alpha` without its
            top (such as Keras' `mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5`
            or a `.weights.h5` file saved from `keras.applications.MobileNetV2(include_top=False)`),
            or `None` for random initial weights. Defaults to `None`.
        decoder_filters: Filters of the decoder's full-resolution level (doubling per level).
            Defaults to `16`.
        batch_norm_momentum: Momentum of the decoder's batch-norm moving statistics, in
            `[0, 1)`; a small data set gives few steps, and Keras' 0.99 then leaves inference
            with statistics still close to their initial values (PyTorch uses 0.9). Defaults to
            `0.99`.
        output_activation: Activation after the logits, or `None`. Defaults to `"softmax"`.
        name: Model name. Defaults to `"mobilenet_v2_unet"`.

    Returns:
        A functional `keras.Model` from `(batch, H, W, 3)` images to `(batch, H, W,
        num_classes)` per-pixel class probabilities (or logits). Its layer
        `"mobilenet_v2_encoder"` is the encoder, a model of its own.

    Raises:
        ValueError: if an argument is out of range, a known input size is not a multiple of
            32, or `encoder_weights` is not a file that loads into the encoder.

    Example:

    >>> model = i2dl_keras.models.mobilenet_v2_unet(num_classes=3, alpha=0.35, decoder_filters=4)
    >>> tuple(model(np.zeros((1, 64, 96, 3), "float32")).shape)
    (1, 64, 96, 3)
    """
    input_shape = _input_shape(input_shape, allow_none=True)
    if input_shape[2] != 3:
        raise ValueError(
            f"`input_shape` must have 3 channels: MobileNetV2 takes RGB images. "
            f"Received: input_shape={input_shape}"
        )
    num_classes = _positive_int("num_classes", num_classes)
    alpha = _positive_float("alpha", alpha)
    decoder_filters = _positive_int("decoder_filters", decoder_filters)
    momentum = _dropout_rate("batch_norm_momentum", batch_norm_momentum)
    output_activation = _output_activation(output_activation)
    _check_multiple(input_shape, STRIDE, "mobilenet_v2_unet", "MobileNetV2's total stride")
    if encoder_weights is not None:
        encoder_weights = os.fspath(encoder_weights)
        if not os.path.isfile(encoder_weights):
            raise ValueError(
                "`encoder_weights` must be the path of a weights file or `None`. "
                f"Received: encoder_weights={encoder_weights!r}"
            )

    encoder = _encoder(alpha, encoder_weights)
    inputs = keras.Input(input_shape, name="images")
    features = encoder(inputs)
    x = features[-1]
    for level in reversed(range(len(features) - 1)):
        filters = decoder_filters * 2**level
        x = keras.layers.Conv2DTranspose(
            filters, 3, strides=2, padding="same", use_bias=False, name=f"up{level}_upconv"
        )(x)
        x = keras.layers.BatchNormalization(momentum=momentum, name=f"up{level}_upconv_bn")(x)
        x = keras.layers.ReLU(name=f"up{level}_upconv_relu")(x)
        x = keras.layers.Concatenate(name=f"up{level}_concat")([x, features[level]])
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"up{level}_conv")(
            x
        )
        x = keras.layers.BatchNormalization(momentum=momentum, name=f"up{level}_bn")(x)
        x = keras.layers.ReLU(name=f"up{level}_relu")(x)
    x = keras.layers.Conv2DTranspose(num_classes, 3, strides=2, padding="same", name="logits")(x)
    outputs = _predictions(x, output_activation)
    return keras.Model(inputs, outputs, name=name)
