"""The contractive autoencoder's penalty: the encoder Jacobian's squared Frobenius norm."""

from __future__ import annotations

from keras import ops

_DERIVATIVES = {
    # Each derivative is written in terms of the activation's output h, which the layer has.
    "sigmoid": lambda h: h * (1.0 - h),
    "tanh": lambda h: 1.0 - ops.square(h),
    "relu": lambda h: ops.cast(ops.greater(h, 0.0), h.dtype),
    "linear": lambda h: ops.ones_like(h),
}

CONTRACTIVE_ACTIVATIONS = tuple(_DERIVATIVES)


def contractive_penalty(kernel, outputs, activation: str = "sigmoid"):
    """Squared Frobenius norm of the Jacobian of a dense encoder, averaged over the batch.

    For `h = activation(x @ W + b)` the Jacobian is `dh/dx = diag(activation'(z)) W^T`, so
    `||J||_F^2 = sum_j activation'(z_j)^2 * sum_i W_ij^2` (Rifai et al., 2011). The contractive
    autoencoder adds this term, times a weight, to the reconstruction loss so that the code changes
    little when the input moves off the data.

    Args:
        kernel: The encoder's `(input_dim, units)` weight matrix.
        outputs: The encoder's activations `h`, shape `(batch, units)`.
        activation: One of `"sigmoid"`, `"tanh"`, `"relu"`, `"linear"`. Defaults to `"sigmoid"`.

    Returns:
        A scalar tensor: the mean over the batch of `||J||_F^2`.

    Raises:
        ValueError: if `activation` has no closed-form derivative here.
    """
    if activation not in _DERIVATIVES:
        raise ValueError(
            f"`activation` must be one of {CONTRACTIVE_ACTIVATIONS}. "
            f"Received: activation={activation!r}"
        )
    slope = _DERIVATIVES[activation](outputs)
    column_norms = ops.sum(ops.square(kernel), axis=0)
    return ops.mean(ops.sum(ops.square(slope) * column_norms, axis=-1))
