"""Argument checks shared by the regularizers."""

from __future__ import annotations

import math


def check_factor(value, name: str) -> float:
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
