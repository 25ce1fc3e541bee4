"""Argument and data checks shared by `i2dl_keras.classic`: one wording for every `ValueError`.

Every message names the argument, says what was expected and ends with `Received: name=value`.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import keras
import numpy as np


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
