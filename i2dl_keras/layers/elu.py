"""Exponential linear unit."""

import keras

from i2dl_keras.layers._shape_preserving import FixedSlopeActivation


@keras.saving.register_keras_serializable(package="i2dl_keras")
class ELU(FixedSlopeActivation):
    """Exponential linear unit: `f(x) = x` for `x > 0` and `alpha * (exp(x) - 1)` otherwise.

    As in the course (Clevert et al. 2016): all benefits of ReLU, it does not die, and its
    outputs are closer to zero mean because negative inputs saturate smoothly at `-alpha`. The
    exponential is taken of `min(x, 0)` only, so large positive inputs cannot overflow it and
    poison the gradient with `inf * 0`.

    Args:
        alpha: Scale of the negative branch, a finite float >= 0. Defaults to `1.0`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        Any shape.

    Output shape:
        Same shape as the input.

    Raises:
        ValueError: if `alpha` is not a finite float >= 0.

    Example:

    >>> layer = i2dl_keras.layers.ELU(alpha=1.0)
    >>> y = layer(np.array([-1.0, 2.0], "float32"))  # [exp(-1) - 1, 2]
    >>> np.round(keras.ops.convert_to_numpy(y).astype("float64"), 3).tolist()
    [-0.632, 2.0]
    """

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(alpha, **kwargs)

    def call(self, inputs):
        negative = self.alpha * keras.ops.expm1(keras.ops.minimum(inputs, 0.0))
        return keras.ops.where(inputs > 0, inputs, negative)
