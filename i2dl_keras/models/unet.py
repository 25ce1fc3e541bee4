"""U-Net (Ronneberger, Fischer and Brox, 2015) for per-pixel segmentation."""

from __future__ import annotations

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


@keras.saving.register_keras_serializable(package="i2dl_keras")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` computed by one fused kernel where the backend has one.

    Keras 3 normalizes in separate operations (moments, then scale and shift), each reading and
    writing the whole feature map; TensorFlow's `FusedBatchNormV3` kernel (oneDNN on CPUs) does
    the statistics and the normalization in one pass, and so does its gradient. On a CPU that
    makes a batch-normalized U-Net train about a fifth faster at full resolution, where the
    feature maps are largest. The layer is otherwise `keras.layers.BatchNormalization`: the
    same arguments, weights, moving-statistics update (`moving = momentum * moving + (1 -
    momentum) * batch`, with the batch's uncorrected variance) and saved config, and the same
    outputs up to float rounding. The fused path takes 4-D float32 inputs normalized over the
    last axis on the TensorFlow backend without mask, renormalization or synchronization; any
    other call falls back to Keras' own computation.

    Args:
        **kwargs: Those of `keras.layers.BatchNormalization`.

    Example:

    >>> from i2dl_keras.models.unet import FusedBatchNormalization
    >>> layer = FusedBatchNormalization(momentum=0.9)
    >>> tuple(layer(np.ones((2, 4, 4, 3), "float32"), training=True).shape)
    (2, 4, 4, 3)
    """

    def _fusable(self, inputs, mask) -> bool:
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and self.scale
            and self.center
            and not self.renorm
            and not self.synchronized
            and keras.backend.standardize_dtype(inputs.dtype) == "float32"
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        if training and self.trainable:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, self.gamma, self.beta, epsilon=self.epsilon, is_training=True
            )
            # The kernel returns the variance with Bessel's correction, n / (n - 1) for n > 1
            # values per channel; Keras' moving variance averages the uncorrected one.
            n = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], variance.dtype)
            variance = variance * tf.where(n > 1.0, (n - 1.0) / n, 1.0)
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(
                self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
            )
            return outputs
        outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
            inputs,
            self.gamma,
            self.beta,
            mean=self.moving_mean,
            variance=self.moving_variance,
            epsilon=self.epsilon,
            is_training=False,
        )
        return outputs


def _double_conv(x, filters, use_batch_norm, momentum, name):
    for i in (1, 2):
        x = keras.layers.Conv2D(
            filters, 3, padding="same", use_bias=not use_batch_norm, name=f"{name}_conv{i}"
        )(x)
        if use_batch_norm:
            x = FusedBatchNormalization(momentum=momentum, name=f"{name}_bn{i}")(x)
        x = keras.layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x


def unet(
    input_shape: tuple[int | None, int | None, int] = (None, None, 1),
    num_classes: int = 2,
    depth: int = 4,
    base_filters: int = 64,
    first_level_filters: int | None = None,
    upsampling: str = "transposed",
    use_batch_norm: bool = False,
    batch_norm_momentum: float = 0.99,
    dropout: float = 0.0,
    output_activation: str | None = "softmax",
    name: str = "unet",
) -> keras.Model:
    """Builds a U-Net: a contracting path, an expanding path, and skip concatenations between.

    Ronneberger, Fischer and Brox (2015), "U-Net: Convolutional Networks for Biomedical Image
    Segmentation". Level `i` (0 to `depth`) has `base_filters * 2**i` filters. The contracting
    path repeats two 3x3 ReLU convolutions and a 2x2 max pool `depth` times, then two
    convolutions at the bottom (the paper: depth 4, 64 to 1024 filters). The expanding path
    upsamples by 2 to the level's filter count, concatenates the contracting path's feature map
    of the same size (the skip connection that brings back fine detail), and applies two
    convolutions; a final 1x1 convolution gives `num_classes` scores per pixel.

    The convolutions use "same" padding instead of the paper's "valid" padding with cropped
    skips, so the output has the input's height and width and the same model accepts any input
    whose height and width are multiples of `2**depth` (parameters are unchanged by padding).
    Upsampling is the paper's 2x2 "up-convolution" (a transposed convolution with stride 2), or
    bilinear interpolation followed by a 1x1 convolution that sets the filter count.

    Segmentation output follows the `i2dl_keras.models` convention: the final 1x1 convolution is
    named `"logits"` and `output_activation` (softmax over the classes by default) is a layer
    named `"predictions"`; pass `None` to get logits.

    Args:
        input_shape: `(height, width, channels)`; height and width may be `None` and must
            otherwise be multiples of `2**depth`. Defaults to `(None, None, 1)`.
        num_classes: Number of classes. Defaults to `2`.
        depth: Number of 2x2 poolings (and of upsamplings). Defaults to `4`.
        base_filters: Filters of the first level. Defaults to `64`.
        first_level_filters: Filters of level 0 alone (the full-resolution one), or `None` for
            `base_filters`; the other levels keep `base_filters * 2**i`. Fewer filters where
            the feature maps are largest cut much of the computation and memory traffic for
            few parameters. Defaults to `None`.
        upsampling: `"transposed"` or `"bilinear"`. Defaults to `"transposed"`.
        use_batch_norm: Whether to batch-normalize after every 3x3 convolution (which then has
            no bias), with `FusedBatchNormalization`. Defaults to `False`.
        batch_norm_momentum: Momentum of the batch-norm moving statistics, in `[0, 1)`; a
            small data set gives few steps, and Keras' 0.99 then leaves inference with
            statistics still close to their initial values (PyTorch uses 0.9). Defaults to
            `0.99`.
        dropout: Dropout rate at the bottom of the contracting path, as in the paper; `0` for
            none. Defaults to `0.0`.
        output_activation: Activation after the logits, or `None`. Defaults to `"softmax"`.
        name: Model name. Defaults to `"unet"`.

    Returns:
        A functional `keras.Model` from `(batch, H, W, C)` images to `(batch, H, W,
        num_classes)` per-pixel class probabilities (or logits).

    Raises:
        ValueError: if an argument is out of range or a known input size is not a multiple of
            `2**depth`.

    Example:

    >>> model = i2dl_keras.models.unet(num_classes=3, depth=2, base_filters=4)
    >>> tuple(model(np.zeros((1, 64, 96, 1), "float32")).shape)
    (1, 64, 96, 3)
    """
    input_shape = _input_shape(input_shape, allow_none=True)
    num_classes = _positive_int("num_classes", num_classes)
    depth = _positive_int("depth", depth)
    base_filters = _positive_int("base_filters", base_filters)
    filters = [base_filters * 2**level for level in range(depth + 1)]
    if first_level_filters is not None:
        filters[0] = _positive_int("first_level_filters", first_level_filters)
    _one_of("upsampling", upsampling, ("transposed", "bilinear"))
    dropout = _dropout_rate("dropout", dropout)
    momentum = _dropout_rate("batch_norm_momentum", batch_norm_momentum)
    output_activation = _output_activation(output_activation)
    _check_multiple(input_shape, 2**depth, "unet", f"depth={depth} 2x2 poolings")

    inputs = keras.Input(input_shape, name="images")
    x = inputs
    skips = []
    for level in range(depth):
        x = _double_conv(x, filters[level], use_batch_norm, momentum, f"down{level}")
        skips.append(x)
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"down{level}_pool")(x)
    x = _double_conv(x, filters[depth], use_batch_norm, momentum, "bottom")
    if dropout:
        x = keras.layers.Dropout(dropout, name="bottom_dropout")(x)
    for level in reversed(range(depth)):
        if upsampling == "transposed":
            x = keras.layers.Conv2DTranspose(
                filters[level], 2, strides=2, name=f"up{level}_upconv"
            )(x)
        else:
            x = keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"up{level}_resize")(x)
            x = keras.layers.Conv2D(filters[level], 1, name=f"up{level}_conv1x1")(x)
        x = keras.layers.Concatenate(name=f"up{level}_concat")([skips[level], x])
        x = _double_conv(x, filters[level], use_batch_norm, momentum, f"up{level}")
    x = keras.layers.Conv2D(num_classes, 1, name="logits")(x)
    outputs = _predictions(x, output_activation)
    return keras.Model(inputs, outputs, name=name)
