"""Argument and data checks shared by `i2dl_keras.classic`: one wording for every `ValueError`.

Every message names the argument, says what was expected and ends with `Received: name=value`.
The `fit`/`predict` plumbing of the models that are fitted in closed form (`KMeans`, `PCA`,
`KNNClassifier`) lives here too: they accept and ignore `model.fit`'s training-loop arguments,
and predict in batches of samples.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import keras
import numpy as np
from keras import ops

# The `keras.Model.fit` training-loop arguments a closed-form `fit` accepts and ignores.
FIT_LOOP_ARGS = frozenset({"epochs", "batch_size", "verbose", "callbacks", "shuffle"})


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def int_at_least(name: str, value: Any, minimum: int) -> int:
    """Returns `value` as an `int` if it is an integer >= `minimum`, else raises `ValueError`."""
    if not is_int(value) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}")
    return int(value)


def optional_int_at_least(name: str, value: Any, minimum: int) -> int | None:
    """Like `int_at_least`, but `None` passes through."""
    return None if value is None else int_at_least(name, value, minimum)


def non_negative_float(name: str, value: Any) -> float:
    """Returns `value` as a `float` if it is finite and >= 0, else raises `ValueError`."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not math.isfinite(float(value)) or float(value) < 0.0:
        raise ValueError(f"`{name}` must be a finite float >= 0. Received: {name}={value!r}")
    return float(value)


def seed(name: str, value: Any) -> int:
    """Returns `value` as an `int` if it is an integer >= 0 (a NumPy seed)."""
    return int_at_least(name, value, 0)


def callable_arg(name: str, value: Any) -> Any:
    if not callable(value):
        raise ValueError(
            f"`{name}` must be a callable that returns a compiled `keras.Model`. "
            f"Received: {name}={value!r}"
        )
    return value


def fit_kwargs(value: Any) -> dict:
    """Checks the extra `Model.fit` arguments; the data arguments are the caller's to set."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"`fit_kwargs` must be a dict or None. Received: fit_kwargs={value!r}")
    reserved = sorted({"x", "y", "validation_split", "validation_data"} & set(value))
    if reserved:
        raise ValueError(
            f"`fit_kwargs` must not set {reserved}: the data of every fit is chosen here. "
            f"Received: fit_kwargs={value!r}"
        )
    return dict(value)


def as_arrays(data: Any) -> Any:
    """Converts every leaf of a (possibly nested) input structure to a NumPy array."""
    if data is None:
        return None
    return keras.tree.map_structure(np.asarray, data)


def num_samples(x: Any, y: Any) -> int:
    """The common first dimension of every array in `x` and `y`; raises if they disagree."""
    lengths = {len(a) for a in keras.tree.flatten(x)}
    if len(lengths) != 1:
        raise ValueError(
            "Every input array in `x` must have the same number of samples. "
            f"Received: x with lengths {sorted(lengths)}"
        )
    n = lengths.pop()
    if y is not None:
        y_lengths = {len(a) for a in keras.tree.flatten(y)}
        if y_lengths != {n}:
            raise ValueError(
                f"`y` must have as many samples as `x` ({n}). "
                f"Received: y with lengths {sorted(y_lengths)}"
            )
    return n


def take(data: Any, indices: np.ndarray) -> Any:
    """Selects samples `indices` from every array of a (possibly nested) structure."""
    if data is None:
        return None
    return keras.tree.map_structure(lambda a: a[indices], data)


def only_fit_loop_args(kwargs: dict, what_fit_does: str) -> None:
    """Raises `ValueError` for a keyword argument of `fit` other than `FIT_LOOP_ARGS`.

    `what_fit_does` starts the message, e.g. "KMeans.fit only clusters `x`".
    """
    unknown = sorted(set(kwargs) - FIT_LOOP_ARGS)
    if unknown:
        raise ValueError(f"{what_fit_does}; it takes no {unknown}. Received: kwargs={kwargs!r}")


def fitted_input(
    model: keras.Model,
    input_shape: tuple,
    missing: str,
    fitted: bool | None = None,
    received: str | None = None,
) -> None:
    """Checks, in `build`, that `model` has been fitted and the inputs have its width.

    `missing` says what is missing and how to make it, e.g. "no centroids yet: call `fit(x)`".
    `fitted` defaults to whether `model.num_features` is known, and `received`, which ends the
    message, to `model.num_features`.
    """
    if fitted is None:
        fitted = model.num_features is not None
    if received is None:
        received = f"num_features={model.num_features}"
    if not fitted:
        raise ValueError(
            f"{type(model).__name__} has {missing} before calling the model. Received: {received}"
        )
    if input_shape[-1] is not None and input_shape[-1] != model.num_features:
        raise ValueError(
            f"Inputs must have `num_features` = {model.num_features} features. "
            f"Received: input_shape={tuple(input_shape)}"
        )


def finite_and_as_wide(x: np.ndarray, model: keras.Model, verb: str) -> None:
    """Checks that `x` is finite and, once `model` is built, has its `num_features` columns.

    `verb` says what the model does with features, e.g. "clusters".
    """
    if not np.all(np.isfinite(x)):
        raise ValueError("`x` must be finite (no NaN or inf). Received: x with NaN or inf")
    if model.built and x.shape[1] != model.num_features:
        raise ValueError(
            f"This model {verb} {model.num_features} features; create a new "
            f"{type(model).__name__} for another width. Received: x.shape={x.shape}"
        )


def squared_distances(x: Any, points: Any) -> Any:
    """Squared L2 distances `(n, m)` between the rows of `x` and those of `points`, by `ops`."""
    squared = (
        ops.sum(ops.square(x), axis=-1, keepdims=True)
        - 2.0 * ops.matmul(x, ops.transpose(points))
        + ops.expand_dims(ops.sum(ops.square(points), axis=-1), 0)
    )
    # Rounding can push the squared distance of a point to itself slightly below zero.
    return ops.maximum(squared, 0.0)


class IndexPredictor:
    """The `predict` of a closed-form model that maps each sample to one index.

    Mixed into a `keras.Model` subclass (before `keras.Model`), which sets
    `default_predict_batch_size` and implements `_batch_indices(batch)`, the indices of a batch
    of samples as a tensor.
    """

    default_predict_batch_size = 128

    def _batch_indices(self, batch: np.ndarray) -> Any:
        raise NotImplementedError

    def predict(self, x: Any, batch_size: int | None = None, verbose: Any = "auto", **kwargs):
        """One index per sample: its nearest centroid (`KMeans`) or voted class (`KNNClassifier`).

        Args:
            x: Samples, shape `(n, num_features)`.
            batch_size: Samples per distance matrix. Defaults to `None` (1024 for `KMeans`, 128
                for `KNNClassifier`).
            verbose: Accepted for compatibility with `keras.Model.predict`; nothing is printed.
                Defaults to `"auto"`.
            **kwargs: Other `keras.Model.predict` arguments are not supported.

        Returns:
            A NumPy `int64` array of shape `(n,)`.

        Raises:
            ValueError: if `batch_size` is not a positive integer or `kwargs` is not empty.
        """
        if kwargs:
            raise ValueError(
                f"{type(self).__name__}.predict takes only `x`, `batch_size` and `verbose`. "
                f"Received: kwargs={kwargs!r}"
            )
        if batch_size is None:
            batch_size = self.default_predict_batch_size
        batch_size = int_at_least("batch_size", batch_size, 1)
        x = np.asarray(x)
        if not self.built:
            self.build((None,) + x.shape[1:])
        labels = [
            ops.convert_to_numpy(self._batch_indices(x[start : start + batch_size]))
            for start in range(0, len(x), batch_size)
        ]
        if not labels:
            return np.zeros((0,), dtype="int64")
        return np.concatenate(labels).astype("int64")
