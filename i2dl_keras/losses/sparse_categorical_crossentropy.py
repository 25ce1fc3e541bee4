"""Categorical cross-entropy for integer class labels."""

from __future__ import annotations

import keras
from keras import ops

from i2dl_keras.losses._common import as_float, check_bool, class_labels, log_probabilities
from i2dl_keras.losses.loss_function_wrapper import LossFunctionWrapper


@keras.saving.register_keras_serializable(package="i2dl_keras")
def sparse_categorical_crossentropy(y_true, y_pred, from_logits: bool = False):
    """Negative log-likelihood of the correct class, for integer class ids.

    The same loss as `categorical_crossentropy`, `-log(softmax(s)_y)`, with the label given as the
    class id `y` instead of a one-hot row. Logits go through a max-shifted log-softmax;
    probabilities are renormalised and clipped to `[eps, 1 - eps]`.

    Args:
        y_true: Integer class ids in `[0, num_classes)`, shape `(batch,)` or `(batch, 1)`.
        y_pred: Class probabilities (or logits), shape `(batch, num_classes)`.
        from_logits: Whether `y_pred` holds logits rather than probabilities. Defaults to `False`.

    Returns:
        The per-sample loss, shape `(batch,)`.

    Raises:
        ValueError: if `from_logits` is not a bool.

    Example:
        ```python
        loss = i2dl_keras.losses.sparse_categorical_crossentropy(
            [2], [[1.0, 2.0, 3.0]], from_logits=True
        )  # [0.4076] = -log(0.665)
        ```
    """
    check_bool(from_logits, "from_logits")
    y_pred = as_float(y_pred)
    one_hot = class_labels(ops.convert_to_tensor(y_true), y_pred)
    return -ops.sum(one_hot * log_probabilities(y_pred, from_logits), axis=-1)


@keras.saving.register_keras_serializable(package="i2dl_keras")
class SparseCategoricalCrossentropy(LossFunctionWrapper):
    """Sparse categorical cross-entropy per sample, averaged over the batch.

    The class form of `i2dl_keras.losses.sparse_categorical_crossentropy`: labels are integer
    class ids of shape `(batch,)` or `(batch, 1)`.

    Args:
        from_logits: Whether predictions are logits rather than probabilities. Defaults to
            `False`.
        reduction: How per-sample losses are combined, as in `keras.losses.Loss`. Defaults to
            `"sum_over_batch_size"`.
        name: Name of the loss instance. Defaults to `"sparse_categorical_crossentropy"`.
        dtype: Dtype of the loss computation. Defaults to `None` (`keras.config.floatx()`).

    Raises:
        ValueError: if `from_logits` is not a bool or `reduction` is not one Keras knows.

    Example:
        ```python
        model.compile(
            optimizer="adam",
            loss=i2dl_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        ```
    """

    def __init__(
        self,
        from_logits: bool = False,
        reduction="sum_over_batch_size",
        name="sparse_categorical_crossentropy",
        dtype=None,
    ):
        super().__init__(
            sparse_categorical_crossentropy,
            reduction=reduction,
            name=name,
            dtype=dtype,
            from_logits=check_bool(from_logits, "from_logits"),
        )
