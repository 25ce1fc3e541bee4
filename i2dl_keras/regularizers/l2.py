"""L2 weight penalty: `l2 * sum w^2`."""

from __future__ import annotations

import keras
from keras import ops

from i2dl_keras.regularizers._validation import check_factor


@keras.saving.register_keras_serializable(package="i2dl_keras")
class L2(keras.regularizers.Regularizer):
    """L2 weight regularizer: `R(w) = l2 * sum_i w_i^2`.

    Course notes, "Regularization": the L2 term penalises large weights quadratically, so the
    network spreads its decision over many small weights and every neuron participates.

    Relation to weight decay: the penalty's gradient is `2 * l2 * w`, so a plain SGD step with
    learning rate `alpha` becomes `w - alpha * grad - (2 * alpha * l2) * w`, which is weight decay
    `w - alpha * grad - lambda * w` with `lambda = 2 * alpha * l2`. (Erratum: the course notes
    write the decay term as `lambda * theta^2`; it is linear in `theta`.) The equivalence holds
    only for plain SGD: adaptive optimizers such as Adam rescale this gradient per weight, which is
    why AdamW applies the decay `lambda * w` directly (decoupled) instead of through the loss.

    Args:
        l2: The factor `lambda`, a finite number `>= 0`. Defaults to `0.01`.

    Returns:
        Called on a weight tensor, a scalar tensor: the penalty.

    Raises:
        ValueError: if `l2` is negative or not a finite number.

    Example:
        ```python
        dense = keras.layers.Dense(8, kernel_regularizer=i2dl_keras.regularizers.L2(1e-4))
        ```
    """

    def __init__(self, l2: float = 0.01):
        self.l2 = check_factor(l2, "l2")

    def __call__(self, x):
        return self.l2 * ops.sum(ops.square(x))

    def get_config(self):
        return {"l2": self.l2}
