"""Helpers shared by the loss modules: tensor conversion, rank matching and argument checks."""

from __future__ import annotations

import math

import keras
from keras import ops


def as_float(y_pred):
    """Converts predictions to a tensor of a floating dtype (`keras.config.floatx()` for ints)."""
    y_pred = ops.convert_to_tensor(y_pred)
    if not keras.backend.is_float_dtype(y_pred.dtype):
        y_pred = ops.cast(y_pred, keras.config.floatx())
    return y_pred


def as_tensors(y_true, y_pred):
    """Converts both arguments to tensors, `y_true` in the (floating) dtype of `y_pred`."""
    y_pred = as_float(y_pred)
    return ops.cast(ops.convert_to_tensor(y_true), y_pred.dtype), y_pred


def match_rank(y_true, y_pred):
    """Makes ranks equal when they differ by a trailing axis of size 1, as Keras' losses do.

    Labels of shape `(batch,)` against predictions of shape `(batch, 1)` (or the reverse) are the
    common case; broadcasting them as they are would give a `(batch, batch)` loss. A rank-1
    tensor gains the axis; otherwise the size-1 axis of the other tensor is dropped.
    """
    true_rank, pred_rank = len(y_true.shape), len(y_pred.shape)
    if true_rank == pred_rank + 1 and y_true.shape[-1] == 1:
        if pred_rank == 1:
            y_pred = ops.expand_dims(y_pred, axis=-1)
        else:
            y_true = ops.squeeze(y_true, axis=-1)
    elif pred_rank == true_rank + 1 and y_pred.shape[-1] == 1:
        if true_rank == 1:
            y_true = ops.expand_dims(y_true, axis=-1)
        else:
            y_pred = ops.squeeze(y_pred, axis=-1)
    return y_true, y_pred


def class_labels(y_true, y_pred):
    """Turns integer class ids of shape `(batch,)` or `(batch, 1)` into one-hot rows.

    One-hot labels (same rank as `y_pred`, same last dimension) pass through unchanged; the
    `Loss` base class hands labels over as floats, so ids are rounded before the cast.
    """
    num_classes = y_pred.shape[-1]
    is_one_hot = (
        len(y_true.shape) == len(y_pred.shape)
        and y_true.shape[-1] == num_classes
        and num_classes != 1
    )
    if is_one_hot:
        return ops.cast(y_true, y_pred.dtype)
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, axis=-1)
    ids = ops.cast(ops.round(ops.cast(y_true, "float32")), "int32")
    return ops.one_hot(ids, num_classes, dtype=y_pred.dtype)


def check_bool(value, name: str) -> bool:
    """Returns `value` if it is a Python bool, else raises a house-style `ValueError`."""
    if not isinstance(value, bool):
        raise ValueError(f"Argument `{name}` must be a bool. Received: {name}={value!r}")
    return value


def check_non_negative(value, name: str) -> float:
    """Returns `value` as a float if it is a finite number >= 0, else raises `ValueError`."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(
            f"Argument `{name}` must be a finite number >= 0. Received: {name}={value!r}"
        )
    return float(value)


def log_probabilities(y_pred, from_logits: bool):
    """Log class probabilities from logits (log-softmax) or from probabilities (clipped)."""
    if from_logits:
        # log_softmax(z) = (z - max z) - log(sum exp(z - max z)): no exp overflows, and subtracting
        # the max first keeps the small differences between large logits exact in float32. The
        # result does not depend on the shift, so no gradient needs to flow through the max.
        shifted = y_pred - ops.stop_gradient(ops.max(y_pred, axis=-1, keepdims=True))
        return shifted - ops.log(ops.sum(ops.exp(shifted), axis=-1, keepdims=True))
    eps = keras.config.epsilon()
    # Rows that do not quite sum to one (rounding in a softmax) are renormalised, as Keras does.
    p = y_pred / ops.sum(y_pred, axis=-1, keepdims=True)
    return ops.log(ops.clip(p, eps, 1.0 - eps))
