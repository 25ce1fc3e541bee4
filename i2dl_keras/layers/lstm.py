"""An LSTM layer: `keras.layers.RNN` driving the course's `LSTMCell`."""

import keras

from i2dl_keras.layers.lstm_cell import LSTMCell

_CELL_ARGS = (
    "units",
    "use_bias",
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "unit_forget_bias",
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "dropout",
    "recurrent_dropout",
    "seed",
)


@keras.saving.register_keras_serializable(package="i2dl_keras")
class LSTM(keras.layers.RNN):
    """Long short-term memory layer over a sequence, built from `i2dl_keras.layers.LSTMCell`.

    The layer is `keras.layers.RNN` running the course's cell (see `LSTMCell` for the gate
    equations), so it inherits the RNN machinery: masks from `Embedding(mask_zero=True)` (a
    masked step leaves `h` and `C` unchanged, so padding does not alter the final output),
    `go_backwards`, `return_sequences`, `return_state`, `stateful`, and use inside
    `keras.layers.Bidirectional`, which rebuilds the backward copy from this layer's config.
    The weights have `keras.layers.LSTM`'s layout and names, so a trained Keras LSTM's weights
    load into it and back, and with the same weights both compute the same function. Unlike
    Keras' LSTM it never dispatches to a fused cuDNN kernel: every step runs the equations.

    Args:
        units: Size of the hidden and cell states, a positive integer.
        use_bias: Whether the gates have biases. Defaults to `True`.
        kernel_initializer: Initializer for the input kernel. Defaults to `"glorot_uniform"`.
        recurrent_initializer: Initializer for the recurrent kernel. Defaults to `"orthogonal"`.
        bias_initializer: Initializer for the bias. Defaults to `"zeros"`.
        unit_forget_bias: Whether to start the forget-gate bias at 1. Defaults to `True`.
        kernel_regularizer: Optional regularizer for the input kernel. Defaults to `None`.
        recurrent_regularizer: Optional regularizer for the recurrent kernel.
            Defaults to `None`.
        bias_regularizer: Optional regularizer for the bias. Defaults to `None`.
        dropout: Fraction of the inputs to drop (one mask per sequence), in [0, 1).
            Defaults to `0.0`.
        recurrent_dropout: Fraction of the hidden state to drop (one mask per sequence), in
            [0, 1). Defaults to `0.0`.
        seed: Optional integer seed for the dropout masks. Defaults to `None`.
        return_sequences: Whether to return `h_t` for every step rather than the last one.
            Defaults to `False`.
        return_state: Whether to also return the final `h_T` and `C_T`. Defaults to `False`.
        go_backwards: Whether to read the sequence from the end and return the outputs of the
            reversed sequence. Defaults to `False`.
        stateful: Whether the final states of a batch are the initial states of the next.
            Defaults to `False`.
        unroll: Whether to unroll the time loop in the graph (short sequences only).
            Defaults to `False`.
        zero_output_for_mask: Whether masked steps output zeros (when `return_sequences`)
            instead of repeating the previous output. Defaults to `False`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        sequences: `(batch_size, timesteps, features)`.
        initial_state: Optional `[h_0, C_0]`. Defaults to zeros.
        mask: Optional boolean `(batch_size, timesteps)`; `False` steps are skipped. Usually
            set for you by `Embedding(mask_zero=True)` or `Masking`.
        training: Whether the dropout is active. Defaults to `False`.

    Input shape:
        `(batch_size, timesteps, features)`.

    Output shape:
        `(batch_size, timesteps, units)` if `return_sequences` else `(batch_size, units)`,
        followed by the states `(batch_size, units)` twice if `return_state`.

    Raises:
        ValueError: for the invalid cell arguments listed under `LSTMCell`.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((None,), dtype="int32"),
    ...     keras.layers.Embedding(1000, 16, mask_zero=True),
    ...     keras.layers.Bidirectional(i2dl_keras.layers.LSTM(8)),
    ...     keras.layers.Dense(1, activation="sigmoid"),
    ... ])
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
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        zero_output_for_mask=False,
        **kwargs,
    ):
        cell = LSTMCell(
            units,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            unit_forget_bias=unit_forget_bias,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="lstm_cell",
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            zero_output_for_mask=zero_output_for_mask,
            **kwargs,
        )
        self.input_spec = keras.layers.InputSpec(ndim=3)

    @property
    def units(self):
        return self.cell.units

    def call(self, sequences, initial_state=None, mask=None, training=False):
        cell = self.cell
        needs_masks = training and (cell.dropout > 0 or cell.recurrent_dropout > 0)
        if needs_masks:
            # Drawn outside the time loop so that every step reuses the same masks.
            cell.draw_dropout_masks(sequences[:, 0, :])
        try:
            return super().call(
                sequences, initial_state=initial_state, mask=mask, training=training
            )
        finally:
            if needs_masks:
                cell.reset_dropout_masks()

    def get_config(self):
        config = super().get_config()
        del config["cell"]
        cell_config = self.cell.get_config()
        config.update({name: cell_config[name] for name in _CELL_ARGS})
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)
