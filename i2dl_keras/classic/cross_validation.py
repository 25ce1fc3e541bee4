"""Hold-out and k-fold cross-validation for any Keras model builder."""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from i2dl_keras.classic import _checks

__all__ = ["KFoldResult", "k_fold", "k_fold_indices", "train_val_split"]


@dataclasses.dataclass(frozen=True)
class KFoldResult:
    """The outcome of `k_fold`.

    Attributes:
        scores: One validation score per fold, in fold order.
        mean: Mean of `scores`.
        std: Population standard deviation of `scores` (NumPy's default, `ddof=0`).
        val_indices: For each fold, the sample indices of its validation set.
    """

    scores: list[float]
    mean: float
    std: float
    val_indices: list[np.ndarray]


def _check_k(k: Any, n: int) -> int:
    if not _checks.is_int(k) or not 2 <= k <= n:
        raise ValueError(
            f"`k` must be an integer with 2 <= k <= n, the number of samples ({n}). "
            f"Received: k={k!r}"
        )
    return int(k)


def k_fold_indices(
    n: int, k: int = 5, seed: int = 0, shuffle: bool = True
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Splits `range(n)` into `k` folds and pairs each fold with the rest.

    Every index lies in exactly one validation fold; fold sizes differ by at most one (the
    first `n % k` folds get the extra sample).

    Args:
        n: Number of samples.
        k: Number of folds, `2 <= k <= n`. Defaults to `5`.
        seed: Seed of the NumPy generator that shuffles the indices. Defaults to `0`.
        shuffle: Whether to shuffle before splitting; `False` gives contiguous folds.
            Defaults to `True`.

    Returns:
        A list of `k` pairs `(train_indices, val_indices)`, each sorted ascending.

    Raises:
        ValueError: if `n < 2`, `k` is out of range or `seed` is negative.

    Example:

    >>> folds = i2dl_keras.classic.k_fold_indices(10, k=5, seed=0)
    >>> [len(val) for _, val in folds]
    [2, 2, 2, 2, 2]
    """
    n = _checks.int_at_least("n", n, 2)
    k = _check_k(k, n)
    seed = _checks.seed("seed", seed)
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    folds = []
    for val in np.array_split(order, k):
        in_val = np.zeros(n, dtype=bool)
        in_val[val] = True
        folds.append((np.flatnonzero(~in_val), np.sort(val)))
    return folds


def train_val_split(
    x: Any, y: Any = None, val_fraction: float = 0.2, seed: int = 0, shuffle: bool = True
) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """The course's hold-out split: usually 80% of the samples train, 20% validate.

    The validation set gets `round(val_fraction * n)` samples, and both sets at least one.

    Args:
        x: Inputs: an array, or a list/dict of arrays with a common first dimension.
        y: Targets in the same form, or `None`. Defaults to `None`.
        val_fraction: Share of the samples held out, in `(0, 1)`. Defaults to `0.2`.
        seed: Seed of the NumPy generator that shuffles. Defaults to `0`.
        shuffle: Whether to shuffle first; `False` holds out the last samples. Defaults to
            `True`.

    Returns:
        `((x_train, y_train), (x_val, y_val))` as NumPy arrays (`y_*` is `None` without `y`).

    Raises:
        ValueError: if `val_fraction` is not in `(0, 1)`, leaves a set empty, or `x` and `y`
            differ in length.

    Example:

    >>> (x_train, y_train), (x_val, y_val) = i2dl_keras.classic.train_val_split(x, y)
    """
    ok = isinstance(val_fraction, numbers.Real) and not isinstance(val_fraction, bool)
    if not ok or not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(
            f"`val_fraction` must be a float in (0, 1). Received: val_fraction={val_fraction!r}"
        )
    seed = _checks.seed("seed", seed)
    x, y = _checks.as_arrays(x), _checks.as_arrays(y)
    n = _checks.num_samples(x, y)
    n_val = int(round(float(val_fraction) * n))
    if not 1 <= n_val <= n - 1:
        raise ValueError(
            f"`val_fraction` must leave at least one sample in each set of the {n} samples. "
            f"Received: val_fraction={val_fraction!r}"
        )
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    train, val = order[: n - n_val], order[n - n_val :]
    return (
        (_checks.take(x, train), _checks.take(y, train)),
        (_checks.take(x, val), _checks.take(y, val)),
    )


def _score(model: keras.Model, x_val: Any, y_val: Any, metric: str | Callable) -> float:
    if callable(metric):
        return float(metric(y_val, model.predict(x_val, verbose=0)))
    results = model.evaluate(x_val, y_val, verbose=0, return_dict=True)
    if metric not in results:
        raise ValueError(
            f"`metric` must be one of the names `model.evaluate` reports, {sorted(results)}. "
            f"Received: metric={metric!r}"
        )
    return float(results[metric])


def k_fold(
    build_model: Callable[[], keras.Model],
    x: Any,
    y: Any = None,
    k: int = 5,
    fit_kwargs: dict | None = None,
    seed: int = 0,
    shuffle: bool = True,
    metric: str | Callable[[Any, Any], float] = "loss",
) -> KFoldResult:
    """k-fold cross-validation: each fold validates once a model trained on the other k - 1.

    The course's "Cross-Validation": the data are split into `k` folds (see `k_fold_indices`);
    for each fold a fresh model from `build_model()` is fitted on the other folds and scored
    on it. Before fold `i` is built, `keras.utils.set_random_seed(seed + i)` seeds Keras,
    NumPy and Python, so that the whole run is reproducible (this resets the global seeds).

    Args:
        build_model: A function of no arguments returning a compiled `keras.Model` (or any
            model with `fit`, `predict` and, for a named metric, `evaluate`).
        x: Inputs: an array, or a list/dict of arrays with a common first dimension.
        y: Targets in the same form, or `None`. Defaults to `None`.
        k: Number of folds, `2 <= k <= n`. Defaults to `5`.
        fit_kwargs: Extra arguments of `model.fit`, e.g. `{"epochs": 5}`; `verbose` defaults
            to `0`. Defaults to `None`.
        seed: Seed of the fold shuffle and of each fold's model. Defaults to `0`.
        shuffle: Whether to shuffle before splitting. Defaults to `True`.
        metric: A name that `model.evaluate(..., return_dict=True)` reports (such as
            `"loss"` or `"accuracy"`), or a function `metric(y_val, model.predict(x_val))`
            returning a float. Defaults to `"loss"`.

    Returns:
        A `KFoldResult` with the per-fold scores, their mean and standard deviation, and the
        validation indices of each fold.

    Raises:
        ValueError: if `k` is out of range, `build_model` is not callable, `fit_kwargs` sets
            the data, `x` and `y` differ in length, or `metric` names nothing `evaluate`
            reports.

    Example:

    >>> result = i2dl_keras.classic.k_fold(build, x, y, k=5, fit_kwargs={"epochs": 3},
    ...                                    metric="accuracy")
    >>> result.mean, result.std
    """
    build_model = _checks.callable_arg("build_model", build_model)
    fit_kwargs = {"verbose": 0, **_checks.fit_kwargs(fit_kwargs)}
    if not (isinstance(metric, str) or callable(metric)):
        raise ValueError(
            f"`metric` must be a metric name or a callable. Received: metric={metric!r}"
        )
    seed = _checks.seed("seed", seed)
    x, y = _checks.as_arrays(x), _checks.as_arrays(y)
    n = _checks.num_samples(x, y)
    _check_k(k, n)
    scores, val_indices = [], []
    for fold, (train, val) in enumerate(k_fold_indices(n, k, seed=seed, shuffle=shuffle)):
        keras.utils.set_random_seed(seed + fold)
        model = build_model()
        model.fit(_checks.take(x, train), _checks.take(y, train), **fit_kwargs)
        scores.append(_score(model, _checks.take(x, val), _checks.take(y, val), metric))
        val_indices.append(val)
    return KFoldResult(
        scores=scores,
        mean=float(np.mean(scores)),
        std=float(np.std(scores)),
        val_indices=val_indices,
    )
