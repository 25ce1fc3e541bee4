"""Linear regression: the closed-form least-squares solution and a Keras model that holds it."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from i2dl_keras.classic import _checks

__all__ = ["LinearRegression", "linear_least_squares"]


def linear_least_squares(
    x: Any, y: Any, fit_intercept: bool = True, l2: float = 0.0
) -> tuple[np.ndarray, np.ndarray | float]:
    """Closed-form linear least squares (ridge regression when `l2 > 0`).

    The course's "Linear Least Squares": the model `y_hat = x w + b` minimises the squared
    error `(X theta - y)^T (X theta - y)`, a convex problem whose unique minimiser solves the
    normal equations `X^T X theta = X^T y`, i.e. `theta = (X^T X)^-1 X^T y`. Forming `X^T X`
    squares the condition number, so this solves the same problem by SVD least squares
    (`keras.ops.lstsq`, in float64) instead. With `l2 > 0` the objective gains
    `l2 * |w|^2`, solved as the least-squares problem of `X` stacked on `sqrt(l2) I` (the
    ridge normal equations `(X^T X + l2 I) w = X^T y`). The intercept is never penalised:
    `x` and `y` are centred, `w` is solved on the centred data and `b = mean(y) - mean(x) w`.
    When `X` is rank-deficient (and `l2 = 0`) the minimum-norm `w` is returned.

    Args:
        x: Inputs, shape `(n, d)`, or `(n,)` for one feature.
        y: Targets, shape `(n,)` or `(n, m)` for `m` outputs.
        fit_intercept: Whether to fit the bias `b`; `False` fits `y_hat = x w`. Defaults to
            `True`.
        l2: Ridge penalty `lambda >= 0` on the weights. Defaults to `0.0`.

    Returns:
        `(weights, bias)` as float64 NumPy values: for 1-D `y`, `weights` has shape `(d,)` and
        `bias` is a float; for 2-D `y`, shapes `(d, m)` and `(m,)`. `bias` is zero when
        `fit_intercept` is `False`.

    Raises:
        ValueError: if `x` or `y` has the wrong rank, their lengths differ, they are empty or
            not finite, or `l2` is negative.

    Example:

    >>> w, b = i2dl_keras.classic.linear_least_squares([0.0, 1.0], [1.0, 3.0])
    >>> w, b
    (array([2.]), 1.0)
    """
    l2 = _checks.non_negative_float("l2", l2)
    x = np.asarray(x, dtype="float64")
    y = np.asarray(y, dtype="float64")
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(
            f"`x` must be a non-empty array of shape (n,) or (n, d). Received: x.shape={x.shape}"
        )
    if y.ndim not in (1, 2) or len(y) != len(x):
        raise ValueError(
            f"`y` must have shape ({len(x)},) or ({len(x)}, m) to match `x`. "
            f"Received: y.shape={y.shape}"
        )
    for name, array in (("x", x), ("y", y)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise ValueError(
                f"`{name}` must be finite (no NaN or inf). "
                f"Received: {name} with {bad} non-finite values"
            )
    vector_y = y.ndim == 1
    y2 = y[:, None] if vector_y else y
    if fit_intercept:
        x_mean, y_mean = x.mean(axis=0), y2.mean(axis=0)
        a, b = x - x_mean, y2 - y_mean
    else:
        a, b = x, y2
    if l2 > 0.0:
        d = x.shape[1]
        a = np.concatenate([a, np.sqrt(l2) * np.eye(d)], axis=0)
        b = np.concatenate([b, np.zeros((d, b.shape[1]))], axis=0)
    weights = ops.convert_to_numpy(
        ops.lstsq(ops.convert_to_tensor(a, "float64"), ops.convert_to_tensor(b, "float64"))
    )
    bias = y_mean - x_mean @ weights if fit_intercept else np.zeros(y2.shape[1])
    if vector_y:
        return weights[:, 0], float(bias[0])
    return weights, bias


@keras.saving.register_keras_serializable(package="i2dl_keras")
class LinearRegression(keras.Model):
    """Linear regression `y_hat = x W + b` as a Keras model, trainable or solved in closed form.

    The course's "Linear Regression". Train it like any model (with a mean squared error
    loss), or call `solve(x, y)` to set the weights to the exact least-squares solution of
    `linear_least_squares`, which is the minimum that gradient descent on the MSE approaches.

    Args:
        units: Number of outputs `m`. Defaults to `1`.
        use_bias: Whether to learn the bias `b`. Defaults to `True`.
        num_features: Number of input features; when given the model is built at once.
            Defaults to `None` (built on the first call or `solve`).
        **kwargs: Forwarded to `keras.Model` (e.g. `name`).

    Call arguments:
        inputs: `(batch, num_features)`.

    Returns:
        From `call`: predictions `(batch, units)`.

    Raises:
        ValueError: if `units` or `num_features` is not a positive integer.

    Example:

    >>> model = i2dl_keras.classic.LinearRegression().solve(x_train, y_train)
    >>> y_hat = model(x_test)
    """

    def __init__(
        self,
        units: int = 1,
        use_bias: bool = True,
        num_features: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.units = _checks.int_at_least("units", units, 1)
        self.use_bias = bool(use_bias)
        self.num_features = _checks.optional_int_at_least("num_features", num_features, 1)
        self.linear = keras.layers.Dense(self.units, use_bias=self.use_bias, name="linear")
        if self.num_features is not None:
            self.build((None, self.num_features))

    def build(self, input_shape: tuple) -> None:
        if not self.linear.built:
            self.linear.build(input_shape)
        self.num_features = int(input_shape[-1])

    def call(self, inputs):
        return self.linear(inputs)

    def solve(self, x: Any, y: Any, l2: float = 0.0) -> LinearRegression:
        """Sets the weights to the least-squares solution for `(x, y)`.

        Args:
            x: Inputs, shape `(n, num_features)`.
            y: Targets, shape `(n,)` (for `units = 1`) or `(n, units)`.
            l2: Ridge penalty, as in `linear_least_squares`. Defaults to `0.0`.

        Returns:
            The model itself.

        Raises:
            ValueError: if the shapes do not fit the model, or as `linear_least_squares`.
        """
        x = np.asarray(x)
        if x.ndim != 2:
            raise ValueError(f"`x` must be 2-D (samples, features). Received: x.shape={x.shape}")
        if self.built and x.shape[1] != self.num_features:
            raise ValueError(
                f"`x` must have `num_features` = {self.num_features} columns. "
                f"Received: x.shape={x.shape}"
            )
        y = np.asarray(y)
        y2 = y[:, None] if y.ndim == 1 else y
        if y2.ndim != 2 or y2.shape[1] != self.units:
            raise ValueError(
                f"`y` must have shape (n, {self.units}) (or (n,) for one unit). "
                f"Received: y.shape={y.shape}"
            )
        weights, bias = linear_least_squares(x, y2, fit_intercept=self.use_bias, l2=l2)
        if not self.built:
            self.build((None, x.shape[1]))
        self.linear.kernel.assign(weights.astype(self.linear.kernel.dtype))
        if self.use_bias:
            self.linear.bias.assign(bias.astype(self.linear.bias.dtype))
        return self

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {"units": self.units, "use_bias": self.use_bias, "num_features": self.num_features}
        )
        return config
