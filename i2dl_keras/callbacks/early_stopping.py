"""Early stopping on the validation loss or on the generalization gap, with best-weight restore."""

from __future__ import annotations

import warnings
from typing import Any

import keras
import numpy as np

MODES = ("min", "max")
CRITERIA = ("value", "gap")


class EarlyStopping(keras.callbacks.Callback):
    """Stops training when the monitored quantity, or the generalization gap, stops improving.

    The course: "Automatically stop training when the generalization gap grows." With
    `criterion="value"` the callback watches `monitor` itself (the validation loss by default),
    like `keras.callbacks.EarlyStopping`. With `criterion="gap"` it watches the generalization
    gap: `val_loss - loss` for a loss (`mode="min"`), `accuracy - val_accuracy` for a score
    (`mode="max"`), so that a larger gap always means more overfitting; the training-set key is
    `monitor` without its `val_` prefix. The gap of a healthy run often grows from the first
    epochs, as the training loss falls faster than the validation loss, so the gap criterion
    usually needs a `patience` of a few epochs, or a `min_delta`.

    An epoch improves when the watched quantity beats its best so far by more than `min_delta`.
    After `patience` consecutive epochs without improvement training stops (as in Keras, a
    `patience` of 0 also stops at the first epoch without improvement). Whatever the criterion,
    the "best" weights are those of the epoch with the best `monitor` value: with
    `restore_best_weights=True` they are put back into the model when training stops, and also
    when `fit` runs out of epochs first (Keras' own callback restores only when it stops
    training), so after `fit` the model always holds its best-validation weights. Epochs whose
    logs lack the needed keys (for example with `validation_freq > 1`) are skipped, with a
    warning if no epoch of the run had them. All state is reset in `on_train_begin`, so one
    instance can serve several `fit` calls. With `start_from_epoch=n` the first `n` epochs are a
    warm-up that is not watched at all: they can neither stop training nor be picked as the best
    (useful when the validation set is tiny and a fresh head's early epochs are noise).

    Args:
        monitor: The validation quantity in the epoch logs. Defaults to `"val_loss"`.
        mode: `"min"` if lower `monitor` is better, `"max"` if higher is. Defaults to `"min"`.
        patience: Epochs without improvement after which training stops (an integer >= 0).
            Defaults to `0`.
        min_delta: Smallest change (>= 0) that counts as an improvement. Defaults to `0`.
        restore_best_weights: Whether to restore the weights of the best `monitor` epoch.
            Defaults to `True`.
        criterion: `"value"` (stop when `monitor` stops improving) or `"gap"` (stop when the
            generalization gap stops shrinking). Defaults to `"value"`.
        start_from_epoch: Epochs (an integer >= 0) to train before watching `monitor`, as in
            `keras.callbacks.EarlyStopping`. Defaults to `0`.

    Attributes:
        stopped_epoch: The epoch (0-based) in which training was stopped, or `None`.
        best: The best `monitor` value seen in this run.
        best_epoch: The epoch of `best`, whose weights are restored.
        best_gap: The smallest generalization gap seen (with `criterion="gap"`).
        wait: Epochs since the last improvement of the criterion.

    Raises:
        ValueError: if `mode` or `criterion` is unknown, `patience` is not an integer >= 0,
            `min_delta` is negative, `start_from_epoch` is not an integer >= 0, or
            `criterion="gap"` with a `monitor` without `val_`.

    Example:

    >>> import keras
    >>> from i2dl_keras.callbacks import EarlyStopping, GeneralizationGapLogger
    >>> callbacks = [GeneralizationGapLogger(), EarlyStopping(patience=3, criterion="gap")]
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        mode: str = "min",
        patience: int = 0,
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
        criterion: str = "value",
        start_from_epoch: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"`monitor` must be a non-empty string. Received: monitor={monitor!r}")
        if mode not in MODES:
            raise ValueError(f"`mode` must be one of {MODES}. Received: mode={mode!r}")
        if (
            isinstance(patience, bool)
            or not isinstance(patience, (int, np.integer))
            or patience < 0
        ):
            raise ValueError(f"`patience` must be an integer >= 0. Received: patience={patience!r}")
        if (
            isinstance(start_from_epoch, bool)
            or not isinstance(start_from_epoch, (int, np.integer))
            or start_from_epoch < 0
        ):
            raise ValueError(
                "`start_from_epoch` must be an integer >= 0. "
                f"Received: start_from_epoch={start_from_epoch!r}"
            )
        if (
            isinstance(min_delta, bool)
            or not isinstance(min_delta, (int, float, np.number))
            or not np.isfinite(min_delta)
            or min_delta < 0
        ):
            raise ValueError(
                f"`min_delta` must be a finite number >= 0. Received: min_delta={min_delta!r}"
            )
        if criterion not in CRITERIA:
            raise ValueError(
                f"`criterion` must be one of {CRITERIA}. Received: criterion={criterion!r}"
            )
        if criterion == "gap" and not monitor.startswith("val_"):
            raise ValueError(
                "With criterion='gap', `monitor` must be a validation key starting with 'val_' "
                f"(the training key is `monitor` without it). Received: monitor={monitor!r}"
            )
        self.monitor = monitor
        self.mode = mode
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.restore_best_weights = bool(restore_best_weights)
        self.criterion = criterion
        self.start_from_epoch = int(start_from_epoch)
        self._reset()

    def _reset(self) -> None:
        sign = 1.0 if self.mode == "min" else -1.0
        self.best = sign * np.inf
        self.best_epoch: int | None = None
        self.best_weights: list[np.ndarray] | None = None
        self.best_gap = np.inf
        self.wait = 0
        self.stopped_epoch: int | None = None
        self._last_epoch: int | None = None
        self._seen_monitor = False

    def _better(self, current: float, best: float, lower_is_better: bool) -> bool:
        if lower_is_better:
            return current < best - self.min_delta
        return current > best + self.min_delta

    def gap(self, logs: dict[str, Any]) -> float:
        """The generalization gap in `logs`, oriented so that larger means more overfitting.

        Args:
            logs: Epoch logs holding `monitor` and its training counterpart.

        Returns:
            `val - train` for `mode="min"`, `train - val` for `mode="max"`.
        """
        validation, training = float(logs[self.monitor]), float(logs[self.monitor[4:]])
        return validation - training if self.mode == "min" else training - validation

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        needed = [self.monitor] + ([self.monitor[4:]] if self.criterion == "gap" else [])
        if any(key not in logs for key in needed):
            return
        self._seen_monitor = True
        self._last_epoch = epoch
        if epoch < self.start_from_epoch:
            return
        current = float(logs[self.monitor])
        if np.isfinite(current) and (
            self.best_epoch is None or self._better(current, self.best, self.mode == "min")
        ):
            # Weight restoration follows the monitored value, whatever the stopping criterion.
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
        if self.criterion == "value":
            improved = self.best_epoch == epoch
        else:
            gap = self.gap(logs)
            improved = self._better(gap, self.best_gap, lower_is_better=True)
            if improved:
                self.best_gap = gap
        self.wait = 0 if improved else self.wait + 1
        if not improved and self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            self._restore()

    def on_train_end(self, logs=None):
        if not self._seen_monitor:
            needed = self.monitor + (
                f"' and '{self.monitor[4:]}" if self.criterion == "gap" else ""
            )
            warnings.warn(
                f"EarlyStopping never saw '{needed}' in the epoch logs, so it did nothing; "
                "pass validation data to fit.",
                stacklevel=2,
            )
            return
        if self.stopped_epoch is None:
            self._restore()

    def _restore(self) -> None:
        if (
            self.restore_best_weights
            and self.best_weights is not None
            and self.best_epoch != self._last_epoch
        ):
            self.model.set_weights(self.best_weights)
