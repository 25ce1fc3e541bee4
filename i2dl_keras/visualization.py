"""i2dl_keras.visualization: what an image model's units look for.

Two views of a trained (or untrained) convolutional network: `conv_filters` shows the kernels of
a convolution layer, one panel per filter (in a first layer these are the edge and colour
detectors the course's "simple cells" resemble), and `activation_maximization` finds an input
that makes a chosen unit fire by gradient ascent on the input. Both return NumPy arrays and a
`matplotlib.figure.Figure` built with matplotlib's object API: no backend is chosen or changed
and nothing is shown; a notebook displays a returned figure inline, `figure.savefig(path)`
writes it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure

__all__ = ["activation_maximization", "conv_filters"]


def _all_layers(model: keras.Model) -> list:
    layers = []
    for layer in model.layers:
        # A nested model (a backbone, a Sequential block) counts with its layers.
        if isinstance(layer, keras.Model):
            layers.extend(_all_layers(layer))
        else:
            layers.append(layer)
    return layers


def _kernel_layer(model: keras.Model, layer_name: str | None):
    candidates = [
        layer
        for layer in _all_layers(model)
        if getattr(layer, "kernel", None) is not None and len(layer.kernel.shape) == 4
    ]
    if layer_name is None:
        if not candidates:
            raise ValueError(
                "Argument `model` must contain a built 2D convolution layer (a 4D `kernel`). "
                f"Received: model={model.name!r}"
            )
        return candidates[0]
    for layer in candidates:
        if layer.name == layer_name:
            return layer
    raise ValueError(
        f"Argument `layer_name` must name a built 2D convolution layer of the model, one of "
        f"{[layer.name for layer in candidates]}. Received: layer_name={layer_name!r}"
    )


def _min_max(array: np.ndarray) -> np.ndarray:
    low, high = float(array.min()), float(array.max())
    if high == low:
        return np.full(array.shape, 0.5, dtype="float32")
    return ((array - low) / (high - low)).astype("float32")


def _show(ax, image: np.ndarray) -> None:
    """An (h, w, c) image in [0, 1]: RGB for 3 channels, else grey (the channels' mean)."""
    if image.shape[-1] == 3:
        ax.imshow(image, interpolation="nearest")
    else:
        ax.imshow(image.mean(axis=-1), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def conv_filters(
    model: keras.Model, layer_name: str | None = None, columns: int | None = None
) -> tuple[np.ndarray, Figure]:
    """The kernels of a 2D convolution layer as images, and a figure with one panel per filter.

    Each filter `W[:, :, :, j]` of a `(F_h, F_w, C_in, C_out)` kernel is scaled to [0, 1] on
    its own (min-max; a constant filter becomes 0.5), since only its pattern, not its scale,
    is visible. A filter over 3 input channels is shown in colour (RGB), any other as the
    grey mean of its channels.

    Args:
        model: A built Keras model; nested models are searched too.
        layer_name: The convolution layer to show. Defaults to `None`: the model's first layer
            with a 4D kernel, i.e. the first convolution.
        columns: Panels per row. Defaults to `None` (`ceil(sqrt(C_out))`).

    Returns:
        `(filters, figure)`: `filters` of shape `(C_out, F_h, F_w, C_in)`, each scaled to
        [0, 1], and the figure, whose `axes` are the `C_out` panels in filter order.

    Raises:
        ValueError: if the model has no such layer or `columns` is not a positive int.

    Example:
        ```python
        filters, figure = i2dl_keras.visualization.conv_filters(model)
        figure.savefig("filters.png")
        ```
    """
    layer = _kernel_layer(model, layer_name)
    kernel = keras.ops.convert_to_numpy(layer.kernel).astype("float32")
    filters = np.stack([_min_max(kernel[..., j]) for j in range(kernel.shape[-1])])
    count = len(filters)
    if columns is None:
        columns = math.ceil(math.sqrt(count))
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise ValueError(
            f"Argument `columns` must be a positive int. Received: columns={columns!r}"
        )
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(1.2 * columns, 1.2 * rows + 0.4))
    for j, image in enumerate(filters):
        ax = figure.add_subplot(rows, columns, j + 1)
        _show(ax, image)
        ax.set_title(str(j), fontsize=7)
    figure.suptitle(f"{layer.name}: {count} filters {kernel.shape[0]}x{kernel.shape[1]}")
    return filters, figure


def activation_maximization(
    model: keras.Model,
    layer_name: str,
    unit: int,
    steps: int = 100,
    learning_rate: float = 0.05,
    value_range: Sequence[float] = (0.0, 1.0),
    input_shape: Sequence[int] | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, Figure]:
    """Finds an input that maximises one unit by gradient ascent on the input.

    The weights stay fixed; the input `x` is the variable. The objective is the unit's mean
    activation `a(x)`: for a convolution or any layer with spatial axes, channel `unit`
    averaged over the positions; for a dense layer, unit `unit`. Starting from mid-range
    noise, each step moves `x` along the normalised gradient,
    `x <- clip(x + learning_rate * (high - low) * g / rms(g), low, high)` with
    `g = d a / d x`, so a step changes the input by `learning_rate` of its range (in root mean
    square) whatever the gradient's scale, and the input stays a valid image. The model runs
    in inference mode (`training=False`).

    Args:
        model: A built functional or Sequential Keras model with one image input.
        layer_name: Name of the top-level layer whose unit is maximised.
        unit: Index of the channel (or dense unit), an int in `[0, units)`.
        steps: Gradient ascent steps. Defaults to `100`.
        learning_rate: Step size as a fraction of the value range. Defaults to `0.05`.
        value_range: `(low, high)`, the range of valid input values (e.g. `(0, 255)` for a
            model that takes raw pixels). Defaults to `(0.0, 1.0)`.
        input_shape: The input's shape without the batch axis. Defaults to `None` (the
            model's, which must then be fully known).
        seed: Seed of the NumPy generator that draws the starting noise. Defaults to `0`.

    Returns:
        `(image, activations, figure)`: the maximising input of shape `input_shape`, the
        unit's activation before the first and after every step (`steps + 1` values), and a
        figure with the input (scaled from `value_range` to [0, 1]) and the activation curve.

    Raises:
        ValueError: if the model has not exactly one input, the layer is not found, `unit` is
            out of range, the input shape is unknown, or `steps`, `learning_rate`,
            `value_range` or `seed` is invalid.

    Example:
        ```python
        image, activations, figure = i2dl_keras.visualization.activation_maximization(
            model, layer_name="conv2", unit=5, value_range=(0, 255)
        )
        ```
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"Argument `steps` must be a positive int. Received: steps={steps!r}")
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)):
        learning_rate = float("nan")
    if not math.isfinite(learning_rate) or learning_rate <= 0:
        raise ValueError(
            "Argument `learning_rate` must be a finite float > 0. "
            f"Received: learning_rate={learning_rate!r}"
        )
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        low, high = math.nan, math.nan
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(
            "Argument `value_range` must be a pair (low, high) of finite numbers with "
            f"low < high. Received: value_range={value_range!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"Argument `seed` must be an int >= 0. Received: seed={seed!r}")
    try:
        layer = model.get_layer(layer_name)
    except ValueError:
        layer = None
    if layer is None:
        raise ValueError(
            f"Argument `layer_name` must name a layer of the model, one of "
            f"{[layer.name for layer in model.layers]}. Received: layer_name={layer_name!r}"
        )
    units = layer.output.shape[-1]
    if isinstance(unit, bool) or not isinstance(unit, int) or not 0 <= unit < units:
        raise ValueError(
            f"Argument `unit` must be an int in [0, {units}) for layer {layer_name!r}. "
            f"Received: unit={unit!r}"
        )
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1:
        raise ValueError(
            "Argument `model` must be a built functional or Sequential model with one input. "
            f"Received: model={model.name!r} with {len(inputs)} inputs"
        )
    if input_shape is None:
        input_shape = tuple(inputs[0].shape[1:])
    input_shape = tuple(input_shape)
    if not input_shape or any(not isinstance(d, int) or d < 1 for d in input_shape):
        raise ValueError(
            "Argument `input_shape` must be given as positive ints when the model's input "
            f"shape is not fully known. Received: input_shape={input_shape!r}"
        )

    features = keras.Model(inputs[0], layer.output)

    def objective(x: tf.Tensor) -> tf.Tensor:
        outputs = features(x, training=False)
        return tf.reduce_mean(tf.cast(outputs[..., unit], "float32"))

    step_size = learning_rate * (high - low)

    @tf.function
    def ascend(x: tf.Variable) -> tf.Tensor:
        with tf.GradientTape() as tape:
            value = objective(x)
        grad = tape.gradient(value, x)
        grad = grad / (tf.sqrt(tf.reduce_mean(tf.square(grad))) + 1e-12)
        x.assign(tf.clip_by_value(x + step_size * grad, low, high))
        return objective(x)

    rng = np.random.default_rng(seed)
    middle, spread = (low + high) / 2.0, 0.1 * (high - low)
    start = middle + spread * rng.uniform(-1.0, 1.0, size=(1, *input_shape))
    x = tf.Variable(start.astype("float32"))
    history = [float(objective(x))]
    for _ in range(steps):
        history.append(float(ascend(x)))
    image = x.numpy()[0]
    activations = np.asarray(history, dtype="float64")

    figure = Figure(figsize=(7.0, 3.2))
    image_ax, curve_ax = figure.subplots(1, 2)
    shown = (image - low) / (high - low)
    if shown.ndim == 1:  # a vector input: one row of pixels
        shown = shown[None, :]
    _show(image_ax, shown if shown.ndim == 3 else shown[..., None])
    image_ax.set_title(f"{layer_name}, unit {unit}")
    curve_ax.plot(np.arange(steps + 1), activations)
    curve_ax.set_xlabel("step")
    curve_ax.set_ylabel("mean activation")
    curve_ax.grid(alpha=0.3)
    figure.tight_layout()
    return image, activations, figure
