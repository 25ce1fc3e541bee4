"""Bases of the layers whose output has the shape of their input, element by element."""

import keras

from i2dl_keras.layers import _checks


class ShapePreservingLayer(keras.layers.Layer):
    """A layer whose output has its input's shape and which passes a Keras mask through."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_output_shape(self, input_shape):
        return input_shape


class FixedSlopeActivation(ShapePreservingLayer):
    """An activation with one fixed, non-negative `alpha` for its negative branch."""

    def __init__(self, alpha, **kwargs):
        super().__init__(**kwargs)
        self.alpha = _checks.non_negative_float("alpha", alpha)

    def get_config(self):
        config = super().get_config()
        config.update({"alpha": self.alpha})
        return config


class RandomCorruptionLayer(ShapePreservingLayer):
    """A layer that corrupts a random fraction `rate` of its inputs, drawn from its own seed.

    It stores and saves `rate` and `seed` and owns `seed_generator`; a subclass implements
    `call(inputs, training=False)` and adds its own arguments to `get_config`.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _checks.rate("rate", rate)
        self.seed = _checks.optional_seed("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config


def leaky(inputs, alpha):
    """The piecewise leaky ReLU, `x` for `x >= 0` and `alpha * x` otherwise."""
    return keras.ops.where(inputs >= 0, inputs, alpha * inputs)
