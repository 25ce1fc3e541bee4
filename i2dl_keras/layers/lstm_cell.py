"""One LSTM step written from the course's gate equations."""

import keras

from i2dl_keras.layers import _checks


@keras.saving.register_keras_serializable(package="i2dl_keras")
class LSTMCell(keras.layers.Layer):
    """One step of a long short-term memory network, from the course's gate equations.

    With `z = x_t W + h_{t-1} U + b` split into four blocks of `units`:

        i_t = sigmoid(z_i)                  input gate: which values are updated
        f_t = sigmoid(z_f)                  forget gate: 1 keeps, 0 erases the cell state
        g_t = tanh(z_g)                     cell update (candidate values)
        o_t = sigmoid(z_o)                  output gate: which values are output
        C_t = f_t * C_{t-1} + i_t * g_t     cell state: the "skip connection" through time
        h_t = o_t * tanh(C_t)               output and hidden state

    (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000.) The weights are
    laid out exactly as in `keras.layers.LSTMCell`: `kernel` `(input_dim, 4 * units)`,
    `recurrent_kernel` `(units, 4 * units)` and `bias` `(4 * units,)`, with the blocks in the
    order i, f, g (Keras calls it c), o. `get_weights` / `set_weights` therefore move weights
    between this cell and Keras' in both directions.

    Dropout follows Gal & Ghahramani (2016): one mask per sequence, reused at every time step,
    on the inputs (`dropout`) and on the previous hidden state (`recurrent_dropout`), scaled by
    `1 / (1 - rate)` as in Keras. The masks are drawn once per call by
    `i2dl_keras.layers.LSTM` and `i2dl_keras.layers.unroll`, which call
    `draw_dropout_masks`; used with dropout in training inside a plain `keras.layers.RNN`, the
    cell raises a `RuntimeError` rather than silently skip the dropout.

    Args:
        units: Size of the hidden and cell states, a positive integer.
        use_bias: Whether to add the bias `b`. Defaults to `True`.
        kernel_initializer: Initializer for `W`. Defaults to `"glorot_uniform"`.
        recurrent_initializer: Initializer for `U`. Defaults to `"orthogonal"`.
        bias_initializer: Initializer for `b`. Defaults to `"zeros"`.
        unit_forget_bias: Whether to start the forget-gate bias at 1 (Jozefowicz et al. 2015),
            so that the cell remembers by default early in training. Defaults to `True`.
        kernel_regularizer: Optional regularizer for `W`. Defaults to `None`.
        recurrent_regularizer: Optional regularizer for `U`. Defaults to `None`.
        bias_regularizer: Optional regularizer for `b`. Defaults to `None`.
        dropout: Fraction of the inputs to drop, in [0, 1). Defaults to `0.0`.
        recurrent_dropout: Fraction of the previous hidden state to drop, in [0, 1).
            Defaults to `0.0`.
        seed: Optional integer seed for the dropout masks. Defaults to `None`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: The step's input, `(batch_size, input_dim)`.
        states: `[h_{t-1}, C_{t-1}]`, each `(batch_size, units)`.
        training: Whether to apply the dropout masks. Defaults to `False`.

    Returns:
        `(h_t, [h_t, C_t])`.

    Raises:
        ValueError: if `units` is not a positive integer, `dropout` or `recurrent_dropout` is
            not in [0, 1), or `seed` is not `None` or an integer >= 0.

    Example:

    >>> cell = i2dl_keras.layers.LSTMCell(4)
    >>> h, (h, c) = cell(np.ones((2, 3), "float32"), [np.zeros((2, 4), "float32")] * 2)
    >>> tuple(h.shape), tuple(c.shape)
    ((2, 4), (2, 4))
    """

    def __init__(
        self,
        units,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = _checks.positive_int("units", units)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.dropout = _checks.rate("dropout", dropout)
        self.recurrent_dropout = _checks.rate("recurrent_dropout", recurrent_dropout)
        self.seed = _checks.optional_seed("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.state_size = [self.units, self.units]
        self.output_size = self.units
        self._input_mask = None
        self._recurrent_mask = None

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(input_shape[-1], 4 * self.units),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, 4 * self.units),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(4 * self.units,),
                name="bias",
                initializer=self._initial_bias,
                regularizer=self.bias_regularizer,
            )
        else:
            self.bias = None

    def _initial_bias(self, shape, dtype=None):
        if not self.unit_forget_bias:
            return self.bias_initializer(shape, dtype=dtype)
        n = self.units
        return keras.ops.concatenate(
            [
                self.bias_initializer((n,), dtype=dtype),
                keras.ops.ones((n,), dtype=dtype),
                self.bias_initializer((2 * n,), dtype=dtype),
            ]
        )

    def draw_dropout_masks(self, step_inputs):
        """Draws this sequence batch's dropout masks; every step until the reset reuses them.

        Args:
            step_inputs: One time step of the inputs, `(batch_size, input_dim)`.
        """
        if self.dropout > 0:
            self._input_mask = keras.random.dropout(
                keras.ops.ones_like(step_inputs), self.dropout, seed=self.seed_generator
            )
        if self.recurrent_dropout > 0:
            ones = keras.ops.ones(
                (keras.ops.shape(step_inputs)[0], self.units), dtype=step_inputs.dtype
            )
            self._recurrent_mask = keras.random.dropout(
                ones, self.recurrent_dropout, seed=self.seed_generator
            )

    def reset_dropout_masks(self):
        """Forgets the masks drawn by `draw_dropout_masks`."""
        self._input_mask = None
        self._recurrent_mask = None

    def call(self, inputs, states, training=False):
        h_prev, c_prev = states[0], states[1]
        if training and (self.dropout > 0 or self.recurrent_dropout > 0):
            if (self.dropout > 0 and self._input_mask is None) or (
                self.recurrent_dropout > 0 and self._recurrent_mask is None
            ):
                raise RuntimeError(
                    "LSTMCell dropout needs masks drawn once per sequence: run the cell with "
                    "i2dl_keras.layers.LSTM or i2dl_keras.layers.unroll, or call "
                    "`draw_dropout_masks` first."
                )
            if self._input_mask is not None:
                inputs = inputs * self._input_mask
            if self._recurrent_mask is not None:
                h_prev = h_prev * self._recurrent_mask
        z = keras.ops.matmul(inputs, self.kernel) + keras.ops.matmul(h_prev, self.recurrent_kernel)
        if self.bias is not None:
            z = z + self.bias
        z_i, z_f, z_g, z_o = keras.ops.split(z, 4, axis=-1)
        i = keras.ops.sigmoid(z_i)
        f = keras.ops.sigmoid(z_f)
        g = keras.ops.tanh(z_g)
        o = keras.ops.sigmoid(z_o)
        c = f * c_prev + i * g
        h = o * keras.ops.tanh(c)
        return h, [h, c]

    def get_initial_state(self, batch_size=None):
        """Returns the zero states `[h_0, C_0]`, each `(batch_size, units)`."""
        return [
            keras.ops.zeros((batch_size, self.units), dtype=self.compute_dtype),
            keras.ops.zeros((batch_size, self.units), dtype=self.compute_dtype),
        ]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "unit_forget_bias": self.unit_forget_bias,
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "recurrent_regularizer": keras.regularizers.serialize(self.recurrent_regularizer),
                "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
                "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout,
                "seed": self.seed,
            }
        )
        return config
