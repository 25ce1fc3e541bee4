"""Categorical cross-entropy (softmax negative log-likelihood) for one-hot labels."""

from __future__ import annotations

import keras
from keras import ops

from i2dl_keras.losses._common import as_tensors, check_bool, log_probabilities
from i2dl_keras.losses.loss_function_wrapper import LossFunctionWrapper


@keras.saving.register_keras_serializable(package="i2dl_keras")
def categorical_crossentropy(y_true, y_pred, from_logits: bool = False):
    """Cross-entropy between one-hot (or soft) labels and predicted class probabilities.

    `L = -sum_k y_k log(y_hat_k)` with `y_hat = softmax(s)`, which for a one-hot label is
    `-log(e^{s_y} / sum_k e^{s_k})`, the negative log-likelihood of the correct class (course
    notes, "Categorical Cross-Entropy Loss for Softmax Classifiers"); its gradient with respect
    to the scores is `y_hat - y`. From logits the log-softmax is computed as
    `(s - max s) - log(sum exp(s - max s))`, finite and accurate for any finite logits. From
    probabilities, rows are renormalised to sum to one and clipped to `[eps, 1 - eps]`.

    Args:
        y_true: One-hot or soft labels, shape `(batch, ..., num_classes)`.
        y_pred: Class probabilities (or logits), same shape.
        from_logits: Whether `y_pred` holds logits rather than probabilities. Defaults to `False`.

    Returns:
        The per-sample loss, shape `(batch, ...)`.

    Raises:
        ValueError: if `from_logits` is not a bool.

    Example:
        ```python
        y_true, logits = [[0.0, 0.0, 1.0]], [[1.0, 2.0, 3.0]]
        loss = i2dl_keras.losses.categorical_crossentropy(y_true, logits, from_logits=True)
        # [0.4076] = -log(0.665), the softmax of [1, 2, 3] being [0.09, 0.24, 0.67]
        ```
    """
    check_bool(from_logits, "from_logits")
    y_true, y_pred = as_tensors(y_true, y_pred)
    return -ops.sum(y_true * log_probabilities(y_pred, from_logits), axis=-1)


@keras.saving.register_keras_serializable(package="i2dl_keras")
class CategoricalCrossentropy(LossFunctionWrapper):
    """Categorical cross-entropy per sample, averaged over the batch.

    The class form of `i2dl_keras.losses.categorical_crossentropy`; use
    `SparseCategoricalCrossentropy` when labels are integer class ids.

    Args:
        from_logits: Whether predictions are logits rather than probabilities. Defaults to
            `False`.
        reduction: How per-sample losses are combined, as in `keras.losses.Loss`. Defaults to
            `"sum_over_batch_size"`.
        name: Name of the loss instance. Defaults to `"categorical_crossentropy"`.
        dtype: Dtype of the loss computation. Defaults to `None` (`keras.config.floatx()`).

    Raises:
        ValueError: if `from_logits` is not a bool or `reduction` is not one Keras knows.

    Example:
        ```python
        model.compile(
            optimizer="adam", loss=i2dl_keras.losses.CategoricalCrossentropy(from_logits=True)
        )
        ```
    """

    def __init__(
        self,
        from_logits: bool = False,
        reduction="sum_over_batch_size",
        name="categorical_crossentropy",
        dtype=None,
    ):
        super().__init__(
            categorical_crossentropy,
            reduction=reduction,
            name=name,
            dtype=dtype,
            from_logits=check_bool(from_logits, "from_logits"),
        )
