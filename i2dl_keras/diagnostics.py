"""i2dl_keras.diagnostics: how signals and gradients flow through a network, measured on a batch.

The course's vanishing-gradient problems, made visible. In a vanilla RNN "the influence of a
given input ... decays or blows up exponentially as it cycles around the network's recurrent
connections": `hidden_state_gradient_norms` measures `||dL/dh_t||` at every time step. In a
deep stack, sigmoid units (`sigma' <= 1/4`) or too small weights shrink the gradient layer by
layer: `layer_gradient_norms` measures `||dL/dtheta||` per layer, and `activation_statistics`
the mean and standard deviation of every layer's activations and of the gradients arriving at
them (the course's "Weight Initialization": zeros, small and big Gaussian weights, Xavier).
`plot_gradient_norms` and `plot_activation_statistics` draw the results with matplotlib's
object API (`matplotlib.figure.Figure`): no backend is chosen and nothing is shown.

Gradients come from `tf.GradientTape`, so these functions need Keras' TensorFlow backend.
Models run in inference mode (`training=False`: no dropout, BatchNormalization uses its moving
statistics) and no weights change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "activation_statistics",
    "hidden_state_gradient_norms",
    "layer_gradient_norms",
    "plot_activation_statistics",
    "plot_gradient_norms",
]


def _require_tensorflow() -> None:
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            "i2dl_keras.diagnostics computes gradients with tf.GradientTape and needs Keras' "
            f"TensorFlow backend (KERAS_BACKEND=tensorflow). Received: "
            f"backend={keras.backend.backend()!r}"
        )


def _norm(grad: Any) -> float:
    return 0.0 if grad is None else float(tf.norm(tf.cast(grad, tf.float64)))


def _watch(tape: tf.GradientTape, tensors: Any) -> None:
    """Watches the floating tensors of a structure (the tape ignores others)."""
    for tensor in tf.nest.flatten(tensors):
        if tf.is_tensor(tensor) and tensor.dtype.is_floating:
            tape.watch(tensor)


def _loss_function(model: keras.Model, loss: Any) -> Callable[[Any, Any], Any]:
    if loss is None:
        loss = getattr(model, "loss", None)
        if loss is None:
            raise ValueError(
                "Argument `loss` is needed when the model was not compiled with a loss, e.g. "
                "loss='mse' or a keras.losses.Loss. Received: loss=None"
            )
    function = keras.losses.get(loss) if isinstance(loss, (str, dict)) else loss
    if not callable(function):
        raise ValueError(
            "Argument `loss` must be a Keras loss (name, object or function). "
            f"Received: loss={loss!r}"
        )

    def batch_loss(y_true, y_pred):
        return tf.reduce_mean(function(y_true, y_pred))

    return batch_loss


def hidden_state_gradient_norms(
    rnn: Any,
    inputs: Any,
    loss_fn: Callable[[Any], Any] | None = None,
    initial_state: Any = None,
) -> np.ndarray:
    """Norm of the gradient of a loss with respect to the hidden state at every time step.

    The recurrent cell runs over `inputs` step by step, `(h_t, s_t) = cell(x_t, s_{t-1})`, as
    `i2dl_keras.layers.unroll` does, and `dL/dh_t` is the total derivative: through the loss
    directly and through every later step. For a loss on the last step only, the chain rule
    gives `dL/dh_t = (dh_T/dh_{T-1}) ... (dh_{t+1}/dh_t) dL/dh_T`, one Jacobian per step. In a
    vanilla RNN each is `diag(tanh') U^T`, so the norm falls geometrically towards the first
    step (the course's vanishing gradient: recent inputs have far more influence). An LSTM's
    cell state `C_t = f_t * C_{t-1} + i_t * g_t` passes the gradient back multiplied by the
    forget gate only, so while the forget gate stays open (`f` near 1) the norm does not fall.
    Note that a fresh Keras LSTM's forget gates sit near `sigmoid(1) = 0.73`, which forgets too.

    `h_t` is the cell's output at step t, which the cells of Keras and of
    `i2dl_keras.layers` (SimpleRNN, LSTM, GRU) also pass on as their first state.

    Args:
        rnn: A recurrent layer with a `cell` (e.g. `keras.layers.SimpleRNN`,
            `keras.layers.LSTM`, `i2dl_keras.layers.LSTM`) or a cell. The sequence is read
            forwards, without masking and with dropout off.
        inputs: A batch of sequences `(batch_size, timesteps, features)` with a known number
            of steps.
        loss_fn: Maps the hidden states stacked to `(batch_size, timesteps, units)` to a
            scalar loss, e.g. a head and a loss on the last step. Defaults to `None`, meaning
            the batch mean of the sum of the last hidden state, `mean_b sum_j h_T[b, j]`.
        initial_state: The states before the first step. Defaults to `None` (the cell's
            zeros).

    Returns:
        A float64 array of `timesteps` norms; entry `t` is the Frobenius norm of `dL/dh_t`
        over the batch and the units, and 0 where the loss does not depend on `h_t`.

    Raises:
        ValueError: if `rnn` is neither a recurrent layer nor a cell, reads backwards,
            `inputs` is not a 3D batch with a known number of steps, or `loss_fn` does not
            return a scalar.
        RuntimeError: if Keras does not run on TensorFlow.

    Example:
        ```python
        x = np.random.default_rng(0).normal(size=(4, 50, 8)).astype("float32")
        rnn = keras.layers.SimpleRNN(16)
        norms = i2dl_keras.diagnostics.hidden_state_gradient_norms(rnn, x)
        norms[0] / norms[-1]  # orders of magnitude below 1
        ```
    """
    _require_tensorflow()
    cell = getattr(rnn, "cell", rnn)
    if not hasattr(cell, "state_size") or not callable(cell):
        raise ValueError(
            "Argument `rnn` must be a recurrent layer with a `cell` (SimpleRNN, LSTM, GRU, "
            f"keras.layers.RNN) or a recurrent cell. Received: rnn={rnn!r}"
        )
    if getattr(rnn, "go_backwards", False):
        raise ValueError(
            "Argument `rnn` must read its sequence forwards; reverse `inputs` instead. "
            f"Received: rnn.go_backwards={rnn.go_backwards}"
        )
    x = tf.convert_to_tensor(inputs, dtype=getattr(cell, "compute_dtype", None) or "float32")
    if x.shape.rank != 3 or x.shape[1] is None or x.shape[1] < 1:
        raise ValueError(
            "Argument `inputs` must be a 3D batch (batch_size, timesteps, features) with a "
            f"known, positive number of steps. Received: inputs.shape={tuple(x.shape)}"
        )
    if loss_fn is None:

        def loss_fn(hidden):
            return tf.reduce_mean(tf.reduce_sum(hidden[:, -1], axis=-1))

    with tf.GradientTape() as tape:
        if initial_state is not None:
            states = initial_state
        elif hasattr(cell, "get_initial_state"):
            states = cell.get_initial_state(batch_size=tf.shape(x)[0])
        else:
            sizes = (
                cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
            )
            states = [tf.zeros((tf.shape(x)[0], size), x.dtype) for size in sizes]
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        hidden = []
        for t in range(x.shape[1]):
            output, states = cell(x[:, t], states, training=False)
            states = list(states) if isinstance(states, (list, tuple)) else [states]
            # Watched as it is made: the tape traces dL/dh_t also for a frozen cell.
            tape.watch(output)
            hidden.append(output)
        loss = loss_fn(tf.stack(hidden, axis=1))
        loss = tf.convert_to_tensor(loss)
        if loss.shape.rank != 0:
            raise ValueError(
                "Argument `loss_fn` must return a scalar loss. "
                f"Received: a loss of shape {tuple(loss.shape)}"
            )
    grads = tape.gradient(loss, hidden)
    return np.array([_norm(g) for g in grads], dtype=np.float64)


def _check_model(model: Any) -> list[keras.layers.Layer]:
    if not isinstance(model, keras.Model):
        raise ValueError(f"Argument `model` must be a Keras model. Received: model={model!r}")
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def layer_gradient_norms(model: keras.Model, x: Any, y: Any, loss: Any = None) -> dict[str, float]:
    """Norm of the gradient of the loss with respect to each layer's trainable weights.

    Backpropagation multiplies the gradient by one Jacobian per layer on its way to the input;
    in a deep stack of sigmoid units (`sigma' <= 1/4`) or with small weights the product
    shrinks, and the first layers receive gradients orders of magnitude smaller than the last:
    they barely learn. This returns `||dL/dtheta_l||` (all of layer `l`'s trainable
    weights together, e.g. kernel and bias) for the batch `(x, y)`, in the order of
    `model.layers`, without changing any weight.

    Args:
        model: A Keras model (a layer that holds layers, e.g. a nested model, counts as one).
        x: A batch of inputs.
        y: Their targets.
        loss: The loss, a Keras loss name, object or function `(y_true, y_pred)`; a per-sample
            result is averaged. Defaults to `None`, meaning the loss the model was compiled
            with.

    Returns:
        A dict from layer name to the gradient norm (a float), for the layers that have
        trainable weights.

    Raises:
        ValueError: if `model` is not a Keras model, or no loss is given or compiled.
        RuntimeError: if Keras does not run on TensorFlow.

    Example:
        ```python
        norms = i2dl_keras.diagnostics.layer_gradient_norms(model, x, y, loss="mse")
        fig = i2dl_keras.diagnostics.plot_gradient_norms(
            list(norms.values()), xlabel="layer", ticklabels=list(norms)
        )
        ```
    """
    _require_tensorflow()
    layers = [layer for layer in _check_model(model) if layer.trainable_weights]
    batch_loss = _loss_function(model, loss)
    weights = [w for layer in layers for w in layer.trainable_weights]
    with tf.GradientTape() as tape:
        value = batch_loss(y, model(x, training=False))
    grads = iter(tape.gradient(value, weights))
    norms = {}
    for layer in layers:
        squares = [_norm(next(grads)) ** 2 for _ in layer.trainable_weights]
        norms[layer.name] = float(np.sqrt(sum(squares)))
    return norms


def activation_statistics(
    model: keras.Model, x: Any, y: Any, loss: Any = None
) -> dict[str, dict[str, float]]:
    """Mean and standard deviation of every layer's activations, and of their gradients.

    Course notes, "Weight Initialization": with small random weights the activations shrink
    towards 0 from layer to layer and so do the gradients arriving at them; with big ones tanh
    units saturate at -1 and +1 (standard deviation near 1), where `tanh' = 1 - a^2` is nearly 0;
    Xavier initialization keeps the spread in between. For the batch `(x, y)` this returns, per
    layer, the mean and the standard deviation over all entries (batch and units) of the
    layer's output `a_l` and of `dL/da_l`, the gradient of the batch-mean loss arriving at it
    (so it scales with `1 / batch_size`).

    Args:
        model: A Sequential model, or a built functional model with one output. Each
            layer's single output is measured; nested models count as one layer. A Sequential
            model runs layer by layer, so every layer gets its gradient. In a functional model
            the gradient reaches a layer's output when it depends on a floating input or a
            trainable weight through differentiable operations.
        x: A batch of inputs.
        y: Their targets.
        loss: As in `layer_gradient_norms`. Defaults to `None` (the compiled loss).

    Returns:
        A dict from layer name, in the order of `model.layers`, to a dict with the floats
        `"activation_mean"`, `"activation_std"`, `"gradient_mean"` and `"gradient_std"`
        (the gradient ones are `nan` for a layer no gradient reaches, e.g. one behind a
        `keras.ops.stop_gradient`).

    Raises:
        ValueError: if `model` is neither a Sequential nor a built functional model with one
            output, a functional model's layer has several outputs, or no loss is given or
            compiled.
        RuntimeError: if Keras does not run on TensorFlow.

    Example:
        ```python
        stats = i2dl_keras.diagnostics.activation_statistics(model, x, y, loss="mse")
        [s["activation_std"] for s in stats.values()]  # e.g. shrinking with small weights
        fig = i2dl_keras.diagnostics.plot_activation_statistics(stats)
        ```
    """
    _require_tensorflow()
    layers = _check_model(model)
    batch_loss = _loss_function(model, loss)
    if isinstance(model, keras.Sequential):
        # Layer by layer, each output watched as it is made, so the tape traces every layer's
        # gradient, also behind layers without weights or a stop_gradient.
        with tf.GradientTape() as tape:
            h = x
            activations = []
            for layer in layers:
                h = layer(h, training=False)
                _watch(tape, h)
                activations.append(h)
            value = batch_loss(y, h)
    else:
        try:
            inputs, outputs = model.inputs, model.outputs
        except (AttributeError, ValueError):
            inputs = outputs = None
        if not inputs or not outputs or len(outputs) != 1:
            raise ValueError(
                "Argument `model` must be a Sequential model, or a built functional model with "
                f"one output. Received: model={model.name!r}"
            )
        layer_outputs = []
        for layer in layers:
            try:
                layer_outputs.append(layer.output)
            except (AttributeError, ValueError):
                raise ValueError(
                    "Argument `model` must hold layers with one output each (no shared "
                    f"layers). Received: layer {layer.name!r}"
                ) from None
        # A single input is passed as a tensor, not a list, as the model itself is called.
        probe = keras.Model(inputs[0] if len(inputs) == 1 else inputs, [*layer_outputs, outputs[0]])
        x = tf.nest.map_structure(tf.convert_to_tensor, x)
        with tf.GradientTape() as tape:
            _watch(tape, x)
            *activations, prediction = probe(x, training=False)
            value = batch_loss(y, prediction)
    grads = tape.gradient(value, activations)
    stats = {}
    for layer, a, g in zip(layers, activations, grads):
        a = np.asarray(a, dtype=np.float64)
        g = None if g is None else np.asarray(g, dtype=np.float64)
        stats[layer.name] = {
            "activation_mean": float(a.mean()),
            "activation_std": float(a.std()),
            "gradient_mean": float("nan") if g is None else float(g.mean()),
            "gradient_std": float("nan") if g is None else float(g.std()),
        }
    return stats


def _new_axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=size).add_subplot()


def plot_gradient_norms(
    norms: Sequence[float] | Mapping[str, Sequence[float]],
    xlabel: str = "time step",
    ticklabels: Sequence[str] | None = None,
    title: str = "",
    ax: Axes | None = None,
) -> Figure:
    """Gradient norms on a logarithmic axis, one curve per network.

    Args:
        norms: One sequence of norms (e.g. from `hidden_state_gradient_norms`), or a mapping
            from a label to such a sequence to compare networks on one axes, e.g.
            `{"SimpleRNN": ..., "LSTM": ...}`.
        xlabel: The x-axis label. Defaults to `"time step"`.
        ticklabels: Names for the x positions, e.g. the layer names of
            `layer_gradient_norms`. Defaults to `None` (positions 1, 2, ...).
        title: The axes title. Defaults to `""`.
        ax: The matplotlib axes to draw into. Defaults to `None` (a new `Figure`).

    Returns:
        The figure holding the plot.

    Raises:
        ValueError: if there is no curve, a curve is empty, or `ticklabels` does not have one
            label per position.

    Example:
        ```python
        fig = i2dl_keras.diagnostics.plot_gradient_norms({"SimpleRNN": rnn, "LSTM": lstm})
        fig.savefig("gradient_flow.png")
        ```
    """
    curves = dict(norms) if isinstance(norms, Mapping) else {"": norms}
    curves = {
        label: np.asarray(values, dtype=np.float64).ravel() for label, values in curves.items()
    }
    if not curves or any(values.size == 0 for values in curves.values()):
        raise ValueError(
            f"Argument `norms` must hold at least one non-empty curve. Received: norms={norms!r}"
        )
    length = max(values.size for values in curves.values())
    if ticklabels is not None and len(ticklabels) != length:
        raise ValueError(
            f"Argument `ticklabels` must have one label per position ({length}). "
            f"Received: ticklabels={ticklabels!r}"
        )
    ax = _new_axes(ax, (6.0, 3.5))
    for label, values in curves.items():
        positions = np.arange(1, values.size + 1)
        ax.plot(positions, values, marker="o", markersize=3, label=label or None)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("gradient norm")
    if ticklabels is not None:
        ax.set_xticks(np.arange(1, length + 1), list(ticklabels), rotation=45, ha="right")
    if any(curves):
        ax.legend()
    ax.grid(alpha=0.3, which="both")
    ax.set_title(title)
    ax.figure.tight_layout()
    return ax.figure


def plot_activation_statistics(stats: Mapping[str, Mapping[str, float]], title: str = "") -> Figure:
    """Two panels: each layer's activation and gradient mean, with a bar of +- one std.

    Args:
        stats: The result of `activation_statistics`.
        title: The figure title. Defaults to `""`.

    Returns:
        A new `matplotlib.figure.Figure`.

    Raises:
        ValueError: if `stats` is empty or an entry misses one of the four statistics.

    Example:
        ```python
        stats = i2dl_keras.diagnostics.activation_statistics(model, x, y, loss="mse")
        i2dl_keras.diagnostics.plot_activation_statistics(stats).savefig("activations.png")
        ```
    """
    keys = ("activation_mean", "activation_std", "gradient_mean", "gradient_std")
    if not stats or any(not isinstance(s, Mapping) or set(keys) - set(s) for s in stats.values()):
        raise ValueError(
            f"Argument `stats` must map layer names to dicts with {keys}, as "
            f"activation_statistics returns. Received: stats={stats!r}"
        )
    from matplotlib.figure import Figure

    names = list(stats)
    positions = np.arange(1, len(names) + 1)
    fig = Figure(figsize=(max(6.0, 0.8 * len(names) + 2), 3.8))
    axes = fig.subplots(1, 2)
    for ax, kind in zip(axes, ("activation", "gradient")):
        means = [stats[n][f"{kind}_mean"] for n in names]
        stds = [stats[n][f"{kind}_std"] for n in names]
        ax.errorbar(positions, means, yerr=stds, fmt="o", capsize=4)
        ax.axhline(0.0, color="0.6", linewidth=0.8)
        ax.set_xticks(positions, names, rotation=45, ha="right")
        ax.set_ylabel(f"{kind} mean +- std")
        ax.set_title("activations" if kind == "activation" else "gradients dL/da")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
