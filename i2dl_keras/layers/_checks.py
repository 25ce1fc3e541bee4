"""Argument checks shared by the layers: one wording for every `ValueError`.

Every message names the argument, says what was expected and ends with `Received: name=value`,
as the house style asks.
"""

from __future__ import annotations

import math
import numbers
from typing import Any


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def positive_int(name: str, value: Any) -> int:
    """Returns `value` as an `int` if it is a positive integer, else raises `ValueError`."""
    if not is_int(value) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


def non_negative_int(name: str, value: Any) -> int:
    """Returns `value` as an `int` if it is an integer >= 0, else raises `ValueError`."""
    if not is_int(value) or value < 0:
        raise ValueError(f"`{name}` must be an integer >= 0. Received: {name}={value!r}")
    return int(value)


def rate(name: str, value: Any) -> float:
    """Returns `value` as a `float` if it lies in [0, 1), else raises `ValueError`."""
    if not is_real(value) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"`{name}` must be a float in [0, 1). Received: {name}={value!r}")
    return float(value)


def non_negative_float(name: str, value: Any) -> float:
    """Returns `value` as a `float` if it is finite and >= 0, else raises `ValueError`."""
    if not is_real(value) or not math.isfinite(float(value)) or float(value) < 0.0:
        raise ValueError(f"`{name}` must be a finite float >= 0. Received: {name}={value!r}")
    return float(value)


def positive_float(name: str, value: Any) -> float:
    """Returns `value` as a `float` if it is finite and > 0, else raises `ValueError`."""
    if not is_real(value) or not math.isfinite(float(value)) or float(value) <= 0.0:
        raise ValueError(f"`{name}` must be a finite float > 0. Received: {name}={value!r}")
    return float(value)


def optional_seed(name: str, value: Any) -> int | None:
    """Returns `value` if it is `None` or an integer >= 0, else raises `ValueError`."""
    if value is None:
        return None
    return non_negative_int(name, value)


def int_pair(name: str, value: Any) -> tuple[int, int]:
    """Returns a positive int, or a pair of them, as a pair; raises `ValueError` otherwise."""
    if is_int(value) and value >= 1:
        return (int(value), int(value))
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(is_int(v) and v >= 1 for v in value)
    ):
        return (int(value[0]), int(value[1]))
    raise ValueError(
        f"`{name}` must be a positive integer or a pair of positive integers. "
        f"Received: {name}={value!r}"
    )


def padding_pairs(name: str, value: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """Normalises zero padding to `((top, bottom), (left, right))`.

    Accepts an int `p` (all four sides), a pair `(p_h, p_w)` (symmetric per dimension) or
    `((top, bottom), (left, right))`; every amount must be an integer >= 0.
    """
    error = ValueError(
        f"`{name}` must be an integer >= 0, a pair (pad_h, pad_w) or "
        f"((top, bottom), (left, right)) of integers >= 0. Received: {name}={value!r}"
    )
    if is_int(value):
        if value < 0:
            raise error
        return ((int(value), int(value)), (int(value), int(value)))
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise error
    pairs = []
    for item in value:
        if is_int(item) and item >= 0:
            pairs.append((int(item), int(item)))
        elif (
            isinstance(item, (list, tuple))
            and len(item) == 2
            and all(is_int(v) and v >= 0 for v in item)
        ):
            pairs.append((int(item[0]), int(item[1])))
        else:
            raise error
    return (pairs[0], pairs[1])
