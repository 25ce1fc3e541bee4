"""The corruption processes of the denoising autoencoder, as functions of a seed.

`MaskingNoise` and `SaltPepperNoise` call these inside a model; a `tf.data` pipeline calls them
with a seed tensor to corrupt images before the model (e.g. noise fixed per image for
validation). One implementation, so a layer and a pipeline with the same seed corrupt alike.
"""

from __future__ import annotations

from typing import Any

import keras

from i2dl_keras.layers import _checks


def _is_stateful_seed(seed: Any) -> bool:
    return seed is None or _checks.is_int(seed) or isinstance(seed, keras.random.SeedGenerator)


def _draw(kind: str, inputs: Any, seed: Any) -> Any:
    """Standard normal or uniform [0, 1) values of `inputs`' shape and dtype.

    Integers, `SeedGenerator`s and `None` go to `keras.random` (any backend). A shape-`[2]`
    integer tensor draws statelessly with `tf.random.stateless_*`, which `tf.data` maps and
    graphs accept; `keras.random` takes no tensor seeds.
    """
    dtype = keras.backend.standardize_dtype(inputs.dtype)
    if _is_stateful_seed(seed):
        if seed is not None and _checks.is_int(seed):
            _checks.non_negative_int("seed", seed)
        draw = keras.random.normal if kind == "normal" else keras.random.uniform
        return draw(keras.ops.shape(inputs), dtype=dtype, seed=seed)
    import tensorflow as tf

    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer or seed.shape.rank != 1 or seed.shape[0] not in (None, 2):
        raise ValueError(
            "`seed` must be an integer, a `keras.random.SeedGenerator`, None or a shape-[2] "
            f"integer tensor. Received: seed={seed!r}"
        )
    draw = tf.random.stateless_normal if kind == "normal" else tf.random.stateless_uniform
    return draw(tf.shape(inputs), seed=seed, dtype=dtype)


def _check_bounds(low: Any, high: Any, required: bool) -> None:
    for name, value in (("low", low), ("high", high)):
        if (required or value is not None) and not _checks.is_real(value):
            raise ValueError(f"`{name}` must be a number. Received: {name}={value!r}")
    if low is not None and high is not None and high < low:
        raise ValueError(f"`high` must be a number >= low={low!r}. Received: high={high!r}")


def gaussian_corruption(
    inputs: Any,
    stddev: float,
    seed: Any = None,
    low: float | None = None,
    high: float | None = None,
) -> Any:
    """Adds zero-mean Gaussian noise, then clips to `[low, high]` where they are given.

    The additive isotropic Gaussian corruption `x~ = x + stddev * z`, `z ~ N(0, I)`, of the
    denoising autoencoder (Vincent et al., 2010). With pixels in [0, 1], `low=0, high=1` keeps
    the corrupted image a valid image.

    Args:
        inputs: Float tensor of any shape.
        stddev: Standard deviation of the noise, a float >= 0.
        seed: An integer, a `keras.random.SeedGenerator` or `None`, as in `keras.random` (a
            layer passes its generator); or a shape-`[2]` integer tensor for stateless draws in
            `tf.data` (TensorFlow). An integer or a tensor gives the same noise on every call.
            Defaults to `None`.
        low: Lower clipping bound, or `None`. Defaults to `None`.
        high: Upper clipping bound, or `None`. Defaults to `None`.

    Returns:
        The corrupted tensor, of the input's shape and dtype.

    Raises:
        ValueError: if `stddev` is negative, `low > high`, or `seed` is of another kind.

    Example:

    >>> x = np.full((2, 8), 0.5, "float32")
    >>> y = i2dl_keras.layers.gaussian_corruption(x, 0.1, seed=0, low=0.0, high=1.0)
    """
    stddev = _checks.non_negative_float("stddev", stddev)
    _check_bounds(low, high, required=False)
    inputs = keras.ops.convert_to_tensor(inputs)
    noisy = inputs + keras.ops.cast(stddev, inputs.dtype) * _draw("normal", inputs, seed)
    if low is not None or high is not None:
        noisy = keras.ops.clip(
            noisy,
            float("-inf") if low is None else low,
            float("inf") if high is None else high,
        )
    return noisy


def masking_corruption(inputs: Any, rate: float, seed: Any = None) -> Any:
    """Sets each element to zero with probability `rate`; the others pass through unscaled.

    The masking corruption of the denoising autoencoder (Vincent et al., 2008). Unlike dropout,
    the kept elements are not divided by `1 - rate`: the result looks like damaged data.

    Args:
        inputs: Tensor of any shape.
        rate: Probability that an element is zeroed, a float in [0, 1).
        seed: As in `gaussian_corruption`. Defaults to `None`.

    Returns:
        The corrupted tensor, of the input's shape and dtype.

    Raises:
        ValueError: if `rate` is not in [0, 1) or `seed` is of another kind.

    Example:

    >>> y = i2dl_keras.layers.masking_corruption(np.ones((2, 8), "float32"), 0.25, seed=0)
    """
    rate = _checks.rate("rate", rate)
    inputs = keras.ops.convert_to_tensor(inputs)
    hit = _draw("uniform", inputs, seed) < rate
    return keras.ops.where(hit, keras.ops.zeros_like(inputs), inputs)


def salt_pepper_corruption(
    inputs: Any, rate: float, seed: Any = None, low: float = 0.0, high: float = 1.0
) -> Any:
    """Sets each element with probability `rate` to `low` or `high`, on a fair coin flip.

    The salt-and-pepper corruption of the denoising autoencoder (Vincent et al., 2010). One
    uniform draw `u` per element decides both: `u < rate / 2` gives `low` ("pepper"),
    `rate / 2 <= u < rate` gives `high` ("salt"), and the element is kept otherwise.

    Args:
        inputs: Tensor of any shape.
        rate: Probability that an element is replaced, a float in [0, 1).
        seed: As in `gaussian_corruption`. Defaults to `None`.
        low: The "pepper" value, usually the inputs' minimum. Defaults to `0.0`.
        high: The "salt" value, usually the inputs' maximum. Defaults to `1.0`.

    Returns:
        The corrupted tensor, of the input's shape and dtype.

    Raises:
        ValueError: if `rate` is not in [0, 1), `low` or `high` is not a number, `low > high`,
            or `seed` is of another kind.

    Example:

    >>> x = np.full((2, 8), 0.5, "float32")
    >>> y = i2dl_keras.layers.salt_pepper_corruption(x, 0.2, seed=0)  # about 20% now 0.0 or 1.0
    """
    rate = _checks.rate("rate", rate)
    _check_bounds(low, high, required=True)
    inputs = keras.ops.convert_to_tensor(inputs)
    u = _draw("uniform", inputs, seed)
    replacement = keras.ops.where(
        u < rate / 2, keras.ops.cast(low, inputs.dtype), keras.ops.cast(high, inputs.dtype)
    )
    return keras.ops.where(u < rate, replacement, inputs)
