"""Logistic regression: a linear model with a sigmoid (or softmax) output and cross-entropy loss."""

from __future__ import annotations

from typing import Any

import keras

from i2dl_keras.classic import _checks

__all__ = ["LogisticRegression"]


@keras.saving.register_keras_serializable(package="i2dl_keras")
class LogisticRegression(keras.Model):
    """Logistic regression: `p(y = 1 | x) = sigmoid(x w + b)`, trained with cross-entropy.

    The course's "Logistic Regression": linear regression followed by the logistic (sigmoid)
    function, whose output in `(0, 1)` is read as a probability for binary classification.
    Its loss is the binary cross-entropy
    `-(1/n) sum_i [y_i log p_i + (1 - y_i) log(1 - p_i)]`, which is convex in `(w, b)`.
    Erratum: the course notes call it a "quadratic function"; that is a transcription slip,
    the squared error on a sigmoid output is not what logistic regression minimises.

    With `num_classes > 2` (or `multinomial=True`) the model is multinomial logistic
    (softmax) regression, `p = softmax(x W + b)`, trained with the categorical cross-entropy
    on integer labels. `compile()` uses these losses when no `loss` is given.

    Args:
        num_features: Number of input features; when given the model is built at once.
            Defaults to `None` (built on the first call).
        num_classes: Number of classes, at least 2. Defaults to `2`.
        multinomial: Whether to use a softmax over `num_classes` outputs even for two
            classes. Defaults to `False`.
        l2: L2 penalty `l2 * sum(w^2)` on the weights (not the bias), added to the loss.
            Defaults to `0.0`.
        **kwargs: Forwarded to `keras.Model` (e.g. `name`).

    Call arguments:
        inputs: `(batch, num_features)`.

    Returns:
        From `call`: `p(y = 1 | x)` of shape `(batch, 1)` for the binary model, or class
        probabilities `(batch, num_classes)` for the multinomial one.

    Raises:
        ValueError: if `num_features` or `num_classes` is out of range or `l2` is negative.

    Example:

    >>> model = i2dl_keras.classic.LogisticRegression(num_features=2)
    >>> model.compile(optimizer="adam", metrics=["accuracy"])   # binary cross-entropy
    >>> model.fit(x, y, epochs=100, verbose=0)
    """

    def __init__(
        self,
        num_features: int | None = None,
        num_classes: int = 2,
        multinomial: bool = False,
        l2: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_features = _checks.optional_int_at_least("num_features", num_features, 1)
        self.num_classes = _checks.int_at_least("num_classes", num_classes, 2)
        self.multinomial = bool(multinomial)
        self.l2 = _checks.non_negative_float("l2", l2)
        self.linear = keras.layers.Dense(
            self.num_classes if self.uses_softmax else 1,
            activation="softmax" if self.uses_softmax else "sigmoid",
            kernel_regularizer=keras.regularizers.L2(self.l2) if self.l2 > 0.0 else None,
            name="linear",
        )
        if self.num_features is not None:
            self.build((None, self.num_features))

    @property
    def uses_softmax(self) -> bool:
        """Whether the output is a softmax over `num_classes` (else one sigmoid unit)."""
        return self.multinomial or self.num_classes > 2

    def build(self, input_shape: tuple) -> None:
        if not self.linear.built:
            self.linear.build(input_shape)
        self.num_features = int(input_shape[-1])

    def call(self, inputs):
        return self.linear(inputs)

    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, **kwargs: Any) -> None:
        """`keras.Model.compile`, with the cross-entropy of this model as the default loss.

        Args:
            optimizer: As in `keras.Model.compile`. Defaults to `"rmsprop"`.
            loss: Defaults to `None`: binary cross-entropy for the sigmoid output, sparse
                categorical cross-entropy (integer labels) for the softmax output.
            **kwargs: Forwarded to `keras.Model.compile` (e.g. `metrics`).
        """
        if loss is None:
            if self.uses_softmax:
                loss = keras.losses.SparseCategoricalCrossentropy()
            else:
                loss = keras.losses.BinaryCrossentropy()
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "num_features": self.num_features,
                "num_classes": self.num_classes,
                "multinomial": self.multinomial,
                "l2": self.l2,
            }
        )
        return config
