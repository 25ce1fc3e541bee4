"""LeNet-5 (LeCun et al., 1998), in the common Keras form.

This module also holds the argument checks shared by the CNN builders of `i2dl_keras.models`
(`alexnet`, `vgg`, `resnet`, `inception_net`, `fcn`, `unet`); they are private.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from i2dl_keras.utils import conv_output_size

# --- argument checks shared by the CNN builders -------------------------------------------------


def _positive_int(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return value


def _positive_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"`{name}` must be a positive number. Received: {name}={value!r}")
    return float(value)


def _dropout_rate(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"`{name}` must be a number in [0, 1). Received: {name}={value!r}")
    return float(value)


def _one_of(name: str, value, choices: Sequence):
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {tuple(choices)}. Received: {name}={value!r}")
    return value


def _scaled(units: int, width_multiplier: float) -> int:
    """`units * width_multiplier`, rounded, and at least 1."""
    return max(1, int(round(units * width_multiplier)))


def _input_shape(input_shape, allow_none: bool) -> tuple:
    """Checks a `(height, width, channels)` shape; `None` spatial sizes only if `allow_none`."""
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    spatial_ok = (
        shape is not None
        and len(shape) == 3
        and all(
            (d is None and allow_none) or (isinstance(d, int) and not isinstance(d, bool) and d > 0)
            for d in shape[:2]
        )
    )
    channels_ok = spatial_ok and isinstance(shape[2], int) and shape[2] > 0
    if not channels_ok:
        spatial = "positive integers or `None`" if allow_none else "positive integers"
        raise ValueError(
            "`input_shape` must be a tuple `(height, width, channels)` with height and width "
            f"{spatial} and a positive integer number of channels. "
            f"Received: input_shape={input_shape!r}"
        )
    return shape


def _check_downsampling(input_shape: tuple, ops: Sequence[tuple], builder: str) -> None:
    """Raises if a conv/pool in `ops` ((kernel, stride, padding) each) would see an empty input.

    The error states the smallest spatial size that works.
    """

    def fits(size):
        # Per dimension, floor((N - F + 2P) / S) + 1, or ceil(N / S) for "same" padding.
        try:
            for kernel, stride, padding in ops:
                size = conv_output_size(size, kernel, padding, stride)
        except ValueError:
            return False
        return True

    for size in input_shape[:2]:
        if size is not None and not fits(size):
            smallest = next(n for n in range(1, 100_000) if fits(n))
            raise ValueError(
                f"`input_shape` is too small for {builder}'s downsampling: its height and width "
                f"must be at least {smallest}. Received: input_shape={input_shape}"
            )


def _check_multiple(input_shape: tuple, multiple: int, builder: str, why: str) -> None:
    for size in input_shape[:2]:
        if size is not None and size % multiple:
            raise ValueError(
                f"`input_shape` must have a height and width that are multiples of {multiple} "
                f"for {builder} ({why}). Received: input_shape={input_shape}"
            )


def _output_activation(value):
    """Accepts `None` (logits) or anything `keras.activations.get` knows."""
    if value is None:
        return None
    try:
        keras.activations.get(value)
    except (ValueError, TypeError):
        raise ValueError(
            "`output_activation` must be `None` (logits) or a Keras activation such as "
            f"'softmax' or 'sigmoid'. Received: output_activation={value!r}"
        ) from None
    return value


def _predictions(x, output_activation):
    """Applies the output activation as its own layer, so that `"logits"` stays reachable."""
    if output_activation is None:
        return x
    return keras.layers.Activation(output_activation, dtype="float32", name="predictions")(x)


# --- the builder --------------------------------------------------------------------------------


def lenet5(
    input_shape: tuple[int, int, int] = (32, 32, 1),
    num_classes: int = 10,
    activation: str = "tanh",
    pooling: str = "average",
    first_conv_padding: str = "valid",
    width_multiplier: float = 1.0,
    output_activation: str | None = "softmax",
    name: str = "lenet5",
) -> keras.Sequential:
    """Builds LeNet-5: `[conv 5x5 -> pool 2x2] x 2 -> conv 5x5 -> FC 84 -> FC num_classes`.

    LeCun et al. (1998), "Gradient-based learning applied to document recognition", as in the
    course: greyscale 32x32 digits to 10 classes, tanh activations, about 60k parameters. This is
    the common Keras form: C1 has 6 filters, S2 and S4 are plain 2x2 average pools, C3 has 16
    filters connected to all 6 maps of S2 (the paper's C3 uses a sparse connection table, and its
    subsampling layers have a trainable coefficient and bias each), C5 is a 5x5 convolution with
    120 filters (on a 5x5 map, the same as a fully connected layer of 120 units), F6 has 84
    units, and the output is a dense layer (the paper's is a layer of RBF units). At the defaults
    it has `156 + 2,416 + 48,120 + 10,164 + 850 = 61,706` parameters.

    All builders of `i2dl_keras.models` follow one output convention: the last dense (or 1x1
    conv) layer is named `"logits"`, and `output_activation` (softmax by default, as in
    `keras.applications`) is applied after it as a separate layer named `"predictions"`. Pass
    `output_activation=None` to get logits and train with `from_logits=True`.

    Args:
        input_shape: `(height, width, channels)`; height and width must be at least 32 (28 with
            `first_conv_padding="same"`). Defaults to `(32, 32, 1)`.
        num_classes: Number of classes. Defaults to `10`.
        activation: Activation of the hidden layers. Defaults to `"tanh"`.
        pooling: `"average"` (LeNet) or `"max"`. Defaults to `"average"`.
        first_conv_padding: Padding of C1, `"valid"` (LeNet, for 32x32 inputs) or `"same"`
            (the common choice for 28x28 MNIST). Defaults to `"valid"`.
        width_multiplier: Scales the number of filters and units of every hidden layer.
            Defaults to `1.0`.
        output_activation: Activation after the logits, or `None`. Defaults to `"softmax"`.
        name: Model name. Defaults to `"lenet5"`.

    Returns:
        A `keras.Sequential` from images to class probabilities (or logits).

    Raises:
        ValueError: if an argument is out of range or the input is too small.

    Example:

    >>> model = i2dl_keras.models.lenet5()
    >>> model.count_params()
    61706
    """
    input_shape = _input_shape(input_shape, allow_none=False)
    num_classes = _positive_int("num_classes", num_classes)
    width_multiplier = _positive_float("width_multiplier", width_multiplier)
    _one_of("pooling", pooling, ("average", "max"))
    _one_of("first_conv_padding", first_conv_padding, ("valid", "same"))
    output_activation = _output_activation(output_activation)
    _check_downsampling(
        input_shape,
        [(5, 1, first_conv_padding), (2, 2, "valid"), (5, 1, "valid"), (2, 2, "valid")]
        + [(5, 1, "valid")],
        "lenet5",
    )
    pool = keras.layers.AveragePooling2D if pooling == "average" else keras.layers.MaxPooling2D

    def width(units):
        return _scaled(units, width_multiplier)

    layers = [
        keras.Input(input_shape),
        keras.layers.Conv2D(
            width(6), 5, padding=first_conv_padding, activation=activation, name="c1"
        ),
        pool(2, name="s2"),
        keras.layers.Conv2D(width(16), 5, activation=activation, name="c3"),
        pool(2, name="s4"),
        keras.layers.Conv2D(width(120), 5, activation=activation, name="c5"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(width(84), activation=activation, name="f6"),
        keras.layers.Dense(num_classes, name="logits"),
    ]
    if output_activation is not None:
        layers.append(
            keras.layers.Activation(output_activation, dtype="float32", name="predictions")
        )
    return keras.Sequential(layers, name=name)
