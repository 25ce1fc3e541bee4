"""All-zero weights: the initialization that never breaks the symmetry between units."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="i2dl_keras")
class Zeros(keras.initializers.Initializer):
    """Zero initializer: every weight starts at 0.

    Course notes, "Weight Initialization": with all-zero weights all units of a layer compute
    the same output and receive the same gradient, so they stay identical through training:
    a layer of `n` units behaves like one unit. Random weights break this symmetry. Zeros is
    the right start for biases (Keras' default) but not for the kernels of hidden layers. It
    computes what `keras.initializers.Zeros` computes and exists so that the course's three
    initializations (`Zeros`, `SmallGaussian`, `LargeGaussian`) sit side by side.

    Returns:
        Called with `(shape, dtype=None)`, a tensor of zeros of that shape.

    Example:
        ```python
        # Every hidden unit keeps the same weights, however long it trains.
        dense = keras.layers.Dense(
            8, activation="sigmoid", kernel_initializer=i2dl_keras.initializers.Zeros()
        )
        ```
    """

    def __call__(self, shape, dtype=None):
        dtype = keras.backend.standardize_dtype(dtype or keras.config.floatx())
        return keras.ops.zeros(shape, dtype=dtype)

    def get_config(self):
        # Zeros has no arguments.
        return {}
