"""Adds the generalization gap (validation minus training) to the epoch logs."""

from __future__ import annotations

import warnings

import keras


class GeneralizationGapLogger(keras.callbacks.Callback):
    """Writes `gap = val_<metric> - <metric>` into the epoch logs.

    The generalization gap is the difference between the validation and the training value of
    a loss or metric (course: "Early Stopping: automatically stop training when the
    generalization gap grows"). Callbacks that run after this one in the `callbacks` list, and
    Keras' `History` (which always runs last), see the new key, so `history.history["gap"]`
    holds one value per epoch and a `keras.callbacks.TensorBoard` placed after this logger
    plots it. For a loss a positive gap means the validation loss is higher; for a score such
    as accuracy the sign is reversed (overfitting makes it negative). Epochs without the
    validation key (for example with `validation_freq > 1`) get no gap.

    Args:
        metric: The training key; the validation key is `"val_" + metric`. Defaults to
            `"loss"`.
        name: The key written to the logs. Defaults to `None`: `"gap"` for `metric="loss"`,
            else `metric + "_gap"`.

    Raises:
        ValueError: if `metric` or `name` is not a non-empty string, or `metric` starts with
            `"val_"`.

    Example:

    >>> import keras, numpy as np
    >>> from i2dl_keras.callbacks import GeneralizationGapLogger
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> x = np.ones((4, 1))
    >>> history = model.fit(x, x, validation_data=(x, 2 * x), epochs=2, verbose=0,
    ...                     callbacks=[GeneralizationGapLogger()])
    >>> len(history.history["gap"])
    2
    """

    def __init__(self, metric: str = "loss", name: str | None = None) -> None:
        super().__init__()
        if not isinstance(metric, str) or not metric or metric.startswith("val_"):
            raise ValueError(
                "`metric` must be a training key such as 'loss' (without 'val_'). "
                f"Received: metric={metric!r}"
            )
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"`name` must be None or a non-empty string. Received: name={name!r}")
        self.metric = metric
        self.name = name
        self.key = name if name is not None else ("gap" if metric == "loss" else f"{metric}_gap")
        self._logged = False

    def on_train_begin(self, logs=None):
        self._logged = False

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        validation_key = "val_" + self.metric
        if self.metric in logs and validation_key in logs:
            logs[self.key] = float(logs[validation_key]) - float(logs[self.metric])
            self._logged = True

    def on_train_end(self, logs=None):
        if not self._logged:
            warnings.warn(
                f"GeneralizationGapLogger never saw both '{self.metric}' and 'val_{self.metric}' "
                "in the epoch logs; pass validation data to fit.",
                stacklevel=2,
            )
