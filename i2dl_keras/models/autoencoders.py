"""The autoencoder family of the course: bottleneck, convolutional, sparse, denoising, contractive
and stacked, each built as a plain Keras model of serializable layers.

Every builder returns a functional `keras.Model` whose layers are `input` (the input), an
optional `corruption` layer (denoising only), a nested functional model named `"encoder"` that
maps the input to the code, and a nested functional model named `"decoder"` that maps the code
back to the input's shape. `get_encoder(model)` returns the encoder, a model of its own that
computes the code; `get_decoder(model)` the decoder.

Inside the dense encoder the layers are named `encoder_dense_1 ... encoder_dense_n` (the last
one is the code) and the decoder mirrors them as `decoder_dense_n ... decoder_dense_1`, where
`decoder_dense_k` undoes `encoder_dense_k`: it maps layer k's width back to layer k - 1's (the
input for k = 1). `i2dl_keras.models.stacked.greedy_layerwise_pretrain` trains these pairs one
at a time. Inputs with more than one axis are flattened by the dense encoder and reshaped back by
the dense decoder; the convolutional builders keep them as images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras

from i2dl_keras.layers import _checks
from i2dl_keras.layers.contractive_dense import ContractiveDense
from i2dl_keras.layers.masking_noise import MaskingNoise
from i2dl_keras.layers.salt_pepper_noise import SaltPepperNoise
from i2dl_keras.regularizers import CONTRACTIVE_ACTIVATIONS, Sparsity

__all__ = [
    "NOISE_TYPES",
    "bottleneck_autoencoder",
    "contractive_autoencoder",
    "conv_autoencoder",
    "denoising_autoencoder",
    "get_decoder",
    "get_encoder",
    "sparse_autoencoder",
    "stacked_autoencoder",
]

NOISE_TYPES = ("gaussian", "salt_pepper", "masking")


# Argument checks: each error names the argument, says what was expected, ends with Received.


def _check_input_shape(value: Any, image: bool = False) -> tuple[int, ...]:
    ok = isinstance(value, (list, tuple)) and len(value) >= 1
    ok = ok and all(_checks.is_int(d) and d >= 1 for d in value)
    if image and ok:
        ok = len(value) == 3
    if not ok:
        expected = "(height, width, channels)" if image else "a tuple of positive integers"
        raise ValueError(
            f"`input_shape` must be {expected}, without the batch axis. "
            f"Received: input_shape={value!r}"
        )
    return tuple(int(d) for d in value)


def _check_widths(name: str, value: Any, min_len: int) -> tuple[int, ...]:
    ok = isinstance(value, (list, tuple)) and len(value) >= min_len
    if not ok or not all(_checks.is_int(w) and w >= 1 for w in value):
        what = "a (possibly empty) sequence" if min_len == 0 else f"a sequence of {min_len}+"
        raise ValueError(
            f"`{name}` must be {what} of positive integers. Received: {name}={value!r}"
        )
    return tuple(int(w) for w in value)


def _check_activation(name: str, value: Any) -> str:
    try:
        if not isinstance(value, str):
            raise TypeError
        keras.activations.get(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` must be the name of a Keras activation, e.g. 'relu' or 'sigmoid'. "
            f"Received: {name}={value!r}"
        ) from None
    return value


def _check_name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"`name` must be a non-empty string. Received: name={value!r}")
    return value


# Shared construction.


def _dense_encoder_decoder(
    input_shape: tuple[int, ...],
    widths: tuple[int, ...],
    activation: str,
    code_activation: str,
    output_activation: str,
    make_code_layer=None,
) -> tuple[keras.Model, keras.Model]:
    """Builds the mirrored dense encoder and decoder; `widths` ends with the code width."""
    n = len(widths)
    encoder_input = keras.Input(input_shape, name="encoder_input")
    x = encoder_input
    if len(input_shape) > 1:
        x = keras.layers.Flatten(name="encoder_flatten")(x)
    for k, units in enumerate(widths, start=1):
        layer_name = f"encoder_dense_{k}"
        if k < n:
            layer = keras.layers.Dense(units, activation=activation, name=layer_name)
        elif make_code_layer is not None:
            layer = make_code_layer(units, layer_name)
        else:
            layer = keras.layers.Dense(units, activation=code_activation, name=layer_name)
        x = layer(x)
    encoder = keras.Model(encoder_input, x, name="encoder")

    decoder_input = keras.Input((widths[-1],), name="decoder_input")
    y = decoder_input
    for k in range(n, 0, -1):
        # decoder_dense_k undoes encoder_dense_k, so its output has the width and activation of
        # encoder layer k - 1: what greedy pretraining asks it to reconstruct.
        units = widths[k - 2] if k > 1 else math.prod(input_shape)
        act = activation if k > 1 else output_activation
        y = keras.layers.Dense(units, activation=act, name=f"decoder_dense_{k}")(y)
    if len(input_shape) > 1:
        y = keras.layers.Reshape(input_shape, name="decoder_reshape")(y)
    decoder = keras.Model(decoder_input, y, name="decoder")
    return encoder, decoder


def _assemble(
    input_shape: tuple[int, ...],
    encoder: keras.Model,
    decoder: keras.Model,
    name: str,
    corruption: keras.layers.Layer | None = None,
) -> keras.Model:
    inputs = keras.Input(input_shape, name="input")
    x = corruption(inputs) if corruption is not None else inputs
    return keras.Model(inputs, decoder(encoder(x)), name=name)


def get_encoder(autoencoder: keras.Model) -> keras.Model:
    """Returns the encoder of an autoencoder built by this module: the model input -> code.

    The encoder is the autoencoder's nested model named `"encoder"`, so it shares its weights:
    training one trains the other.

    Args:
        autoencoder: A model built by one of this module's builders.

    Returns:
        The encoder, a `keras.Model`.

    Raises:
        ValueError: if `autoencoder` has no nested model named `"encoder"`.

    Example:

    >>> ae = i2dl_keras.models.bottleneck_autoencoder((784,), code_size=32)
    >>> codes = i2dl_keras.models.get_encoder(ae).predict(x)  # shape (len(x), 32)
    """
    return _get_part(autoencoder, "encoder")


def get_decoder(autoencoder: keras.Model) -> keras.Model:
    """Returns the decoder of an autoencoder built by this module: code -> reconstruction.

    Args:
        autoencoder: A model built by one of this module's builders.

    Returns:
        The decoder, a `keras.Model` that shares the autoencoder's weights.

    Raises:
        ValueError: if `autoencoder` has no nested model named `"decoder"`.

    Example:

    >>> ae = i2dl_keras.models.bottleneck_autoencoder((784,), code_size=32)
    >>> images = i2dl_keras.models.get_decoder(ae)(np.zeros((1, 32), "float32"))
    """
    return _get_part(autoencoder, "decoder")


def _get_part(autoencoder: Any, part: str) -> keras.Model:
    layers = getattr(autoencoder, "layers", None) or []
    for layer in layers:
        if layer.name == part and isinstance(layer, keras.Model):
            return layer
    raise ValueError(
        f"`autoencoder` must be a model built by i2dl_keras.models.autoencoders, with a nested "
        f"model named '{part}'. Received: autoencoder={autoencoder!r}"
    )


# The builders.


def bottleneck_autoencoder(
    input_shape: Sequence[int],
    code_size: int = 32,
    hidden: Sequence[int] = (128,),
    activation: str = "relu",
    code_activation: str = "relu",
    output_activation: str = "sigmoid",
    name: str = "bottleneck_autoencoder",
) -> keras.Model:
    """Dense undercomplete autoencoder: the code has fewer units than the input has values.

    "Bottleneck: use fewer hidden units than inputs" (slides, autoencoder variants): the network
    is trained to output its input, `h_theta(x) ~ x`, and the narrow code stops it from learning
    the identity, so it must learn a compressed representation. The encoder is
    `input -> hidden[0] -> ... -> code_size`; the decoder mirrors it back to the input's shape.
    The course's 8-3-8 example is `bottleneck_autoencoder((8,), 3, hidden=(),
    code_activation="sigmoid")`.

    Args:
        input_shape: Shape of one sample, without the batch axis, e.g. `(784,)` or
            `(28, 28, 1)` (flattened by the encoder, reshaped back by the decoder).
        code_size: Width of the code, smaller than the number of input values. Defaults to `32`.
        hidden: Widths of the encoder's hidden layers between input and code; the decoder uses
            them in reverse. Defaults to `(128,)`.
        activation: Activation of the hidden layers. Defaults to `"relu"`.
        code_activation: Activation of the code layer. Defaults to `"relu"`.
        output_activation: Activation of the reconstruction: `"sigmoid"` for inputs in [0, 1],
            `"linear"` for unbounded inputs. Defaults to `"sigmoid"`.
        name: Name of the model. Defaults to `"bottleneck_autoencoder"`.

    Returns:
        An uncompiled `keras.Model` mapping `input_shape` to `input_shape`, with nested
        `"encoder"` and `"decoder"` models (see `get_encoder`).

    Raises:
        ValueError: if an argument is malformed, or `code_size` is not smaller than the number
            of input values.

    Example:

    >>> ae = i2dl_keras.models.bottleneck_autoencoder((784,), code_size=32, hidden=(128,))
    >>> ae.compile(optimizer="adam", loss="binary_crossentropy")
    >>> ae.fit(x, x, epochs=5)
    """
    input_shape = _check_input_shape(input_shape)
    code_size = _checks.positive_int("code_size", code_size)
    input_dim = math.prod(input_shape)
    if code_size >= input_dim:
        raise ValueError(
            f"`code_size` must be smaller than the number of input values ({input_dim}) for a "
            "bottleneck; use sparse_autoencoder for an overcomplete code. "
            f"Received: code_size={code_size}"
        )
    hidden = _check_widths("hidden", hidden, 0)
    encoder, decoder = _dense_encoder_decoder(
        input_shape,
        (*hidden, code_size),
        _check_activation("activation", activation),
        _check_activation("code_activation", code_activation),
        _check_activation("output_activation", output_activation),
    )
    return _assemble(input_shape, encoder, decoder, _check_name(name))


def conv_autoencoder(
    input_shape: Sequence[int] = (28, 28, 1),
    filters: Sequence[int] = (16, 32),
    code_size: int | None = None,
    kernel_size: int = 3,
    activation: str = "relu",
    code_activation: str = "relu",
    output_activation: str = "sigmoid",
    convs_per_stage: int = 1,
    skip_connections: bool = False,
    full_resolution_convs: int = 0,
    name: str = "conv_autoencoder",
) -> keras.Model:
    """Convolutional autoencoder for images: strided convolutions down, transposed ones up.

    Each encoder stage starts with a `kernel_size` convolution with stride 2 and "same"
    padding, so it halves height and width (`floor((N - F + 2P) / S) + 1` per spatial
    dimension, with "same" padding giving `ceil(N / 2)`), followed by `convs_per_stage - 1`
    stride-1 convolutions with the same filters. The decoder mirrors it with stride-2 transposed
    convolutions, each followed by `convs_per_stage - 1` stride-1 convolutions, and ends with a
    `kernel_size` convolution to the input's channels. With `code_size=None` the code is the
    last feature map, `(H / 2**n, W / 2**n, filters[-1])`; with an integer, the feature map is
    flattened into a dense code of that width. The default for `(28, 28, 1)` MNIST has 18,817
    parameters and sigmoid outputs in [0, 1].

    With `skip_connections=True` the network takes the shape of a U-Net (Ronneberger et al.,
    2015), still an encoder and a decoder: each decoder stage concatenates its upsampled
    feature map with the encoder's feature map of the same resolution (the input image itself
    at full resolution) before its stride-1 convolutions, so fine detail need not squeeze
    through the code. The encoder then outputs a list, `[code, skip_1, ..., skip_n]` (the code
    first, then the feature maps from the coarsest to the input), and the decoder takes that
    list; `get_encoder(model).outputs[0]` is the code.

    With `full_resolution_convs=m > 0`, the encoder first applies `m` stride-1 convolutions with
    `filters[0]` filters at the input's resolution, before the first strided stage; with skip
    connections the decoder's last stage then concatenates their feature map instead of the raw
    input. Otherwise the only full-resolution convolutions are the decoder's last, which is
    where a denoiser needs the most of them. For one channel and 16 filters, `m=2` adds 6,800
    parameters: 2,480 in the two convolutions, and 2,160 in each of the two that then read 16
    feature channels instead of the image's one (the first strided one and, with skip
    connections, the decoder's last stage).

    Args:
        input_shape: `(height, width, channels)`; height and width must be divisible by
            `2 ** len(filters)`. Defaults to `(28, 28, 1)`.
        filters: Filters of the encoder's stages, one stride-2 stage each. Defaults to
            `(16, 32)`.
        code_size: Width of a dense code after the convolutions, or `None` for a convolutional
            code. Defaults to `None`.
        kernel_size: Side of the square kernels. Defaults to `3`.
        activation: Activation of the hidden convolutions. Defaults to `"relu"`.
        code_activation: Activation of the code (the last encoder convolution when `code_size`
            is `None`). Defaults to `"relu"`.
        output_activation: Activation of the reconstruction. Defaults to `"sigmoid"`.
        convs_per_stage: Convolutions per encoder and per decoder stage, the strided one
            included; a positive integer. Defaults to `1`.
        skip_connections: Whether each decoder stage also sees the encoder's feature map of
            its resolution (a U-Net-shaped autoencoder). Defaults to `False`.
        full_resolution_convs: Stride-1 convolutions at the input's resolution before the
            first strided stage; a non-negative integer. Defaults to `0`.
        name: Name of the model. Defaults to `"conv_autoencoder"`.

    Returns:
        An uncompiled `keras.Model` mapping `input_shape` to `input_shape`, with nested
        `"encoder"` and `"decoder"` models.

    Raises:
        ValueError: if an argument is malformed or the image sides are not divisible by
            `2 ** len(filters)`.

    Example:

    >>> ae = i2dl_keras.models.conv_autoencoder((28, 28, 1), filters=(16, 32))
    >>> ae.compile(optimizer="adam", loss="binary_crossentropy")
    >>> ae.fit(images, images, epochs=5)
    >>> unet = i2dl_keras.models.conv_autoencoder(
    ...     (28, 28, 1), filters=(32, 64), convs_per_stage=2, skip_connections=True)
    """
    input_shape = _check_input_shape(input_shape, image=True)
    filters = _check_widths("filters", filters, 1)
    if code_size is not None:
        code_size = _checks.positive_int("code_size", code_size)
    kernel_size = _checks.positive_int("kernel_size", kernel_size)
    convs_per_stage = _checks.positive_int("convs_per_stage", convs_per_stage)
    full_resolution_convs = _checks.non_negative_int("full_resolution_convs", full_resolution_convs)
    if not isinstance(skip_connections, bool):
        raise ValueError(
            f"`skip_connections` must be True or False. Received: skip_connections="
            f"{skip_connections!r}"
        )
    activation = _check_activation("activation", activation)
    code_activation = _check_activation("code_activation", code_activation)
    output_activation = _check_activation("output_activation", output_activation)
    height, width, channels = input_shape
    factor = 2 ** len(filters)
    if height % factor or width % factor:
        raise ValueError(
            f"`input_shape` must have height and width divisible by 2**len(filters) = {factor}, "
            f"so that the decoder restores them. Received: input_shape={input_shape}"
        )
    name = _check_name(name)
    n = len(filters)

    def conv(x, f, act, layer_name, strides=1, layer=keras.layers.Conv2D):
        return layer(
            f, kernel_size, strides=strides, padding="same", activation=act, name=layer_name
        )(x)

    def encoder_stage(x, k, f, act_last):
        # `encoder_conv_k` halves the resolution, `encoder_conv_k_j` (j >= 2) keep it; only the
        # stage's last convolution takes `act_last` (the code's activation in the last stage).
        for j in range(1, convs_per_stage + 1):
            x = conv(
                x,
                f,
                act_last if j == convs_per_stage else activation,
                f"encoder_conv_{k}" if j == 1 else f"encoder_conv_{k}_{j}",
                strides=2 if j == 1 else 1,
            )
        return x

    encoder_input = keras.Input(input_shape, name="encoder_input")
    x = encoder_input
    for j in range(1, full_resolution_convs + 1):
        x = conv(x, filters[0], activation, f"encoder_conv_0_{j}")
    skips = [x]
    for k, f in enumerate(filters, start=1):
        is_code = code_size is None and k == n
        x = encoder_stage(x, k, f, code_activation if is_code else activation)
        skips.append(x)
    feature_shape = (height // factor, width // factor, filters[-1])
    if code_size is not None:
        x = keras.layers.Flatten(name="encoder_flatten")(x)
        x = keras.layers.Dense(code_size, activation=code_activation, name="encoder_code")(x)
    # skips[k] has the resolution of encoder stage k's output (skips[0]: the input, or the
    # full-resolution convolutions' output).
    skips = skips[:-1][::-1]
    encoder_outputs = [x, *skips] if skip_connections else x
    encoder = keras.Model(encoder_input, encoder_outputs, name="encoder")

    def decoder_input_for(tensor, input_name):
        return keras.Input(tuple(tensor.shape[1:]), name=input_name)

    if skip_connections:
        decoder_inputs = [decoder_input_for(x, "decoder_input")] + [
            decoder_input_for(s, f"decoder_skip_{n - i - 1}") for i, s in enumerate(skips)
        ]
        y, decoder_skips = decoder_inputs[0], decoder_inputs[1:]
    else:
        decoder_inputs = decoder_input_for(x, "decoder_input")
        y, decoder_skips = decoder_inputs, []
    if code_size is not None:
        units = math.prod(feature_shape)
        y = keras.layers.Dense(units, activation=activation, name="decoder_dense")(y)
        y = keras.layers.Reshape(feature_shape, name="decoder_reshape")(y)
    for i, k in enumerate(range(n, 0, -1)):
        f = filters[k - 1]
        y = conv(
            y, f, activation, f"decoder_conv_{k}", strides=2, layer=keras.layers.Conv2DTranspose
        )
        if skip_connections:
            y = keras.layers.Concatenate(name=f"decoder_concat_{k}")([y, decoder_skips[i]])
        for j in range(2, convs_per_stage + 1):
            y = conv(y, f, activation, f"decoder_conv_{k}_{j}")
    y = keras.layers.Conv2D(
        channels, kernel_size, padding="same", activation=output_activation, name="decoder_output"
    )(y)
    decoder = keras.Model(decoder_inputs, y, name="decoder")
    return _assemble(input_shape, encoder, decoder, name)


def sparse_autoencoder(
    input_shape: Sequence[int],
    code_size: int = 64,
    hidden: Sequence[int] = (),
    sparsity_weight: float = 1e-3,
    sparsity_target: float | None = None,
    activation: str = "relu",
    code_activation: str = "sigmoid",
    output_activation: str = "sigmoid",
    name: str = "sparse_autoencoder",
) -> keras.Model:
    """Dense autoencoder whose code is kept sparse by a penalty; the code may be overcomplete.

    "Sparsity: use a penalty function that encourages most hidden unit activations to be near
    0" (slides). The code layer carries `i2dl_keras.regularizers.Sparsity` as its activity
    regularizer, so the training loss is the reconstruction error plus, per batch,
    `sparsity_weight * mean_batch(sum_j |a_j|)` (the slides' L1 form, `sparsity_target=None`)
    or `sparsity_weight * sum_j KL(rho || rho_hat_j)` (the KL form with target mean activation
    `rho = sparsity_target`). Since the penalty, not the width, stops the identity solution,
    `code_size` may exceed the input size.

    Args:
        input_shape: Shape of one sample, without the batch axis.
        code_size: Width of the code; may be larger than the input. Defaults to `64`.
        hidden: Widths of the encoder's hidden layers before the code. Defaults to `()`.
        sparsity_weight: The penalty's factor, a float >= 0. Defaults to `1e-3`.
        sparsity_target: Target mean activation in (0, 1) for the KL form, or `None` for the
            L1 form. The KL form needs `code_activation="sigmoid"`. Defaults to `None`.
        activation: Activation of the hidden layers. Defaults to `"relu"`.
        code_activation: Activation of the code. Defaults to `"sigmoid"`.
        output_activation: Activation of the reconstruction. Defaults to `"sigmoid"`.
        name: Name of the model. Defaults to `"sparse_autoencoder"`.

    Returns:
        An uncompiled `keras.Model` with nested `"encoder"` and `"decoder"` models.

    Raises:
        ValueError: if an argument is malformed, or `sparsity_target` is set with a code
            activation other than `"sigmoid"`.

    Example:

    >>> ae = i2dl_keras.models.sparse_autoencoder(
    ...     (784,), code_size=1024, sparsity_weight=1e-3, sparsity_target=0.05)
    >>> ae.compile(optimizer="adam", loss="binary_crossentropy")
    """
    input_shape = _check_input_shape(input_shape)
    code_size = _checks.positive_int("code_size", code_size)
    hidden = _check_widths("hidden", hidden, 0)
    sparsity_weight = _checks.non_negative_float("sparsity_weight", sparsity_weight)
    code_activation = _check_activation("code_activation", code_activation)
    if sparsity_target is not None:
        if not _checks.is_real(sparsity_target) or not 0.0 < sparsity_target < 1.0:
            raise ValueError(
                "`sparsity_target` must be None or a float strictly between 0 and 1. "
                f"Received: sparsity_target={sparsity_target!r}"
            )
        if code_activation != "sigmoid":
            raise ValueError(
                "`code_activation` must be 'sigmoid' when `sparsity_target` is set: the KL "
                "penalty needs mean activations in (0, 1). "
                f"Received: code_activation={code_activation!r}"
            )
        sparsity_target = float(sparsity_target)

    def make_code_layer(units, layer_name):
        return keras.layers.Dense(
            units,
            activation=code_activation,
            activity_regularizer=Sparsity(weight=sparsity_weight, target=sparsity_target),
            name=layer_name,
        )

    encoder, decoder = _dense_encoder_decoder(
        input_shape,
        (*hidden, code_size),
        _check_activation("activation", activation),
        code_activation,
        _check_activation("output_activation", output_activation),
        make_code_layer=make_code_layer,
    )
    return _assemble(input_shape, encoder, decoder, _check_name(name))


def denoising_autoencoder(
    input_shape: Sequence[int],
    noise: str = "gaussian",
    noise_level: float = 0.1,
    conv: bool = False,
    seed: int | None = None,
    name: str = "denoising_autoencoder",
    **kwargs,
) -> keras.Model:
    """Autoencoder trained to reconstruct the clean input from a corrupted copy of it.

    The slides' procedure (Vincent et al., 2008): the clean `x` is corrupted by a stochastic
    mapping `x~ ~ q_D(x~ | x)`, the autoencoder maps `x~` to a code and reconstructs `z`, and
    the loss compares `z` with the *clean* `x` (fit with `model.fit(x, x)`). The corruption is
    a layer named `"corruption"` right after the input, active only in training:

    - `"gaussian"`: add `N(0, noise_level**2)` noise (`keras.layers.GaussianNoise`);
    - `"salt_pepper"`: set a fraction `noise_level` of the values to 0 or 1
      (`i2dl_keras.layers.SaltPepperNoise`);
    - `"masking"`: set a fraction `noise_level` of the values to 0
      (`i2dl_keras.layers.MaskingNoise`).

    At inference (`predict`, `model(x)`, export) the corruption is the identity and the model is
    the plain autoencoder, which then denoises corrupted inputs it is given.

    Args:
        input_shape: Shape of one sample, without the batch axis.
        noise: One of `"gaussian"`, `"salt_pepper"`, `"masking"`. Defaults to `"gaussian"`.
        noise_level: Standard deviation for `"gaussian"`, in [0, 1]; corruption probability
            for the others, in [0, 1). Defaults to `0.1`.
        conv: Whether to build the autoencoder with `conv_autoencoder` (images) instead of
            `bottleneck_autoencoder` (dense). Defaults to `False`.
        seed: Optional integer seed for the corruption. Defaults to `None`.
        name: Name of the model. Defaults to `"denoising_autoencoder"`.
        **kwargs: Arguments of the underlying builder, e.g. `code_size` and `hidden` for the
            dense form or `filters` and `code_size` for the conv form, with their defaults.
            (`conv=True` on `(28, 28, 1)` gives the 18,817-parameter conv autoencoder.)

    Returns:
        An uncompiled `keras.Model` with layers `input`, `corruption`, `encoder`, `decoder`.

    Raises:
        ValueError: if `noise` is unknown, `noise_level` is out of range, or an argument of the
            underlying builder is malformed.

    Example:

    >>> ae = i2dl_keras.models.denoising_autoencoder(
    ...     (28, 28, 1), noise="salt_pepper", noise_level=0.2, conv=True)
    >>> ae.compile(optimizer="adam", loss="binary_crossentropy")
    >>> ae.fit(images, images, epochs=5)  # corrupted in training, clean targets
    """
    if noise not in NOISE_TYPES:
        raise ValueError(f"`noise` must be one of {NOISE_TYPES}. Received: noise={noise!r}")
    upper = 1.0 if noise == "gaussian" else math.nextafter(1.0, 0.0)
    if not _checks.is_real(noise_level) or not 0.0 <= noise_level <= upper:
        expected = "in [0, 1] (a standard deviation)" if noise == "gaussian" else "in [0, 1)"
        raise ValueError(
            f"`noise_level` must be a float {expected} for noise={noise!r}. "
            f"Received: noise_level={noise_level!r}"
        )
    if not isinstance(conv, bool):
        raise ValueError(f"`conv` must be True or False. Received: conv={conv!r}")
    seed = _checks.optional_seed("seed", seed)
    name = _check_name(name)
    builder = conv_autoencoder if conv else bottleneck_autoencoder
    base = builder(input_shape, **kwargs)
    if noise == "gaussian":
        corruption = keras.layers.GaussianNoise(float(noise_level), seed=seed, name="corruption")
    elif noise == "salt_pepper":
        corruption = SaltPepperNoise(float(noise_level), seed=seed, name="corruption")
    else:
        corruption = MaskingNoise(float(noise_level), seed=seed, name="corruption")
    return _assemble(
        tuple(base.input_shape[1:]), get_encoder(base), get_decoder(base), name, corruption
    )


def contractive_autoencoder(
    input_shape: Sequence[int],
    code_size: int = 32,
    contraction: float = 1e-3,
    activation: str = "sigmoid",
    output_activation: str = "sigmoid",
    name: str = "contractive_autoencoder",
) -> keras.Model:
    """Contractive autoencoder: a one-layer encoder whose Jacobian norm is penalised.

    "Contractive: force encoder to have small derivatives of hidden unit output as input varies"
    (slides; Rifai et al., 2011). The loss is the reconstruction error plus
    `contraction * mean_batch ||dh/dx||_F^2`, added by the encoder's
    `i2dl_keras.layers.ContractiveDense` layer (`encoder_dense_1`). The encoder is one dense
    layer, for which the penalty is exact in closed form; stack several with
    `greedy_layerwise_pretrain` for a deep contractive encoder.

    Args:
        input_shape: Shape of one sample, without the batch axis.
        code_size: Width of the code. Defaults to `32`.
        contraction: Weight of the Jacobian penalty, a float >= 0. Defaults to `1e-3`.
        activation: Code activation: `"sigmoid"`, `"tanh"`, `"relu"` or `"linear"`.
            Defaults to `"sigmoid"`.
        output_activation: Activation of the reconstruction. Defaults to `"sigmoid"`.
        name: Name of the model. Defaults to `"contractive_autoencoder"`.

    Returns:
        An uncompiled `keras.Model` with nested `"encoder"` and `"decoder"` models.

    Raises:
        ValueError: if an argument is malformed.

    Example:

    >>> ae = i2dl_keras.models.contractive_autoencoder((784,), code_size=64, contraction=1e-2)
    >>> ae.compile(optimizer="adam", loss="mse")
    """
    input_shape = _check_input_shape(input_shape)
    code_size = _checks.positive_int("code_size", code_size)
    contraction = _checks.non_negative_float("contraction", contraction)
    if activation not in CONTRACTIVE_ACTIVATIONS:
        raise ValueError(
            f"`activation` must be one of {CONTRACTIVE_ACTIVATIONS}. "
            f"Received: activation={activation!r}"
        )

    def make_code_layer(units, layer_name):
        return ContractiveDense(
            units, activation=activation, contraction=contraction, name=layer_name
        )

    encoder, decoder = _dense_encoder_decoder(
        input_shape,
        (code_size,),
        activation,
        activation,
        _check_activation("output_activation", output_activation),
        make_code_layer=make_code_layer,
    )
    return _assemble(input_shape, encoder, decoder, _check_name(name))


def stacked_autoencoder(
    input_shape: Sequence[int],
    units: Sequence[int] = (256, 64),
    activation: str = "relu",
    code_activation: str | None = None,
    output_activation: str = "sigmoid",
    name: str = "stacked_autoencoder",
) -> keras.Model:
    """Deep dense autoencoder built for greedy layer-wise pretraining ("stacking autoencoders").

    Encoder layer k (`encoder_dense_k`, width `units[k - 1]`) and its mirror `decoder_dense_k`
    form the k-th shallow autoencoder of the stack: it reconstructs the output of encoder layer
    k - 1 (the input for k = 1), with that layer's activation. Train them one at a time with
    `i2dl_keras.models.stacked.greedy_layerwise_pretrain`, then fine-tune the whole
    autoencoder, or the encoder with a classifier head
    (`i2dl_keras.models.stacked.classifier_from_encoder`), as in the slides' "stacking
    autoencoders, then fine-tuning".

    Args:
        input_shape: Shape of one sample, without the batch axis.
        units: Widths of the encoder layers, from the input to the code. Defaults to
            `(256, 64)`.
        activation: Activation of the hidden layers. Defaults to `"relu"`.
        code_activation: Activation of the last encoder layer, or `None` for `activation`.
            Defaults to `None`.
        output_activation: Activation of the reconstruction. Defaults to `"sigmoid"`.
        name: Name of the model. Defaults to `"stacked_autoencoder"`.

    Returns:
        An uncompiled `keras.Model` with nested `"encoder"` and `"decoder"` models.

    Raises:
        ValueError: if an argument is malformed.

    Example:

    >>> ae = i2dl_keras.models.stacked_autoencoder((784,), units=(256, 64))
    >>> histories = i2dl_keras.models.greedy_layerwise_pretrain(ae, x, epochs=3)
    """
    input_shape = _check_input_shape(input_shape)
    units = _check_widths("units", units, 1)
    activation = _check_activation("activation", activation)
    code_activation = activation if code_activation is None else code_activation
    encoder, decoder = _dense_encoder_decoder(
        input_shape,
        units,
        activation,
        _check_activation("code_activation", code_activation),
        _check_activation("output_activation", output_activation),
    )
    return _assemble(input_shape, encoder, decoder, _check_name(name))
