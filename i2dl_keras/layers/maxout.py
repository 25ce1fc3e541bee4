"""Maxout: the maximum over k learned linear pieces."""

import keras

from i2dl_keras.layers import _checks


@keras.saving.register_keras_serializable(package="i2dl_keras")
class Maxout(keras.layers.Layer):
    """A dense maxout layer: each unit outputs the largest of `pieces` linear functions.

    Unit `j` computes `max_k (x W_jk + b_jk)` over `k = 1..pieces` (Goodfellow et al. 2013,
    "Maxout Networks"; the course writes it `max(w_1^T x + b_1, w_2^T x + b_2)` for two pieces).
    It learns a convex piecewise-linear activation, generalises ReLU (one piece fixed at zero)
    and Leaky ReLU, does not saturate and does not die, at the price of `pieces` times the
    parameters of a Dense layer with the same number of units.

    The kernel has shape `(input_dim, units * pieces)`; column `j * pieces + k` holds piece
    `k` of unit `j` (pieces of one unit are adjacent), and the bias follows the same order.

    Args:
        units: Number of output units. Positive integer.
        pieces: Number of linear pieces per unit, at least 2 (a one-piece maxout unit is a
            `keras.layers.Dense` unit). Defaults to `2`.
        use_bias: Whether each piece has a bias. Defaults to `True`.
        kernel_initializer: Initializer for the kernel. Defaults to `"glorot_uniform"`.
        bias_initializer: Initializer for the bias. Defaults to `"zeros"`.
        kernel_regularizer: Optional regularizer for the kernel. Defaults to `None`.
        bias_regularizer: Optional regularizer for the bias. Defaults to `None`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        `(batch_size, ..., input_dim)`.

    Output shape:
        `(batch_size, ..., units)`.

    Raises:
        ValueError: if `units` is not a positive integer or `pieces` is not an integer >= 2.

    Example:

    >>> layer = i2dl_keras.layers.Maxout(units=4, pieces=3)
    >>> tuple(layer(np.ones((2, 5), "float32")).shape)
    (2, 4)
    """

    def __init__(
        self,
        units,
        pieces=2,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = _checks.positive_int("units", units)
        if not _checks.is_int(pieces) or pieces < 2:
            raise ValueError(f"`pieces` must be an integer >= 2. Received: pieces={pieces!r}")
        self.pieces = int(pieces)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.supports_masking = True

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                "The last dimension of the input to `Maxout` must be known. "
                f"Received: input_shape={input_shape}"
            )
        self.kernel = self.add_weight(
            shape=(input_dim, self.units * self.pieces),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.units * self.pieces,),
                name="bias",
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
            )
        else:
            self.bias = None

    def call(self, inputs):
        z = keras.ops.matmul(inputs, self.kernel)
        if self.bias is not None:
            z = keras.ops.add(z, self.bias)
        shape = keras.ops.shape(z)
        z = keras.ops.reshape(z, (*shape[:-1], self.units, self.pieces))
        return keras.ops.max(z, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "pieces": self.pieces,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            }
        )
        return config
