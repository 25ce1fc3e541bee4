"""A functional model of raw strings that takes texts the way a user holds them."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

__all__ = ["TextModel"]


@keras.saving.register_keras_serializable(package="i2dl_keras")
class TextModel(keras.Model):
    """A functional model whose one input is a batch of raw strings, fed as a user holds them.

    Keras' `fit`, `evaluate` and `predict` take NumPy arrays of numbers, tensors and datasets,
    but refuse a Python list of strings and a NumPy array of dtype `str` or `bytes`
    (`np.array(["a fine film"])`), which is how texts usually arrive. This functional model
    passes such inputs on as a `tf.string` tensor (a NumPy `object` array of `str` and `bytes`
    too); any other input (tensors, `tf.data` datasets, generators) goes to Keras as it is. It is
    built, called, saved and loaded as any functional model: its config is the graph's, and it
    has no settings of its own.

    Args:
        *args: Those of a functional `keras.Model`: `inputs` (one string input, e.g.
            `keras.Input(shape=(), dtype="string")`), `outputs`.
        **kwargs: Forwarded to `keras.Model` (e.g. `name`).

    Call arguments:
        inputs: A `(batch,)` string tensor.

    Returns:
        From `call`: the outputs of the graph.

    Raises:
        ValueError: if the graph does not have exactly one input, of dtype string.

    Example:

    >>> text = keras.Input(shape=(), dtype="string")
    >>> counts = keras.layers.TextVectorization(output_mode="count", vocabulary=["good"])(text)
    >>> model = i2dl_keras.models.TextModel(text, keras.layers.Dense(1)(counts))
    >>> model.predict(["a good film", "dull"])   # also np.array([...]) of str or bytes
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        inputs = self.inputs or []
        if len(inputs) != 1 or keras.backend.standardize_dtype(inputs[0].dtype) != "string":
            raise ValueError(
                "`inputs` must be a single string input, e.g. "
                "keras.Input(shape=(), dtype='string'). Received: inputs="
                f"{[(tuple(t.shape), t.dtype) for t in inputs]}"
            )

    def fit(self, x=None, *args: Any, **kwargs: Any):
        return super().fit(_as_texts(x), *args, **kwargs)

    def evaluate(self, x=None, *args: Any, **kwargs: Any):
        return super().evaluate(_as_texts(x), *args, **kwargs)

    def predict(self, x, *args: Any, **kwargs: Any):
        return super().predict(_as_texts(x), *args, **kwargs)


def _as_texts(x: Any) -> Any:
    """Texts in a list, tuple or NumPy array as a `tf.string` tensor; anything else as it is."""
    if isinstance(x, np.ndarray) and x.dtype.kind in "US":
        return tf.constant(x)
    if isinstance(x, (list, tuple, np.ndarray)) and len(x) and _all_texts(x):
        return tf.constant(list(x))
    return x


def _all_texts(items) -> bool:
    return all(isinstance(t, (str, bytes)) for t in items)
