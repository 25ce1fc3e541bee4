"""Sparsity activity regularizer for sparse autoencoders: L1 or KL on the hidden activations."""

from __future__ import annotations

import math

import keras
from keras import ops

from i2dl_keras.regularizers._validation import check_factor


@keras.saving.register_keras_serializable(package="i2dl_keras")
class Sparsity(keras.regularizers.Regularizer):
    """Activity regularizer that keeps most hidden units of a sparse autoencoder inactive.

    Pass it as `activity_regularizer=` of the code layer. The penalty that the layer adds to the
    model's loss is, for activations `h` of shape `(batch, ..., units)`:

    - `target=None`: the L1 penalty on activations, `weight * mean_over_batch(sum_j |h_j|)`
      (the sum runs over every non-batch axis).
    - `target=rho` in `(0, 1)`: the KL form (Ng, "Sparse autoencoder" notes),
      `weight * sum_j KL(rho || rho_hat_j)` with `rho_hat_j` the mean activation of unit `j`
      over the batch (and any spatial axes), clipped to `(eps, 1 - eps)`, and
      `KL(rho || q) = rho log(rho / q) + (1 - rho) log((1 - rho) / (1 - q))`. It needs activations
      in `(0, 1)`, i.e. a sigmoid code layer.

    `penalty(h)` returns exactly that number. Keras divides what an activity regularizer returns
    by the batch size before adding it to the layer's losses (the documented contract, enforced
    since keras-team/keras#22021), so `__call__` returns the batch total `batch_size * penalty(h)`:
    the layer then adds `penalty(h)`, whatever the batch size. Call `penalty` directly when adding
    the term yourself with `add_loss`.

    Args:
        weight: The penalty's factor, a finite number `>= 0`. Defaults to `1e-4`.
        target: The target mean activation `rho`, strictly between 0 and 1, or `None` for the L1
            form. Defaults to `None`.

    Returns:
        Called on activations, a scalar tensor: `batch_size * penalty(activations)`.

    Raises:
        ValueError: if `weight` is negative or not a finite number, or `target` is neither `None`
            nor a number strictly between 0 and 1.

    Example:
        ```python
        code = keras.layers.Dense(
            64,
            activation="sigmoid",
            activity_regularizer=i2dl_keras.regularizers.Sparsity(weight=1e-3, target=0.05),
        )
        ```
    """

    def __init__(self, weight: float = 1e-4, target: float | None = None):
        self.weight = check_factor(weight, "weight")
        if target is not None and (
            isinstance(target, bool)
            or not isinstance(target, (int, float))
            or not math.isfinite(target)
            or not 0.0 < target < 1.0
        ):
            raise ValueError(
                "Argument `target` must be None or a number strictly between 0 and 1. "
                f"Received: target={target!r}"
            )
        self.target = None if target is None else float(target)

    def penalty(self, activations):
        """The sparsity penalty for one batch of activations, as described in the class docstring.

        Args:
            activations: Hidden activations, shape `(batch, ..., units)`.

        Returns:
            A scalar tensor.
        """
        h = ops.convert_to_tensor(activations)
        if self.target is None:
            batch_size = ops.cast(ops.shape(h)[0], h.dtype)
            return self.weight * ops.divide_no_nan(ops.sum(ops.abs(h)), batch_size)
        eps = keras.config.epsilon()
        rho = self.target
        mean_axes = tuple(range(len(h.shape) - 1))
        rho_hat = ops.clip(ops.mean(h, axis=mean_axes), eps, 1.0 - eps)
        kl = rho * ops.log(rho / rho_hat) + (1.0 - rho) * ops.log((1.0 - rho) / (1.0 - rho_hat))
        return self.weight * ops.sum(kl)

    def __call__(self, x):
        x = ops.convert_to_tensor(x)
        if self.target is None:
            # The batch total; Keras' activity-regularizer hook divides it by the batch size.
            return self.weight * ops.sum(ops.abs(x))
        return ops.cast(ops.shape(x)[0], x.dtype) * self.penalty(x)

    def get_config(self):
        return {"weight": self.weight, "target": self.target}
