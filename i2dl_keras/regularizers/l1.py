"""L1 weight penalty: `l1 * sum |w|`."""

from __future__ import annotations

import keras
from keras import ops

from i2dl_keras.regularizers._validation import check_factor


@keras.saving.register_keras_serializable(package="i2dl_keras")
class L1(keras.regularizers.Regularizer):
    """L1 weight regularizer: `R(w) = l1 * sum_i |w_i|`.

    Course notes, "Regularization": the L1 term is added to the cost `J = (1/N) sum L_i +
    lambda R(theta)`. Its gradient `l1 * sign(w)` pulls every weight towards zero by the same
    amount whatever its size, so small weights reach exactly zero: L1 selects a few key features
    and makes the weights sparse.

    Args:
        l1: The factor `lambda`, a finite number `>= 0`. Defaults to `0.01`.

    Returns:
        Called on a weight tensor, a scalar tensor: the penalty.

    Raises:
        ValueError: if `l1` is negative or not a finite number.

    Example:
        ```python
        dense = keras.layers.Dense(8, kernel_regularizer=i2dl_keras.regularizers.L1(1e-4))
        ```
    """

    def __init__(self, l1: float = 0.01):
        self.l1 = check_factor(l1, "l1")

    def __call__(self, x):
        return self.l1 * ops.sum(ops.abs(x))

    def get_config(self):
        return {"l1": self.l1}
