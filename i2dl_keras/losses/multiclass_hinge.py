"""Multiclass hinge (SVM) loss in the Weston-Watkins form."""

from __future__ import annotations

import keras
from keras import ops

from i2dl_keras.losses._common import as_float, check_non_negative, class_labels
from i2dl_keras.losses.loss_function_wrapper import LossFunctionWrapper


@keras.saving.register_keras_serializable(package="i2dl_keras")
def multiclass_hinge(y_true, y_pred, margin: float = 1.0):
    """Multiclass SVM loss: `sum_{j != y} max(0, s_j - s_y + margin)` per sample.

    Course notes, "Hinge Loss (Multiclass SVM Loss)" (Weston and Watkins, 1999): every wrong class
    whose score `s_j` comes within `margin` of the correct class's score `s_y` adds the shortfall.
    Unlike cross-entropy the loss saturates: once the correct class wins by the margin it is
    exactly zero and gives no gradient.

    Args:
        y_true: Integer class ids, shape `(batch,)` or `(batch, 1)`, or one-hot rows of shape
            `(batch, num_classes)`.
        y_pred: Class scores, shape `(batch, num_classes)`.
        margin: The required lead of the correct class, `>= 0`. Defaults to `1.0`.

    Returns:
        The per-sample loss, shape `(batch,)`.

    Raises:
        ValueError: if `margin` is negative or not a finite number.

    Example:
        ```python
        scores = [[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]]
        loss = i2dl_keras.losses.multiclass_hinge([0, 1, 2], scores)  # [2.9, 0.0, 12.9]
        ```
    """
    margin = check_non_negative(margin, "margin")
    y_pred = as_float(y_pred)
    one_hot = class_labels(ops.convert_to_tensor(y_true), y_pred)
    correct = ops.sum(one_hot * y_pred, axis=-1, keepdims=True)
    # The correct class would contribute max(0, margin) to the sum; the mask removes it.
    shortfalls = ops.relu(y_pred - correct + margin) * (1.0 - one_hot)
    return ops.sum(shortfalls, axis=-1)


@keras.saving.register_keras_serializable(package="i2dl_keras")
class MulticlassHinge(LossFunctionWrapper):
    """Multiclass hinge (SVM) loss per sample, averaged over the batch.

    The class form of `i2dl_keras.losses.multiclass_hinge`. Keras' own `CategoricalHinge` is the
    Crammer-Singer variant (only the largest wrong score counts); this one sums over all wrong
    classes as the course does.

    Args:
        margin: The required lead of the correct class's score, `>= 0`. Defaults to `1.0`.
        reduction: How per-sample losses are combined, as in `keras.losses.Loss`. Defaults to
            `"sum_over_batch_size"`.
        name: Name of the loss instance. Defaults to `"multiclass_hinge"`.
        dtype: Dtype of the loss computation. Defaults to `None` (`keras.config.floatx()`).

    Raises:
        ValueError: if `margin` is negative or not a finite number, or `reduction` is not one
            Keras knows.

    Example:
        ```python
        model.compile(optimizer="sgd", loss=i2dl_keras.losses.MulticlassHinge(margin=1.0))
        ```
    """

    def __init__(
        self,
        margin: float = 1.0,
        reduction="sum_over_batch_size",
        name="multiclass_hinge",
        dtype=None,
    ):
        super().__init__(
            multiclass_hinge,
            reduction=reduction,
            name=name,
            dtype=dtype,
            margin=check_non_negative(margin, "margin"),
        )
