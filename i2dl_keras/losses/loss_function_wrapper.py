"""The `keras.losses.Loss` that every loss class of this package is built from its function with."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import keras


@keras.saving.register_keras_serializable(package="i2dl_keras")
class LossFunctionWrapper(keras.losses.Loss):
    """Turns a per-sample loss function `fn(y_true, y_pred, **kwargs)` into a `keras.losses.Loss`.

    `call` returns `fn(y_true, y_pred, **kwargs)`: the function computes one loss per sample and
    the `Loss` base class applies `sample_weight` and the reduction. Each keyword argument is
    stored as an attribute of its own name, read again on every call and saved by `get_config`,
    so it must be a plain Python value (number, bool, string, list or `None`).

    A loss class subclasses this wrapper with a constructor that names the function's arguments
    with their defaults, validates them and passes them on with the function, as
    `i2dl_keras.losses.L1` does; such a class fixes `fn`, so its config holds only the arguments.
    Used directly, the wrapper also saves `fn`, which must then be registered with
    `keras.saving.register_keras_serializable` to load again.

    Args:
        fn: The loss function, `fn(y_true, y_pred, **kwargs)` returning the per-sample loss.
        reduction: How per-sample losses are combined, as in `keras.losses.Loss`. Defaults to
            `"sum_over_batch_size"`.
        name: Name of the loss instance. Defaults to `None` (derived from the class name).
        dtype: Dtype of the loss computation. Defaults to `None` (`keras.config.floatx()`).
        **kwargs: Keyword arguments passed to `fn` on every call.

    Raises:
        ValueError: if `fn` is not callable, a keyword argument would shadow an attribute of the
            loss, or `reduction` is not one Keras knows.

    Example:
        ```python
        loss = i2dl_keras.losses.LossFunctionWrapper(
            i2dl_keras.losses.multiclass_hinge, margin=0.5
        )
        model.compile(optimizer="sgd", loss=loss)
        ```
    """

    def __init__(
        self,
        fn: Callable,
        reduction="sum_over_batch_size",
        name=None,
        dtype=None,
        **kwargs,
    ):
        if not callable(fn):
            raise ValueError(f"Argument `fn` must be callable. Received: fn={fn!r}")
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.fn = fn
        self.fn_argument_names = tuple(kwargs)
        for key, value in kwargs.items():
            if hasattr(self, key):
                raise ValueError(
                    f"Keyword argument `{key}` of `fn` would shadow an attribute of the loss. "
                    f"Received: {key}={value!r}"
                )
            setattr(self, key, value)

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred, **self._fn_kwargs())

    def get_config(self):
        config = super().get_config()
        # A subclass fixes `fn` in its constructor; only a constructor that takes it needs it back.
        if "fn" in inspect.signature(type(self)).parameters:
            config["fn"] = keras.saving.serialize_keras_object(self.fn)
        config.update(self._fn_kwargs())
        config["dtype"] = self.dtype
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "fn" in config:
            config["fn"] = keras.saving.deserialize_keras_object(config["fn"])
        return cls(**config)

    def _fn_kwargs(self) -> dict:
        return {key: getattr(self, key) for key in self.fn_argument_names}
