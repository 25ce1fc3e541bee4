"""Mean squared error: the mean of squared errors."""

from __future__ import annotations

import keras
from keras import ops

from i2dl_keras.losses._common import as_tensors, match_rank
from i2dl_keras.losses.loss_function_wrapper import LossFunctionWrapper


@keras.saving.register_keras_serializable(package="i2dl_keras")
def mean_squared_error(y_true, y_pred):
    """Mean of squared errors over the last axis, one value per sample.

    `MSE = (1/d) sum_j (t_j - p_j)^2` (course notes, "Mean Squared Error"): the L2 loss divided by
    the number of outputs `d`, so its scale does not grow with the output size.

    Args:
        y_true: Targets, shape `(batch, ..., d)`.
        y_pred: Predictions, same shape (a trailing axis of size 1 may be missing on either).

    Returns:
        The per-sample loss, shape `(batch, ...)`.

    Example:
        ```python
        y_true, y_pred = [[1.0, 2.0]], [[0.0, 4.0]]
        loss = i2dl_keras.losses.mean_squared_error(y_true, y_pred)  # [2.5]: (1 + 4) / 2
        ```
    """
    y_true, y_pred = match_rank(*as_tensors(y_true, y_pred))
    return ops.mean(ops.square(y_true - y_pred), axis=-1)


@keras.saving.register_keras_serializable(package="i2dl_keras")
class MeanSquaredError(LossFunctionWrapper):
    """Mean squared error per sample, averaged over the batch.

    The class form of `i2dl_keras.losses.mean_squared_error`.

    Args:
        reduction: How per-sample losses are combined, as in `keras.losses.Loss`. Defaults to
            `"sum_over_batch_size"`.
        name: Name of the loss instance. Defaults to `"mean_squared_error"`.
        dtype: Dtype of the loss computation. Defaults to `None` (`keras.config.floatx()`).

    Raises:
        ValueError: if `reduction` is not one Keras knows.

    Example:
        ```python
        model.compile(optimizer="sgd", loss=i2dl_keras.losses.MeanSquaredError())
        ```
    """

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None):
        super().__init__(mean_squared_error, reduction=reduction, name=name, dtype=dtype)
