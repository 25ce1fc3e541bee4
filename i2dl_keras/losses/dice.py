"""Soft Dice loss for segmentation, optionally combined with class-weighted cross-entropy."""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
from keras import ops

from i2dl_keras.losses._common import (
    as_float,
    check_bool,
    check_non_negative,
    class_labels,
    log_probabilities,
)
from i2dl_keras.losses.loss_function_wrapper import LossFunctionWrapper


def _probabilities(y_pred, from_logits: bool):
    """Per-pixel class probabilities `(..., K)`; a single channel is P(class 1), K becomes 2."""
    if y_pred.shape[-1] == 1:
        p = ops.sigmoid(y_pred) if from_logits else y_pred
        return ops.concatenate([1.0 - p, p], axis=-1)
    return ops.softmax(y_pred, axis=-1) if from_logits else y_pred


def _log_probabilities(y_pred, from_logits: bool):
    if y_pred.shape[-1] == 1:
        # log(sigmoid(z)) = -softplus(-z), log(1 - sigmoid(z)) = -softplus(z): no overflow.
        if from_logits:
            return ops.concatenate([-ops.softplus(y_pred), -ops.softplus(-y_pred)], axis=-1)
        eps = keras.config.epsilon()
        p = ops.clip(y_pred, eps, 1.0 - eps)
        return ops.log(ops.concatenate([1.0 - p, p], axis=-1))
    return log_probabilities(y_pred, from_logits)


def _one_hot(y_true, probs):
    """One-hot masks `(..., K)` from class ids `(...)` / `(..., 1)` or one-hot masks as they are."""
    return class_labels(ops.convert_to_tensor(y_true), probs)


@keras.saving.register_keras_serializable(package="i2dl_keras")
def dice(y_true, y_pred, from_logits: bool = False, smooth: float = 1.0):
    """Soft Dice loss per image: one minus the mean over classes of the soft Dice coefficient.

    Milletari, Navab and Ahmadi (2016), "V-Net". For class `k` of one image, with predicted
    probabilities `p_ik` and one-hot truth `t_ik` over its pixels `i`,
    `dice_k = (2 sum_i p_ik t_ik + smooth) / (sum_i p_ik + sum_i t_ik + smooth)`, the overlap
    measure (2|A n B| / (|A| + |B|)) made differentiable. The loss is `1 - mean_k dice_k`. Every
    class counts the same whatever its pixel share, which is why Dice suits a small foreground;
    `smooth` keeps a class absent from both truth and prediction at `dice_k = 1` and the gradient
    finite.

    Args:
        y_true: Class ids, shape `(batch, H, W)` or `(batch, H, W, 1)`, or one-hot masks
            `(batch, H, W, K)` (any number of spatial axes works).
        y_pred: Class probabilities (or logits), shape `(batch, H, W, K)`. A single channel is
            the probability (or logit) of class 1 of two.
        from_logits: Whether `y_pred` holds logits (softmax, or sigmoid for one channel).
            Defaults to `False`.
        smooth: Added to the numerator and denominator; at least 0. Defaults to `1.0`.

    Returns:
        The per-image loss, shape `(batch,)`, in `[0, 1]`.

    Raises:
        ValueError: if `from_logits` is not a bool or `smooth` is negative.

    Example:
        ```python
        loss = i2dl_keras.losses.dice([[[0, 1]]], [[[[0.8, 0.2], [0.4, 0.6]]]])
        # class 0: (2*0.8 + 1) / (1.2 + 1 + 1) = 0.8125; class 1: (2*0.6 + 1) / (0.8 + 1 + 1)
        # = 0.7857; loss = 1 - (0.8125 + 0.7857) / 2 = [0.2009]
        ```
    """
    check_bool(from_logits, "from_logits")
    smooth = check_non_negative(smooth, "smooth")
    probs = _probabilities(as_float(y_pred), from_logits)
    truth = _one_hot(y_true, probs)
    axes = tuple(range(1, len(probs.shape) - 1))
    intersection = ops.sum(probs * truth, axis=axes)
    total = ops.sum(probs, axis=axes) + ops.sum(truth, axis=axes)
    score = (2.0 * intersection + smooth) / (total + smooth)
    return 1.0 - ops.mean(score, axis=-1)


def _check_weights(class_weights):
    if class_weights is None or class_weights == "balanced":
        return class_weights
    ok = isinstance(class_weights, (list, tuple)) and len(class_weights) > 0
    if ok:
        for w in class_weights:
            if (
                isinstance(w, bool)
                or not isinstance(w, (int, float))
                or not math.isfinite(w)
                or w < 0
            ):
                ok = False
    if not ok:
        raise ValueError(
            "Argument `class_weights` must be None, 'balanced' or a non-empty list of finite "
            f"numbers >= 0, one per class. Received: class_weights={class_weights!r}"
        )
    return [float(w) for w in class_weights]


def _weighted_crossentropy(y_true, y_pred, from_logits, class_weights):
    """Per-image mean over pixels of `w[y] * -log p_y` (see `Dice` for the weights)."""
    y_pred = as_float(y_pred)
    log_p = _log_probabilities(y_pred, from_logits)
    truth = _one_hot(y_true, log_p)
    pixel_loss = -ops.sum(truth * log_p, axis=-1)
    spatial = tuple(range(1, len(pixel_loss.shape)))
    if class_weights is None:
        return ops.mean(pixel_loss, axis=spatial)
    num_classes = truth.shape[-1]
    if class_weights == "balanced":
        counts = ops.sum(truth, axis=tuple(range(len(truth.shape) - 1)))
        present = ops.sum(ops.cast(counts > 0, counts.dtype))
        total = ops.sum(counts)
        # Each class present in the batch gets the same total weight; the weights still sum
        # to the pixel count, so the loss keeps the scale of the unweighted one.
        weights = ops.where(counts > 0, total / (present * ops.maximum(counts, 1.0)), 0.0)
    else:
        if len(class_weights) != num_classes:
            raise ValueError(
                f"`class_weights` has {len(class_weights)} entries but the predictions have "
                f"{num_classes} classes. Received: class_weights={class_weights!r}"
            )
        weights = ops.convert_to_tensor(class_weights, dtype=truth.dtype)
    pixel_weights = ops.sum(truth * weights, axis=-1)
    return ops.mean(pixel_weights * pixel_loss, axis=spatial)


def _dice_and_crossentropy(
    y_true, y_pred, from_logits, smooth, dice_weight, crossentropy_weight, class_weights
):
    """Per-image `dice_weight * dice + crossentropy_weight * crossentropy` (see `Dice`)."""
    loss = 0.0
    if dice_weight:
        loss = loss + dice_weight * dice(y_true, y_pred, from_logits=from_logits, smooth=smooth)
    if crossentropy_weight:
        loss = loss + crossentropy_weight * _weighted_crossentropy(
            y_true, y_pred, from_logits, class_weights
        )
    return loss


@keras.saving.register_keras_serializable(package="i2dl_keras")
class Dice(LossFunctionWrapper):
    """Soft Dice loss per image, plus an optional class-weighted pixel-wise cross-entropy.

    The class form of `i2dl_keras.losses.dice`, extended with the combination segmentation
    practice uses: `dice_weight * dice + crossentropy_weight * crossentropy`. The cross-entropy
    term is the mean over an image's pixels of `w[y] * -log p_y`, with `class_weights` `w`:

    - `None`: every pixel weighs 1 (plain pixel-wise cross-entropy);
    - a list: a fixed weight per class (e.g. inverse class frequencies);
    - `"balanced"`: computed from each batch, `w_k = N / (K' n_k)` for the `n_k` pixels of class
      `k` among `N`, `K'` the classes present: every present class counts equally in total,
      whatever its pixel share, and the mean weight stays 1.

    `Dice(dice_weight=0.0, crossentropy_weight=1.0, class_weights=...)` is thus a class-weighted
    cross-entropy, `Dice()` the plain Dice loss and `Dice(crossentropy_weight=1.0)` "ce+dice".

    Args:
        from_logits: Whether predictions are logits rather than probabilities. Defaults to
            `False`.
        smooth: Smoothing term of the Dice coefficient, at least 0. Defaults to `1.0`.
        dice_weight: Weight of the Dice term, at least 0. Defaults to `1.0`.
        crossentropy_weight: Weight of the cross-entropy term, at least 0. Defaults to `0.0`.
        class_weights: Cross-entropy class weights: `None`, `"balanced"` or one number per
            class. Defaults to `None`.
        reduction: How per-image losses are combined, as in `keras.losses.Loss`. Defaults to
            `"sum_over_batch_size"`.
        name: Name of the loss instance. Defaults to `"dice"`.
        dtype: Dtype of the loss computation. Defaults to `None` (`keras.config.floatx()`).

    Raises:
        ValueError: if an argument is out of range, both weights are 0, or `class_weights` is
            neither `None`, `"balanced"` nor a list of non-negative numbers.

    Example:
        ```python
        model = i2dl_keras.models.unet(num_classes=2, depth=2, base_filters=8)
        model.compile(
            optimizer="adam",
            loss=i2dl_keras.losses.Dice(crossentropy_weight=1.0, class_weights="balanced"),
        )
        ```
    """

    def __init__(
        self,
        from_logits: bool = False,
        smooth: float = 1.0,
        dice_weight: float = 1.0,
        crossentropy_weight: float = 0.0,
        class_weights: str | Sequence[float] | None = None,
        reduction="sum_over_batch_size",
        name="dice",
        dtype=None,
    ):
        from_logits = check_bool(from_logits, "from_logits")
        smooth = check_non_negative(smooth, "smooth")
        checked_dice_weight = check_non_negative(dice_weight, "dice_weight")
        checked_crossentropy_weight = check_non_negative(crossentropy_weight, "crossentropy_weight")
        if checked_dice_weight == 0 and checked_crossentropy_weight == 0:
            raise ValueError(
                "Arguments `dice_weight` and `crossentropy_weight` cannot both be 0. "
                f"Received: dice_weight={dice_weight}, crossentropy_weight={crossentropy_weight}"
            )
        super().__init__(
            _dice_and_crossentropy,
            reduction=reduction,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
            smooth=smooth,
            dice_weight=checked_dice_weight,
            crossentropy_weight=checked_crossentropy_weight,
            class_weights=_check_weights(class_weights),
        )
