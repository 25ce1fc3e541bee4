"""L2 loss: the sum of squared errors."""

from __future__ import annotations

import keras
from keras import ops

from i2dl_keras.losses._common import as_tensors, match_rank
from i2dl_keras.losses.loss_function_wrapper import LossFunctionWrapper


@keras.saving.register_keras_serializable(package="i2dl_keras")
def l2(y_true, y_pred):
    """Sum of squared errors over the last axis, one value per sample.

    `L2(y, y_hat) = sum_j (y_j - y_hat_j)^2`. Cheap to compute and smooth, but sensitive to
    outliers, whose errors count quadratically; the constant prediction that minimises it is the
    mean of the targets. `mean_squared_error` divides the same sum by the number of entries.

    Args:
        y_true: Targets, shape `(batch, ..., d)`.
        y_pred: Predictions, same shape (a trailing axis of size 1 may be missing on either).

    Returns:
        The per-sample loss, shape `(batch, ...)`.

    Example:
        ```python
        loss = i2dl_keras.losses.l2([[1.0, 2.0]], [[0.0, 4.0]])  # [5.0]: 1 + 4
        ```
    """
    y_true, y_pred = match_rank(*as_tensors(y_true, y_pred))
    return ops.sum(ops.square(y_true - y_pred), axis=-1)


@keras.saving.register_keras_serializable(package="i2dl_keras", name="L2Loss")
class L2(LossFunctionWrapper):
    """L2 loss: the sum of squared errors per sample, averaged over the batch.

    The class form of `i2dl_keras.losses.l2`. It is registered as `"i2dl_keras>L2Loss"` so that
    it does not collide with the regularizer `L2`.

    Args:
        reduction: How per-sample losses are combined, as in `keras.losses.Loss`. Defaults to
            `"sum_over_batch_size"`.
        name: Name of the loss instance. Defaults to `"l2"`.
        dtype: Dtype of the loss computation. Defaults to `None` (`keras.config.floatx()`).

    Raises:
        ValueError: if `reduction` is not one Keras knows.

    Example:
        ```python
        model.compile(optimizer="sgd", loss=i2dl_keras.losses.L2())
        ```
    """

    def __init__(self, reduction="sum_over_batch_size", name="l2", dtype=None):
        super().__init__(l2, reduction=reduction, name=name, dtype=dtype)
