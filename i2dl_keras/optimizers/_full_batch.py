"""Shared machinery of the full-batch optimizers: a model's trainable variables as one vector.

The outer algorithms (`LBFGS`, `LevenbergMarquardt`) run in float64 NumPy, which is cheap for
the small models they are meant for; the loss, gradient, residuals and Jacobian are computed by
TensorFlow (`tf.GradientTape` inside `tf.function`) in the model's own dtype. These optimizers
are therefore TensorFlow-only.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf


class EvaluationBudgetExhausted(Exception):
    """Raised by `FlatProblem` when `max_evaluations` loss evaluations have been spent."""


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}")
    return int(value)


def check_float(name: str, value: Any, minimum: float, strict: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.floating))
    if ok:
        ok = float(value) > minimum if strict else float(value) >= minimum
        ok = ok and np.isfinite(float(value))
    if not ok:
        relation = ">" if strict else ">="
        raise ValueError(
            f"`{name}` must be a finite number {relation} {minimum}. Received: {name}={value!r}"
        )
    return float(value)


def resolve_loss(loss: Any):
    """A callable `(y_true, y_pred) -> scalar` from a Keras loss identifier, object or function."""
    if isinstance(loss, keras.losses.Loss):
        return loss
    fn = keras.losses.get(loss) if isinstance(loss, (str, dict)) else loss
    if not callable(fn):
        raise ValueError(
            f"`loss` must be a Keras loss identifier, a Loss or a callable. Received: loss={loss!r}"
        )
    if isinstance(fn, keras.losses.Loss):
        return fn

    def mean_loss(y_true, y_pred):
        return keras.ops.mean(fn(y_true, y_pred))

    return mean_loss


class FlatProblem:
    """A model, full-batch data and the model's trainable variables as one float64 vector.

    Args:
        model: A built Keras model (it is built here if it is not).
        x: Inputs: an array or a list of arrays.
        y: Targets.
        max_evaluations: Evaluation budget; exceeding it raises `EvaluationBudgetExhausted`.
    """

    def __init__(self, model: keras.Model, x: Any, y: Any, max_evaluations: int | None = None):
        if not isinstance(model, keras.Model):
            raise ValueError(f"`model` must be a keras.Model. Received: model={model!r}")
        if not model.built:
            model(x)
        self.model = model
        self.variables = list(model.trainable_variables)
        if not self.variables:
            raise ValueError(
                "`model` must have trainable variables. "
                f"Received: model with {len(model.trainable_variables)} trainable variables"
            )
        dtypes = {v.dtype for v in self.variables}
        if len(dtypes) != 1:
            raise ValueError(
                "`model` must keep all trainable variables in one dtype. "
                f"Received: dtypes={sorted(dtypes)}"
            )
        self.dtype = tf.as_dtype(dtypes.pop())
        self.shapes = [tuple(v.shape) for v in self.variables]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.size = sum(self.sizes)
        self.x = keras.tree.map_structure(lambda a: tf.convert_to_tensor(a), x)
        self.y = tf.cast(tf.convert_to_tensor(y), self.dtype)
        self.max_evaluations = max_evaluations
        self.evaluations = 0
        self.jacobian_evaluations = 0
        self._value_and_grad_fn = None
        self._residuals_fn = None
        self._residuals_and_jacobian_fn = None

    # Vector <-> variables ----------------------------------------------------------------------

    def get_flat(self) -> np.ndarray:
        return np.concatenate(
            [np.asarray(keras.ops.convert_to_numpy(v), np.float64).ravel() for v in self.variables]
        )

    def set_flat(self, theta: np.ndarray) -> None:
        self._assign(tf.constant(theta, self.dtype))

    def _assign(self, flat):
        pieces = tf.split(flat, self.sizes)
        for variable, piece, shape in zip(self.variables, pieces, self.shapes):
            variable.assign(tf.reshape(piece, shape))

    def _flatten(self, tensors):
        return tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)

    def _count(self) -> None:
        if self.max_evaluations is not None and self.evaluations >= self.max_evaluations:
            raise EvaluationBudgetExhausted
        self.evaluations += 1

    # Loss and gradient ---------------------------------------------------------------------------

    def value_and_grad(self, theta: np.ndarray, loss: Any) -> tuple[float, np.ndarray]:
        """The full-batch loss (plus `model.losses`) and its gradient at `theta`, in float64."""
        if self._value_and_grad_fn is None:
            loss_fn = resolve_loss(loss)

            @tf.function(reduce_retracing=True)
            def value_and_grad_fn(flat):
                self._assign(flat)
                with tf.GradientTape() as tape:
                    prediction = self.model(self.x, training=False)
                    value = tf.cast(loss_fn(self.y, prediction), self.dtype)
                    if self.model.losses:
                        value += tf.cast(tf.add_n(self.model.losses), self.dtype)
                grads = tape.gradient(
                    value, self.variables, unconnected_gradients=tf.UnconnectedGradients.ZERO
                )
                return value, self._flatten(grads)

            self._value_and_grad_fn = value_and_grad_fn
        self._count()
        value, grad = self._value_and_grad_fn(tf.constant(theta, self.dtype))
        return float(value.numpy()), np.asarray(grad.numpy(), np.float64)

    # Residuals and Jacobian ----------------------------------------------------------------------

    def _residuals(self):
        prediction = tf.cast(self.model(self.x, training=False), self.dtype)
        return tf.reshape(prediction - self.y, [-1])

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        """The flattened residuals `model(x) - y` at `theta`, in float64."""
        if self._residuals_fn is None:

            @tf.function(reduce_retracing=True)
            def residuals_fn(flat):
                self._assign(flat)
                return self._residuals()

            self._residuals_fn = residuals_fn
        self._count()
        return np.asarray(self._residuals_fn(tf.constant(theta, self.dtype)).numpy(), np.float64)

    def residuals_and_jacobian(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Residuals `(m,)` and their Jacobian `(m, n)` with respect to the flat parameters."""
        if self._residuals_and_jacobian_fn is None:

            @tf.function(reduce_retracing=True)
            def residuals_and_jacobian_fn(flat):
                self._assign(flat)
                with tf.GradientTape() as tape:
                    residuals = self._residuals()
                blocks = tape.jacobian(
                    residuals, self.variables, unconnected_gradients=tf.UnconnectedGradients.ZERO
                )
                rows = tf.shape(residuals)[0]
                jacobian = tf.concat([tf.reshape(b, [rows, -1]) for b in blocks], axis=1)
                return residuals, jacobian

            self._residuals_and_jacobian_fn = residuals_and_jacobian_fn
        self._count()
        self.jacobian_evaluations += 1
        residuals, jacobian = self._residuals_and_jacobian_fn(tf.constant(theta, self.dtype))
        return (
            np.asarray(residuals.numpy(), np.float64),
            np.asarray(jacobian.numpy(), np.float64),
        )
