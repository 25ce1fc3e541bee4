"""Binary cross-entropy (log loss), from probabilities or from logits."""

from __future__ import annotations

import keras
from keras import ops

from i2dl_keras.losses._common import as_tensors, check_bool, match_rank
from i2dl_keras.losses.loss_function_wrapper import LossFunctionWrapper


@keras.saving.register_keras_serializable(package="i2dl_keras")
def binary_crossentropy(y_true, y_pred, from_logits: bool = False):
    """Binary cross-entropy averaged over the last axis, one value per sample.

    `L(y_hat, y) = -y log(y_hat) - (1 - y) log(1 - y_hat)` (course notes, "Binary Cross-Entropy
    Loss"). It is the loss of logistic regression (the notes' "quadratic function" there is a
    transcription slip).

    From logits `z` (`y_hat = sigmoid(z)`) it is computed as `max(z, 0) - y z + log(1 + e^-|z|)`,
    which is `softplus(z) - y z` rearranged so that no exponential can overflow: it stays finite and
    exact at logits of +-1000. From probabilities, `y_hat` is clipped to
    `[eps, 1 - eps]` (`eps = keras.config.epsilon()`) so that a confident mistake costs about
    `-log(eps)` instead of infinity.

    Args:
        y_true: Targets in `[0, 1]`, shape `(batch, ..., d)`.
        y_pred: Probabilities (or logits), same shape (a trailing axis of size 1 may be missing on
            either).
        from_logits: Whether `y_pred` holds logits rather than probabilities. Defaults to `False`.

    Returns:
        The per-sample loss, shape `(batch, ...)`.

    Raises:
        ValueError: if `from_logits` is not a bool.

    Example:
        ```python
        loss = i2dl_keras.losses.binary_crossentropy([[1.0]], [[0.5]])  # [log 2] = [0.6931]
        ```
    """
    check_bool(from_logits, "from_logits")
    y_true, y_pred = match_rank(*as_tensors(y_true, y_pred))
    if from_logits:
        elementwise = ops.relu(y_pred) - y_true * y_pred + ops.log1p(ops.exp(-ops.abs(y_pred)))
    else:
        eps = keras.config.epsilon()
        p = ops.clip(y_pred, eps, 1.0 - eps)
        elementwise = -(y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p))
    return ops.mean(elementwise, axis=-1)


@keras.saving.register_keras_serializable(package="i2dl_keras")
class BinaryCrossentropy(LossFunctionWrapper):
    """Binary cross-entropy per sample, averaged over the batch.

    The class form of `i2dl_keras.losses.binary_crossentropy` (see there for the formula and the
    numerically stable logits form).

    Args:
        from_logits: Whether predictions are logits rather than probabilities. Defaults to
            `False`.
        reduction: How per-sample losses are combined, as in `keras.losses.Loss`. Defaults to
            `"sum_over_batch_size"`.
        name: Name of the loss instance. Defaults to `"binary_crossentropy"`.
        dtype: Dtype of the loss computation. Defaults to `None` (`keras.config.floatx()`).

    Raises:
        ValueError: if `from_logits` is not a bool or `reduction` is not one Keras knows.

    Example:
        ```python
        model.compile(
            optimizer="adam", loss=i2dl_keras.losses.BinaryCrossentropy(from_logits=True)
        )
        ```
    """

    def __init__(
        self,
        from_logits: bool = False,
        reduction="sum_over_batch_size",
        name="binary_crossentropy",
        dtype=None,
    ):
        super().__init__(
            binary_crossentropy,
            reduction=reduction,
            name=name,
            dtype=dtype,
            from_logits=check_bool(from_logits, "from_logits"),
        )
