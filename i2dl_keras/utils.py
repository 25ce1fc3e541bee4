"""i2dl_keras.utils: the course's shape arithmetic (conv output, parameters, receptive field).

Plain Python: `conv_output_size` and `conv_params` need no TensorFlow, and `receptive_field`
imports Keras only when it is called.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["conv_output_size", "conv_params", "receptive_field"]

IntOrTuple = int | Sequence[int]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _per_dim(value: Any, name: str, ndim: int, minimum: int, allowed: str) -> tuple[int, ...]:
    """Broadcasts an int to `ndim` dimensions, or checks a sequence of `ndim` ints."""
    items = (value,) * ndim if _is_int(value) else value
    if (
        not isinstance(items, Sequence)
        or isinstance(items, str)
        or len(items) != ndim
        or not all(_is_int(v) and v >= minimum for v in items)
    ):
        raise ValueError(
            f"Argument `{name}` must be {allowed}, as an int or a sequence of {ndim} such ints. "
            f"Received: {name}={value!r}"
        )
    return tuple(items)


def conv_output_size(
    input_size: IntOrTuple,
    kernel_size: IntOrTuple,
    padding: IntOrTuple | str = 0,
    stride: IntOrTuple = 1,
) -> int | tuple[int, ...]:
    """Spatial output size of a convolution or pooling layer.

    `out = floor((N - F + 2P) / S) + 1` for input size `N`, window `F`, zero padding `P` on each
    side and stride `S`. Erratum: the course notes write this for a square input and square the
    result; it holds per spatial dimension, each with its own `N`, `F`, `P` and `S`, so a 3x5
    input gives a non-square output. `padding` may also be Keras' `"valid"` (`P = 0`) or `"same"`
    (`out = ceil(N / S)`, Keras padding as much as needed, unevenly if it must), or the course's
    `"full"` convolution, padded so that the whole filter sees the input end to end: `P = F - 1`
    on each side, `out = floor((N + F - 2) / S) + 1`, which is `N + F - 1` at stride 1 (the
    length of `np.convolve(x, w, mode="full")`).

    Args:
        input_size: `N`, an int >= 1 or one per spatial dimension.
        kernel_size: `F`, an int >= 1 or one per dimension.
        padding: `P`, an int >= 0 or one per dimension, or `"valid"`, `"same"` or `"full"`.
            Defaults to `0`.
        stride: `S`, an int >= 1 or one per dimension. Defaults to `1`.

    Returns:
        An int when every argument is an int (or a padding string), else a tuple of ints, one
        per spatial dimension.

    Raises:
        ValueError: if a size is not a positive int (padding: a non-negative int or
            `"valid"`/`"same"`/`"full"`), the sequences differ in length, or the window does not
            fit into the padded input.

    Example:
        ```python
        i2dl_keras.utils.conv_output_size((3, 5), 3, padding=1, stride=2)  # (2, 3)
        i2dl_keras.utils.conv_output_size(5, 3, padding="full")  # 7 = 5 + 3 - 1
        ```
    """
    lengths = {
        len(v)
        for v in (input_size, kernel_size, padding, stride)
        if isinstance(v, Sequence) and not isinstance(v, str)
    }
    if len(lengths) > 1:
        raise ValueError(
            "Arguments `input_size`, `kernel_size`, `padding` and `stride` must be ints or "
            "sequences of one length. Received: "
            f"input_size={input_size!r}, kernel_size={kernel_size!r}, padding={padding!r}, "
            f"stride={stride!r}"
        )
    scalar = not lengths
    ndim = lengths.pop() if lengths else 1
    sizes = _per_dim(input_size, "input_size", ndim, 1, "a positive int")
    kernels = _per_dim(kernel_size, "kernel_size", ndim, 1, "a positive int")
    strides = _per_dim(stride, "stride", ndim, 1, "a positive int")
    if isinstance(padding, str):
        if padding not in ("valid", "same", "full"):
            raise ValueError(
                "Argument `padding` must be a non-negative int, a sequence of them, or one of "
                f"'valid', 'same', 'full'. Received: padding={padding!r}"
            )
        # "full" pads F - 1 on each side; "same" is handled below.
        pads = tuple(f - 1 for f in kernels) if padding == "full" else (0,) * ndim
    else:
        pads = _per_dim(padding, "padding", ndim, 0, "a non-negative int or 'valid'/'same'/'full'")

    out = []
    for n, f, p, s in zip(sizes, kernels, pads, strides):
        if padding == "same":
            out.append(math.ceil(n / s))
            continue
        if n + 2 * p < f:
            raise ValueError(
                f"Argument `kernel_size` must fit into the padded input (N + 2P >= F). Received: "
                f"kernel_size={kernel_size!r} with input_size={input_size!r}, padding={padding!r}"
            )
        out.append((n - f + 2 * p) // s + 1)
    return out[0] if scalar else tuple(out)


def conv_params(
    kernel_size: IntOrTuple, in_channels: int, out_channels: int, use_bias: bool = True
) -> int:
    """Number of trainable parameters of a 2D convolution layer.

    Each of the `C_out` filters has an `F x F x C_in` kernel and one bias:
    `F * F * C_in * C_out + C_out` (course notes). A non-square kernel `(F_h, F_w)` has
    `F_h * F_w * C_in` weights per filter.

    Args:
        kernel_size: `F`, a positive int, or `(F_h, F_w)`.
        in_channels: `C_in`, a positive int.
        out_channels: `C_out`, a positive int.
        use_bias: Whether each filter has a bias. Defaults to `True`.

    Returns:
        The parameter count.

    Raises:
        ValueError: if a size is not a positive int or `use_bias` is not a bool.

    Example:
        ```python
        i2dl_keras.utils.conv_params(5, 3, 6)  # 456 = 5 * 5 * 3 * 6 + 6
        ```
    """
    kernel = _per_dim(kernel_size, "kernel_size", 2, 1, "a positive int")
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if not _is_int(value) or value < 1:
            raise ValueError(
                f"Argument `{name}` must be a positive int. Received: {name}={value!r}"
            )
    if not isinstance(use_bias, bool):
        raise ValueError(f"Argument `use_bias` must be a bool. Received: use_bias={use_bias!r}")
    return math.prod(kernel) * in_channels * out_channels + (out_channels if use_bias else 0)


def _flatten_layers(items: Any) -> list:
    layers = []
    for item in items:
        # A nested model (e.g. a Sequential block inside a Sequential) counts with its layers.
        if hasattr(item, "layers") and hasattr(item, "inputs"):
            layers.extend(_flatten_layers(item.layers))
        else:
            layers.append(item)
    return layers


def receptive_field(model_or_layers: Any) -> int | tuple[int, ...]:
    """Receptive field, in input pixels, of one output unit of a stack of conv and pooling layers.

    Course notes, "Receptive Field": the spatial extent of the input that went into computing one
    output unit. Going through the layers in order with `r = 1` and jump `j = 1` (the distance in
    input pixels between neighbouring units), each layer with window `k`, stride `s` and dilation
    `d` does `r += (k_eff - 1) * j` with `k_eff = d * (k - 1) + 1`, then `j *= s`. Padding does
    not change it. Convolutions (`Conv1D/2D/3D`, `DepthwiseConv2D`, `SeparableConv2D`, ...) and
    the max/average pooling layers count; layers without a spatial window (activations,
    normalization, dropout, dense, flatten, ...) are skipped. The stack is taken in the order of
    `model.layers`, i.e. as a chain.

    Args:
        model_or_layers: A Keras model (nested models are entered) or a list of Keras layers.

    Returns:
        An int when the receptive field is the same along every spatial axis, else a tuple with
        one int per axis.

    Raises:
        ValueError: if the input is neither a model nor a list of layers, holds no conv or
            pooling layer, mixes layers of different spatial rank, or holds a layer whose
            receptive field this recurrence cannot describe (transposed convolutions,
            upsampling and unpooling, global pooling).

    Example:
        ```python
        conv, pool = keras.layers.Conv2D(8, 3), keras.layers.MaxPooling2D(2)
        i2dl_keras.utils.receptive_field([conv, pool, keras.layers.Conv2D(8, 3)])  # 8
        ```
    """
    import keras

    # Unpooling mirrors a pooling layer's arguments but is no window over its input.
    from i2dl_keras.layers.max_unpooling2d import MaxUnpooling2D

    if isinstance(model_or_layers, keras.Model):
        layers = _flatten_layers(model_or_layers.layers)
    elif isinstance(model_or_layers, (list, tuple)) and all(
        isinstance(item, keras.layers.Layer) for item in model_or_layers
    ):
        layers = _flatten_layers(model_or_layers)
    else:
        raise ValueError(
            "Argument `model_or_layers` must be a Keras model or a list of Keras layers. "
            f"Received: model_or_layers={model_or_layers!r}"
        )

    unsupported = tuple(
        cls
        for cls in (
            getattr(keras.layers, name, None)
            for name in (
                "Conv1DTranspose",
                "Conv2DTranspose",
                "Conv3DTranspose",
                "UpSampling1D",
                "UpSampling2D",
                "UpSampling3D",
                "GlobalAveragePooling1D",
                "GlobalAveragePooling2D",
                "GlobalAveragePooling3D",
                "GlobalMaxPooling1D",
                "GlobalMaxPooling2D",
                "GlobalMaxPooling3D",
            )
        )
        if cls is not None
    ) + (MaxUnpooling2D,)
    field: list[int] | None = None
    jump: list[int] | None = None
    for layer in layers:
        if isinstance(layer, unsupported):
            raise ValueError(
                "Argument `model_or_layers` must hold only conv, pooling and non-spatial layers; "
                f"the receptive field through a {type(layer).__name__} is not a fixed window. "
                f"Received: model_or_layers={model_or_layers!r}"
            )
        if hasattr(layer, "kernel_size") and hasattr(layer, "strides"):
            window = tuple(layer.kernel_size)
            dilation = tuple(getattr(layer, "dilation_rate", None) or (1,) * len(window))
        elif hasattr(layer, "pool_size") and hasattr(layer, "strides"):
            window = tuple(layer.pool_size)
            dilation = (1,) * len(window)
        else:
            continue
        strides = tuple(layer.strides)
        if field is None:
            field, jump = [1] * len(window), [1] * len(window)
        if not len(window) == len(strides) == len(dilation) == len(field):
            raise ValueError(
                "Argument `model_or_layers` must hold layers of one spatial rank; "
                f"{layer.name} has a {len(window)}-D window after {len(field)}-D layers. "
                f"Received: model_or_layers={model_or_layers!r}"
            )
        for axis, (k, s, d) in enumerate(zip(window, strides, dilation)):
            field[axis] += d * (k - 1) * jump[axis]
            jump[axis] *= s
    if field is None:
        raise ValueError(
            "Argument `model_or_layers` must contain at least one conv or pooling layer. "
            f"Received: model_or_layers={model_or_layers!r}"
        )
    return field[0] if len(set(field)) == 1 else tuple(field)
