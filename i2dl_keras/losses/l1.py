"""L1 loss: the sum of absolute errors."""

from __future__ import annotations

import keras
from keras import ops

from i2dl_keras.losses._common import as_tensors, match_rank
from i2dl_keras.losses.loss_function_wrapper import LossFunctionWrapper


@keras.saving.register_keras_serializable(package="i2dl_keras")
def l1(y_true, y_pred):
    """Sum of absolute errors over the last axis, one value per sample.

    `L1(y, y_hat) = sum_j |y_j - y_hat_j|`. The L1 loss is robust to outliers because each error
    counts linearly.

    Erratum: the course notes say the optimum of the L1 loss is the mean. It is the MEDIAN: the
    constant `c` that minimises `sum_i |y_i - c|` has a subgradient `sum_i sign(c - y_i)` that is
    zero when as many targets lie above `c` as below it. (The L2 loss is minimised by the mean.)

    Args:
        y_true: Targets, shape `(batch, ..., d)`.
        y_pred: Predictions, same shape (a trailing axis of size 1 may be missing on either).

    Returns:
        The per-sample loss, shape `(batch, ...)`.

    Example:
        ```python
        loss = i2dl_keras.losses.l1([[1.0, 2.0]], [[0.0, 4.0]])  # [3.0]: |1| + |-2|
        ```
    """
    y_true, y_pred = match_rank(*as_tensors(y_true, y_pred))
    return ops.sum(ops.abs(y_true - y_pred), axis=-1)


@keras.saving.register_keras_serializable(package="i2dl_keras", name="L1Loss")
class L1(LossFunctionWrapper):
    """L1 loss: the sum of absolute errors per sample, averaged over the batch.

    The class form of `i2dl_keras.losses.l1` (see there for the formula and the erratum: the
    minimiser over a constant prediction is the median, not the mean). It is registered as
    `"i2dl_keras>L1Loss"` so that it does not collide with the regularizer `L1`.

    Args:
        reduction: How per-sample losses are combined, as in `keras.losses.Loss`. Defaults to
            `"sum_over_batch_size"`.
        name: Name of the loss instance. Defaults to `"l1"`.
        dtype: Dtype of the loss computation. Defaults to `None` (`keras.config.floatx()`).

    Raises:
        ValueError: if `reduction` is not one Keras knows.

    Example:
        ```python
        model.compile(optimizer="sgd", loss=i2dl_keras.losses.L1())
        ```
    """

    def __init__(self, reduction="sum_over_batch_size", name="l1", dtype=None):
        super().__init__(l1, reduction=reduction, name=name, dtype=dtype)
