"""Decoupled weight decay as a wrapper around any Keras optimizer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

# Arguments of the base optimizer that a wrapper cannot honour: they belong on the inner optimizer.
_INNER_ONLY_ARGUMENTS = (
    "learning_rate",
    "weight_decay",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "use_ema",
    "ema_momentum",
    "ema_overwrite_frequency",
    "loss_scale_factor",
    "gradient_accumulation_steps",
)


@keras.saving.register_keras_serializable(package="i2dl_keras")
class DecoupledWeightDecay(keras.optimizers.Optimizer):
    """Wraps an optimizer and shrinks every decayed weight by a fixed fraction per step.

    The course's weight decay update is `theta_{k+1} = theta_k - alpha * grad - lambda * theta_k`
    (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", 2019). Erratum: the course
    notes write the last term as `- lambda * theta^2`; the decay is linear in `theta`, which is
    what this wrapper implements. Each step first computes `theta_k * (1 - weight_decay)` and
    then lets the inner optimizer add its own update (which, for SGD, Momentum, RMSprop and Adam,
    does not depend on the variable's value), so the result is exactly
    `theta_k + inner_step(grad) - weight_decay * theta_k`.

    How this differs from what Keras ships:

    - Keras' built-in `weight_decay=` argument (and `keras.optimizers.AdamW`) also decouples the
      decay from the gradient, but multiplies it by the learning rate:
      `theta -= learning_rate * weight_decay * theta`. Here the decay is not scaled by the
      learning rate, as in the course formula, so for a constant learning rate
      `DecoupledWeightDecay(SGD(lr), wd)` equals `SGD(lr, weight_decay=wd / lr)`; under a
      learning-rate schedule the two differ (here the decay stays constant).
    - L2 regularization adds `lambda * theta` to the gradient; under Adam or RMSprop that term is
      then divided by the running RMS of the gradient, so weights with large gradients are
      barely decayed. Decoupled decay shrinks every decayed weight by the same fraction.

    Gradient clipping, EMA and loss scaling are configured on the inner optimizer.
    Gradient accumulation and the inner optimizer's own `weight_decay` are rejected, because the
    decay would then be applied on every micro-batch, or twice. Variables whose `path` matches
    one of `exclude_from_decay` (regular expressions, searched with `re.search`) are updated by
    the inner optimizer only; biases and normalization scales/offsets are the usual candidates.
    The decay is applied with plain variable assignments, so it is meant for single-device
    training (no `tf.distribute` merge calls).

    Args:
        optimizer: The inner optimizer: a `keras.optimizers.Optimizer` instance, or an
            identifier accepted by `keras.optimizers.get` (such as `"adam"` or a serialized
            optimizer dict).
        weight_decay: The fraction `lambda` of each decayed weight removed per step, a float in
            `[0, 1)`.
        exclude_from_decay: Regular expressions; a variable whose `path` (for example
            `"dense/bias"`) matches any of them is not decayed. Defaults to `None` (decay all).
        name: The optimizer's name. Defaults to `None` (an automatic name).
        **kwargs: Accepted for signature compatibility only; base-optimizer arguments such as
            `clipnorm` must be set on the inner optimizer.

    Returns:
        An optimizer for `model.compile(optimizer=...)`.

    Raises:
        ValueError: if `weight_decay` is outside `[0, 1)`, `exclude_from_decay` is not a list of
            strings, the inner optimizer has its own `weight_decay` or gradient accumulation, or
            a base-optimizer argument is passed to the wrapper.

    Example:

    >>> import keras
    >>> from i2dl_keras.optimizers import DecoupledWeightDecay
    >>> opt = DecoupledWeightDecay(
    ...     keras.optimizers.Adam(1e-3), weight_decay=1e-4, exclude_from_decay=["bias"]
    ... )
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer=opt, loss="mse")
    """

    def __init__(
        self,
        optimizer: Any,
        weight_decay: float,
        exclude_from_decay: Sequence[str] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        unsupported = sorted(key for key in kwargs if key in _INNER_ONLY_ARGUMENTS)
        if unsupported:
            raise ValueError(
                "`DecoupledWeightDecay` takes base-optimizer arguments on its inner optimizer, "
                f"not on the wrapper. Received: {unsupported[0]}={kwargs[unsupported[0]]!r}"
            )
        if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float, np.number)):
            raise ValueError(
                f"`weight_decay` must be a float in [0, 1). Received: weight_decay={weight_decay!r}"
            )
        if not 0.0 <= float(weight_decay) < 1.0:
            raise ValueError(
                f"`weight_decay` must be a float in [0, 1). Received: weight_decay={weight_decay!r}"
            )
        if exclude_from_decay is not None:
            if isinstance(exclude_from_decay, str) or not all(
                isinstance(p, str) for p in exclude_from_decay
            ):
                raise ValueError(
                    "`exclude_from_decay` must be None or a list of regular-expression strings. "
                    f"Received: exclude_from_decay={exclude_from_decay!r}"
                )
            exclude_from_decay = list(exclude_from_decay)
            for pattern in exclude_from_decay:
                try:
                    re.compile(pattern)
                except re.error as error:
                    raise ValueError(
                        "`exclude_from_decay` must hold valid regular expressions "
                        f"({error}). Received: exclude_from_decay={exclude_from_decay!r}"
                    ) from None
        inner = keras.optimizers.get(optimizer)
        if not isinstance(inner, keras.optimizers.Optimizer):
            raise ValueError(
                "`optimizer` must be a keras.optimizers.Optimizer or an identifier for one. "
                f"Received: optimizer={optimizer!r}"
            )
        if inner.weight_decay is not None:
            raise ValueError(
                "`optimizer` must not have its own `weight_decay` (it would decay twice, and "
                "scaled by the learning rate). Received: "
                f"optimizer.weight_decay={inner.weight_decay!r}"
            )
        if inner.gradient_accumulation_steps:
            raise ValueError(
                "`optimizer` must not accumulate gradients (the decay would run on every "
                "micro-batch). Received: "
                f"optimizer.gradient_accumulation_steps={inner.gradient_accumulation_steps!r}"
            )
        # The wrapper's own learning rate is unused: `learning_rate` is forwarded to the inner one.
        super().__init__(learning_rate=0.0, name=name, **kwargs)
        self.inner_optimizer = inner
        self.weight_decay = float(weight_decay)
        self.exclude_from_decay = exclude_from_decay
        self._decay_flags: dict[int, bool] = {}

    # The wrapper's own variables and bookkeeping ---------------------------------------------

    def build(self, var_list):
        super().build(var_list)
        self.inner_optimizer.build(var_list)
        patterns = [re.compile(p) for p in self.exclude_from_decay or []]
        self._decay_flags = {}
        for variable in var_list:
            excluded = any(p.search(variable.path) for p in patterns)
            self._decay_flags[self._get_variable_index(variable)] = not excluded

    @property
    def variables(self):
        return self._variables[:] + self.inner_optimizer.variables

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    def scale_loss(self, loss):
        return self.inner_optimizer.scale_loss(loss)

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def is_decayed(self, variable) -> bool:
        """Whether `variable` is decayed (the optimizer must be built on it).

        Args:
            variable: One of the variables the optimizer was built with.

        Returns:
            `False` when the variable's path matches `exclude_from_decay`, else `True`.
        """
        return self._decay_flags[self._get_variable_index(variable)]

    # The update ------------------------------------------------------------------------------

    def apply(self, grads, trainable_variables=None):
        """Decays the variables that received a gradient, then applies the inner optimizer.

        Args:
            grads: Gradients, one per variable (entries may be `None`).
            trainable_variables: The variables; required on the first call, which builds the
                optimizer. Defaults to `None` (the variables it was built with).
        """
        grads = list(grads)
        if trainable_variables is None:
            if not self.built:
                raise ValueError(
                    "`trainable_variables` is required on the first call to `apply`. "
                    "Received: trainable_variables=None"
                )
            trainable_variables = self._trainable_variables
        else:
            trainable_variables = list(trainable_variables)
            if not self.built:
                with keras.name_scope(self.name, caller=self):
                    self.build(trainable_variables)
                self.built = True
        if self.weight_decay > 0.0:
            for grad, variable in zip(grads, trainable_variables):
                if grad is None or not self.is_decayed(variable):
                    continue
                keep = ops.cast(1.0 - self.weight_decay, variable.dtype)
                variable.assign(ops.multiply(variable, keep))
        self.inner_optimizer.apply(grads, trainable_variables)

    def stateless_apply(self, optimizer_variables, grads, trainable_variables):
        raise NotImplementedError(
            "`DecoupledWeightDecay` updates variables in place; stateless training (JAX) is "
            "not supported."
        )

    # Serialization ---------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        # Only `name` of the base config applies: the base optimizer's other arguments are the
        # inner optimizer's business and live in its own config.
        config = {"name": super().get_config()["name"]}
        config.update(
            {
                "optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
                "weight_decay": self.weight_decay,
                "exclude_from_decay": (
                    None if self.exclude_from_decay is None else list(self.exclude_from_decay)
                ),
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["optimizer"] = keras.saving.deserialize_keras_object(
            config["optimizer"], custom_objects=custom_objects
        )
        return cls(**config)
