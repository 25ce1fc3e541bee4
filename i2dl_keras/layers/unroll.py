"""Unrolling: apply a recurrent cell step by step in a Python loop."""

from __future__ import annotations

from typing import Any

import keras


def unroll(
    cell: Any,
    inputs: Any,
    initial_state: Any = None,
    training: bool = False,
    return_state: bool = False,
) -> Any:
    """Applies a recurrent cell to every time step in turn and stacks the outputs.

    This is the course's "unrolling" (unfolding): the recurrent graph becomes a chain of copies
    of the same cell, one per time step, all sharing the same parameters,

        `(y_t, s_t) = cell(x_t, s_{t-1})` for `t = 1..T`.

    It is written as a plain Python loop, so it is easy to read and to step through, and it
    computes what `keras.layers.RNN(cell, return_sequences=True)` computes without a mask.
    The loop is traced once per step, so keep `T` small; use `keras.layers.RNN` in models.

    Args:
        cell: A recurrent cell: a layer whose `call(inputs, states)` returns
            `(output, new_states)` and that has `state_size`, e.g.
            `i2dl_keras.layers.SimpleRNNCell`, `i2dl_keras.layers.LSTMCell` or a Keras cell.
        inputs: Sequence `(batch_size, timesteps, features)` with a known `timesteps`.
        initial_state: The states before the first step (a tensor or a list of them).
            Defaults to `None`, meaning the cell's `get_initial_state` (zeros).
        training: Passed to the cell (it switches dropout on). Cells with
            `draw_dropout_masks` get one mask for the whole sequence. Defaults to `False`.
        return_state: Whether to also return the final states. Defaults to `False`.

    Returns:
        The outputs of every step stacked on axis 1, `(batch_size, timesteps, output_size)`;
        with `return_state`, the pair `(outputs, final_states)` where `final_states` is a list.

    Raises:
        ValueError: if `inputs` is not 3D or its number of time steps is unknown or zero.

    Example:

    >>> cell = i2dl_keras.layers.SimpleRNNCell(4)
    >>> outputs = i2dl_keras.layers.unroll(cell, np.ones((2, 5, 3), "float32"))
    >>> tuple(outputs.shape)
    (2, 5, 4)
    """
    inputs = keras.ops.convert_to_tensor(inputs)
    if len(inputs.shape) != 3 or inputs.shape[1] is None or inputs.shape[1] < 1:
        raise ValueError(
            "`inputs` must be a 3D sequence (batch, timesteps, features) with a known, "
            f"positive number of time steps. Received: inputs.shape={inputs.shape}"
        )
    batch_size = keras.ops.shape(inputs)[0]
    if initial_state is None:
        if hasattr(cell, "get_initial_state"):
            states = cell.get_initial_state(batch_size=batch_size)
        else:
            sizes = (
                cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
            )
            states = [keras.ops.zeros((batch_size, size), dtype=inputs.dtype) for size in sizes]
    else:
        states = initial_state
    states = list(states) if isinstance(states, (list, tuple)) else [states]

    call_kwargs = {"training": training} if isinstance(cell, keras.layers.Layer) else {}
    draws_masks = training and hasattr(cell, "draw_dropout_masks")
    if draws_masks:
        cell.draw_dropout_masks(inputs[:, 0, :])
    outputs = []
    try:
        for t in range(inputs.shape[1]):
            output, states = cell(inputs[:, t, :], states, **call_kwargs)
            states = list(states) if isinstance(states, (list, tuple)) else [states]
            outputs.append(output)
    finally:
        if draws_masks:
            cell.reset_dropout_masks()
        # Keras' own cells cache their dropout masks on the first step; forget them too.
        for reset in ("reset_dropout_mask", "reset_recurrent_dropout_mask"):
            if hasattr(cell, reset):
                getattr(cell, reset)()
    stacked = keras.ops.stack(outputs, axis=1)
    return (stacked, states) if return_state else stacked
