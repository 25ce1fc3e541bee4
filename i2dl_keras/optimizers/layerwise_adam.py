"""Adam with a learning-rate factor per variable: discriminative fine-tuning."""

from __future__ import annotations

from collections.abc import Mapping

import keras


@keras.saving.register_keras_serializable(package="i2dl_keras")
class LayerwiseAdam(keras.optimizers.Adam):
    """Adam whose learning rate is multiplied by a factor of each variable's own.

    Fine-tuning a pretrained network, the lower layers hold the general features (edges,
    textures) that need the least change, so they are updated with smaller rates than the top
    (the course: "pre-trained layers are only updated with a very small learning rate";
    Howard & Ruder, 2018, "discriminative fine-tuning"). Adam's step hardly depends on the scale
    of the gradient, so scaling gradients cannot do this: here the learning rate itself is
    scaled, and variable `v` takes the step of Adam at rate `learning_rate * multipliers[v.path]`.
    Everything else, including the moment estimates, is plain Adam.

    Args:
        multipliers: Variable path (`variable.path`, e.g. `"dense/kernel"`) -> positive factor
            on the learning rate; variables not named use the factor 1. Defaults to `None`
            (plain Adam).
        **kwargs: The arguments of `keras.optimizers.Adam` (`learning_rate`, `beta_1`, ...).

    Raises:
        ValueError: If `multipliers` is not a mapping of paths to positive numbers.

    Example:

    >>> inputs = keras.Input((4,))
    >>> low = keras.layers.Dense(8, name="low")
    >>> outputs = keras.layers.Dense(1, name="top")(low(inputs))
    >>> model = keras.Model(inputs, outputs)
    >>> slower = {v.path: 0.1 for v in low.trainable_variables}  # "low/kernel", "low/bias"
    >>> optimizer = i2dl_keras.optimizers.LayerwiseAdam(slower, learning_rate=1e-3)
    >>> model.compile(optimizer=optimizer, loss="mse")
    """

    def __init__(self, multipliers: Mapping[str, float] | None = None, **kwargs):
        super().__init__(**kwargs)
        if multipliers is not None and not isinstance(multipliers, Mapping):
            raise ValueError(
                "`multipliers` must map variable paths to learning-rate factors. "
                f"Received: multipliers={multipliers!r}"
            )
        checked = {}
        for path, factor in (multipliers or {}).items():
            if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 0:
                raise ValueError(
                    "Every learning-rate multiplier must be a positive number. "
                    f"Received: multipliers[{path!r}]={factor!r}"
                )
            checked[str(path)] = float(factor)
        self.multipliers = checked
        self._scales: list[float] = []

    def build(self, var_list):
        super().build(var_list)
        # One factor per variable, in the order Adam indexes its moments.
        self._scales = [self.multipliers.get(v.path, 1.0) for v in var_list]

    def update_step(self, gradient, variable, learning_rate):
        # `_get_variable_index` is how Keras' own optimizers find a variable's slot (see the
        # example in `keras.optimizers.Optimizer`'s docstring).
        scale = self._scales[self._get_variable_index(variable)]
        if scale != 1.0:
            learning_rate = learning_rate * scale
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config["multipliers"] = dict(self.multipliers)
        return config
