"""The course's vanilla RNN cell: h_t = tanh(x_t W + h_{t-1} U + b)."""

import keras

from i2dl_keras.layers import _checks


@keras.saving.register_keras_serializable(package="i2dl_keras")
class SimpleRNNCell(keras.layers.Layer):
    """One step of a vanilla (Elman) recurrent network.

    `h_t = activation(x_t W + h_{t-1} U + b)`, the same parameters at every time step (the
    course: "hidden state is always the same, same parameters for each time step"). Run it over
    a sequence with `keras.layers.RNN(cell)` or, step by step in a Python loop, with
    `i2dl_keras.layers.unroll`. The weights are laid out as in `keras.layers.SimpleRNNCell`:
    `kernel` `(input_dim, units)`, `recurrent_kernel` `(units, units)`, `bias` `(units,)`, so
    `get_weights` / `set_weights` move weights between the two.

    Args:
        units: Size of the hidden state, a positive integer.
        activation: Activation applied to the pre-activation. Defaults to `"tanh"`.
        use_bias: Whether to add the bias `b`. Defaults to `True`.
        kernel_initializer: Initializer for `W`. Defaults to `"glorot_uniform"`.
        recurrent_initializer: Initializer for `U`. Defaults to `"orthogonal"`.
        bias_initializer: Initializer for `b`. Defaults to `"zeros"`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: The step's input, `(batch_size, input_dim)`.
        states: A list holding the previous hidden state `(batch_size, units)`.

    Returns:
        `(h_t, [h_t])`: the step's output and the new state list.

    Raises:
        ValueError: if `units` is not a positive integer.

    Example:

    >>> cell = i2dl_keras.layers.SimpleRNNCell(8)
    >>> rnn = keras.layers.RNN(cell, return_sequences=True)
    >>> tuple(rnn(np.ones((2, 5, 3), "float32")).shape)
    (2, 5, 8)
    """

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = _checks.positive_int("units", units)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.state_size = self.units
        self.output_size = self.units

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units),
            name="kernel",
            initializer=self.kernel_initializer,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.units,), name="bias", initializer=self.bias_initializer
            )
        else:
            self.bias = None

    def call(self, inputs, states):
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        z = keras.ops.matmul(inputs, self.kernel) + keras.ops.matmul(h_prev, self.recurrent_kernel)
        if self.bias is not None:
            z = z + self.bias
        h = self.activation(z) if self.activation is not None else z
        return h, [h]

    def get_initial_state(self, batch_size=None):
        """Returns the zero state `[zeros((batch_size, units))]`."""
        return [keras.ops.zeros((batch_size, self.units), dtype=self.compute_dtype)]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
