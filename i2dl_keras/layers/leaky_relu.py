"""Leaky ReLU with a fixed slope for negative inputs."""

import keras

from i2dl_keras.layers._shape_preserving import FixedSlopeActivation, leaky


@keras.saving.register_keras_serializable(package="i2dl_keras")
class LeakyReLU(FixedSlopeActivation):
    """Leaky rectified linear unit: `f(x) = x` for `x >= 0` and `alpha * x` otherwise.

    The course writes it `f(x) = max(0.01 x, x)`: the small fixed slope keeps a gradient for
    negative inputs, which solves the "dead ReLU" problem. For `0 <= alpha <= 1` the two forms
    agree; this layer computes the piecewise form, so `alpha > 1` still means "slope `alpha` on
    the negative side" rather than a maximum.

    Args:
        alpha: Slope for negative inputs, a finite float >= 0. Defaults to `0.01`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        Any shape.

    Output shape:
        Same shape as the input.

    Raises:
        ValueError: if `alpha` is not a finite float >= 0.

    Example:

    >>> layer = i2dl_keras.layers.LeakyReLU(alpha=0.1)
    >>> y = layer(np.array([-2.0, 3.0], "float32"))
    >>> np.round(keras.ops.convert_to_numpy(y).astype("float64"), 3).tolist()
    [-0.2, 3.0]
    """

    def __init__(self, alpha=0.01, **kwargs):
        super().__init__(alpha, **kwargs)

    def call(self, inputs):
        return leaky(inputs, self.alpha)
