"""A dense encoder layer that adds the contractive autoencoder's Jacobian penalty to the loss."""

import keras

from i2dl_keras.layers import _checks
from i2dl_keras.regularizers.contractive import CONTRACTIVE_ACTIVATIONS, contractive_penalty


@keras.saving.register_keras_serializable(package="i2dl_keras")
class ContractiveDense(keras.layers.Dense):
    """Dense layer `h = s(x W + b)` that penalises the Jacobian `dh/dx` of its own output.

    The contractive autoencoder (Rifai et al., 2011; "force the encoder to have small
    derivatives of hidden unit output as input varies" in the slides) minimises the
    reconstruction error plus `contraction * ||J(x)||_F^2`, where `J(x) = dh/dx` is the
    encoder's Jacobian. For a dense layer it has a closed form,
    `||J||_F^2 = sum_j s'(z_j)^2 * sum_i W_ij^2`, computed by
    `i2dl_keras.regularizers.contractive_penalty` from the layer's output, so no second
    backward pass is needed. Each call adds `contraction` times the batch mean of that norm with
    `add_loss`; Keras adds it to the training (and evaluation) loss of any model that contains
    the layer. With several leading axes, the mean runs over all of them.

    Args:
        units: Positive integer, width of the code.
        activation: Activation whose derivative the penalty needs in closed form: one of
            `"sigmoid"`, `"tanh"`, `"relu"`, `"linear"`. Defaults to `"sigmoid"`.
        contraction: Weight of the penalty, a float >= 0 (`lambda` in Rifai et al.); `0` turns
            the layer into a plain `Dense`. Defaults to `1e-3`.
        **kwargs: Any other `keras.layers.Dense` argument (`use_bias`, `kernel_initializer`,
            ...) and base layer keyword arguments such as `name`.

    Call arguments:
        inputs: Input tensor.

    Input shape:
        `(batch_size, ..., input_dim)`.

    Output shape:
        `(batch_size, ..., units)`.

    Raises:
        ValueError: if `units` is not a positive integer, `activation` has no closed-form
            derivative here, or `contraction` is negative.

    Example:

    >>> layer = i2dl_keras.layers.ContractiveDense(8, activation="sigmoid", contraction=1e-2)
    >>> codes = layer(np.random.rand(4, 16).astype("float32"))
    >>> len(layer.losses)  # the contractive penalty of this call
    1
    """

    def __init__(self, units, activation="sigmoid", contraction=1e-3, **kwargs):
        units = _checks.positive_int("units", units)
        if not isinstance(activation, str) or activation not in CONTRACTIVE_ACTIVATIONS:
            raise ValueError(
                f"`activation` must be one of {CONTRACTIVE_ACTIVATIONS} (the penalty needs its "
                f"derivative in closed form). Received: activation={activation!r}"
            )
        contraction = _checks.non_negative_float("contraction", contraction)
        super().__init__(units, activation=activation, **kwargs)
        self.contraction = contraction
        # The Dense base keeps only the function; the penalty needs the name.
        self.activation_name = activation

    def call(self, inputs, training=None):
        outputs = super().call(inputs, training=training)
        if self.contraction > 0.0:
            penalty = contractive_penalty(self.kernel, outputs, self.activation_name)
            self.add_loss(self.contraction * penalty)
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update({"activation": self.activation_name, "contraction": self.contraction})
        return config
