"""Fan-in and fan-out of a weight tensor."""

from __future__ import annotations

import math
from collections.abc import Sequence


def compute_fans(shape: Sequence[int]) -> tuple[int, int]:
    """Number of inputs and outputs that each weight of a kernel connects.

    A dense kernel `(in, out)` has `fan_in = in`, `fan_out = out`. A convolution kernel
    `(*kernel_spatial, c_in, c_out)`, e.g. `(kh, kw, c_in, c_out)`, has
    `fan_in = kh * kw * c_in` and `fan_out = kh * kw * c_out`: each output unit sums over the
    receptive field times the input channels. A vector `(n,)` counts `n` both ways and a scalar 1.

    Args:
        shape: The kernel's shape, a sequence of positive ints.

    Returns:
        `(fan_in, fan_out)` as ints.

    Raises:
        ValueError: if a dimension is not a positive int.

    Example:
        ```python
        i2dl_keras.initializers.compute_fans((3, 3, 16, 32))  # (144, 288)
        ```
    """
    shape = tuple(shape)
    for dim in shape:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"Argument `shape` must hold positive ints. Received: shape={shape!r}")
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field
