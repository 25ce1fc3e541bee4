"""Sobel initializer: fills 3x3 convolution kernels with the Sobel edge filters."""

from __future__ import annotations

import keras
import numpy as np

DIRECTIONS = ("x", "y")

# Keras' Conv2D computes a cross-correlation, so this kernel gives
# x[i, j+1] - x[i, j-1] (weighted 1, 2, 1 over the rows): positive where brightness grows
# to the right.
_SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
_FILTERS = {"x": _SOBEL_X, "y": _SOBEL_X.T}


@keras.saving.register_keras_serializable(package="i2dl_keras")
class Sobel(keras.initializers.Initializer):
    """Initializer that sets 3x3 convolution kernels to the Sobel edge filters.

    The course's example of a handcrafted feature, the Sobel 2-D filter, as a starting point
    (or a frozen front end) for a `Conv2D`. `G_x = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]`
    estimates the derivative along the width, so it responds to vertical edges (brightness
    growing to the right gives a positive output, since `Conv2D` cross-correlates);
    `G_y = G_x^T` estimates the derivative along the height and responds to horizontal edges
    (positive where brightness grows downwards). Output channel `j` gets
    `directions[j % len(directions)]`, so the default alternates `G_x`, `G_y`, `G_x`, ...

    Every input channel gets the same filter divided by the number of input channels, so an
    output channel is the Sobel response of the channels' mean: a grey image and its RGB copy
    give the same edges. A unit step edge gives a response of 4 (`1 + 2 + 1`).

    Args:
        directions: The filters to cycle over the output channels, a sequence of `"x"`
            (`G_x`, vertical edges) and `"y"` (`G_y`, horizontal edges), or one of them as a
            string. Defaults to `("x", "y")`.

    Returns:
        Called with `(shape, dtype=None)` for a kernel of shape `(3, 3, C_in, C_out)`, a
        tensor of that shape.

    Raises:
        ValueError: if `directions` is empty or holds anything but `"x"` and `"y"`, a call
            asks for another shape than `(3, 3, C_in, C_out)`, or for a non-floating dtype.

    Example:
        ```python
        edges = keras.layers.Conv2D(
            2, 3, kernel_initializer=i2dl_keras.initializers.Sobel(), use_bias=False
        )
        ```
    """

    def __init__(self, directions=DIRECTIONS):
        given = directions
        if isinstance(directions, str):
            directions = (directions,)
        if (
            not isinstance(directions, (list, tuple))
            or not directions
            or any(d not in DIRECTIONS for d in directions)
        ):
            raise ValueError(
                f"Argument `directions` must be a non-empty sequence of {DIRECTIONS}. "
                f"Received: directions={given!r}"
            )
        self.directions = tuple(directions)

    def __call__(self, shape, dtype=None):
        dtype = keras.backend.standardize_dtype(dtype or keras.config.floatx())
        if not keras.backend.is_float_dtype(dtype):
            raise ValueError(
                f"Argument `dtype` must be a floating dtype. Received: dtype={dtype!r}"
            )
        shape = tuple(shape)
        if len(shape) != 4 or shape[:2] != (3, 3):
            raise ValueError(
                "The Sobel filters need a 3x3 Conv2D kernel of shape (3, 3, C_in, C_out). "
                f"Received: shape={shape!r}"
            )
        channels_in, channels_out = shape[2], shape[3]
        kernel = np.stack(
            [_FILTERS[self.directions[j % len(self.directions)]] for j in range(channels_out)],
            axis=-1,
        )
        kernel = np.repeat(kernel[:, :, None, :], channels_in, axis=2) / channels_in
        return keras.ops.convert_to_tensor(kernel, dtype=dtype)

    def get_config(self):
        return {"directions": list(self.directions)}
