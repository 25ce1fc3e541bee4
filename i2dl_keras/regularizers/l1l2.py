"""Combined L1 and L2 weight penalty (elastic net)."""

from __future__ import annotations

import keras
from keras import ops

from i2dl_keras.regularizers._validation import check_factor


@keras.saving.register_keras_serializable(package="i2dl_keras")
class L1L2(keras.regularizers.Regularizer):
    """L1 plus L2 weight regularizer: `R(w) = l1 * sum_i |w_i| + l2 * sum_i w_i^2`.

    The sum of `i2dl_keras.regularizers.L1` and `i2dl_keras.regularizers.L2` (the elastic net):
    the L1 part makes weights sparse, the L2 part keeps the surviving ones small.

    Args:
        l1: The L1 factor, a finite number `>= 0`. Defaults to `0.0`.
        l2: The L2 factor, a finite number `>= 0`. Defaults to `0.0`.

    Returns:
        Called on a weight tensor, a scalar tensor: the penalty.

    Raises:
        ValueError: if `l1` or `l2` is negative or not a finite number.

    Example:
        ```python
        reg = i2dl_keras.regularizers.L1L2(l1=1e-5, l2=1e-4)
        dense = keras.layers.Dense(8, kernel_regularizer=reg)
        ```
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = check_factor(l1, "l1")
        self.l2 = check_factor(l2, "l2")

    def __call__(self, x):
        return self.l1 * ops.sum(ops.abs(x)) + self.l2 * ops.sum(ops.square(x))

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}
