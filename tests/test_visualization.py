"""Feature visualization: filter panels and activation maximization on tiny CNNs."""

import re

import keras
import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from i2dl_keras.visualization import activation_maximization, conv_filters


def small_cnn(channels=3):
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((12, 12, channels)),
            keras.layers.Conv2D(6, 3, activation="relu", name="c1"),
            keras.layers.MaxPooling2D(2),
            keras.Sequential([keras.layers.Conv2D(8, 3, activation="relu", name="c2")]),
            keras.layers.Flatten(),
            keras.layers.Dense(5, name="out"),
        ]
    )


def test_conv_filters_one_panel_per_filter():
    model = small_cnn()
    kernel = np.arange(3 * 3 * 3 * 6, dtype="float32").reshape(3, 3, 3, 6) % 7.0
    kernel[..., 5] = 2.0  # a constant filter
    model.get_layer("c1").kernel.assign(kernel)
    filters, figure = conv_filters(model)
    assert isinstance(figure, Figure) and filters.shape == (6, 3, 3, 3)
    assert len(figure.axes) == 6
    for j, ax in enumerate(figure.axes):
        # Each filter min-max scaled on its own, shown in colour (3 input channels).
        w = kernel[..., j]
        expected = (
            (w - w.min()) / (w.max() - w.min()) if w.max() > w.min() else np.full_like(w, 0.5)
        )
        np.testing.assert_allclose(filters[j], expected, atol=1e-6, rtol=0)
        np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), expected, atol=1e-6)
        assert ax.get_title() == str(j)
    # By hand for filter 0: entry [0, 0, c] is (c * 6) % 7 = 0, 6, 5 of a range 0..6.
    np.testing.assert_allclose(filters[0, 0, 0], [0, 1, 5 / 6], atol=1e-6)

    # A named layer inside a nested model; 6 input channels are shown as their grey mean.
    filters, figure = conv_filters(model, layer_name="c2", columns=3)
    assert filters.shape == (8, 3, 3, 6) and len(figure.axes) == 8
    np.testing.assert_allclose(
        np.asarray(figure.axes[4].images[0].get_array()), filters[4].mean(axis=-1), atol=1e-6
    )
    assert figure.axes[3].get_subplotspec().rowspan.start == 1  # three panels per row


def test_activation_maximization_reaches_the_linear_optimum():
    # A linear conv unit's mean activation is sum_p g_p x_p + b, with g_p the summed kernel
    # weights of the windows covering pixel p over the 36 positions. On [0, 1] it peaks at
    # x_p = 1 where g_p > 0 and 0 elsewhere, at sum(max(g, 0)) + b.
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, name="conv")])
    kernel, bias = model.layers[0].get_weights()
    g = np.zeros((8, 8))
    for i, j in np.ndindex(6, 6):
        g[i : i + 3, j : j + 3] += kernel[:, :, 0, 2]
    g /= 36
    optimum = np.maximum(g, 0).sum() + bias[2]
    image, activations, figure = activation_maximization(model, "conv", unit=2, steps=150)
    assert image.shape == (8, 8, 1) and activations.shape == (151,)
    assert isinstance(figure, Figure)
    np.testing.assert_array_equal(image[..., 0] > 0.5, g > 0)
    assert activations[-1] == pytest.approx(optimum, rel=5e-3)
    assert image.min() >= 0.0 and image.max() <= 1.0  # kept in the value range
    # The reported activation is the model's on the returned image.
    assert float(np.mean(model(image[None])[..., 2])) == pytest.approx(activations[-1], rel=1e-5)


@pytest.mark.parametrize("layer_name, unit", [("c1", 4), ("out", 1)])
def test_activation_maximization_beats_random_inputs(layer_name, unit):
    model = small_cnn()
    image, activations, _ = activation_maximization(model, layer_name, unit, steps=60)
    features = keras.Model(model.inputs[0], model.get_layer(layer_name).output)
    random = np.random.default_rng(1).uniform(0, 1, size=(50, 12, 12, 3)).astype("float32")
    random_values = keras.ops.convert_to_numpy(features(random))[..., unit]
    random_values = random_values.reshape(50, -1).mean(axis=1)
    spread = random_values.max() - random_values.min()
    # Well above the best of 50 random inputs, by several times their spread.
    assert activations[-1] > random_values.max() + 3 * spread
    assert activations[-1] > activations[0]


def test_value_range_and_no_global_state():
    model = small_cnn()
    backend = matplotlib.get_backend()
    state = np.random.get_state()[1].copy()
    image, _, _ = activation_maximization(model, "c1", 0, steps=5, value_range=(0, 255), seed=3)
    assert image.min() >= 0 and image.max() <= 255 and image.max() > 1
    again, _, _ = activation_maximization(model, "c1", 0, steps=5, value_range=(0, 255), seed=3)
    np.testing.assert_array_equal(image, again)  # seeded
    assert matplotlib.get_backend() == backend
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_bad_arguments():
    model = small_cnn()
    for kwargs, received in [
        ({"layer_name": "nope", "unit": 0}, "layer_name='nope'"),
        ({"layer_name": "c1", "unit": 6}, "unit=6"),
        ({"layer_name": "c1", "unit": 0, "steps": 0}, "steps=0"),
        ({"layer_name": "c1", "unit": 0, "learning_rate": -0.1}, "learning_rate=-0.1"),
        ({"layer_name": "c1", "unit": 0, "value_range": (1, 0)}, "value_range=(1, 0)"),
        ({"layer_name": "c1", "unit": 0, "seed": -1}, "seed=-1"),
    ]:
        with pytest.raises(ValueError, match=re.escape(f"Received: {received}")):
            activation_maximization(model, **kwargs)
    open_model = keras.Sequential(
        [keras.Input((None, None, 1)), keras.layers.Conv2D(2, 3, name="c")]
    )
    with pytest.raises(ValueError, match=re.escape("Received: input_shape=(None, None, 1)")):
        activation_maximization(open_model, "c", 0)
    image, _, _ = activation_maximization(open_model, "c", 1, steps=2, input_shape=(6, 6, 1))
    assert image.shape == (6, 6, 1)
    with pytest.raises(ValueError, match=re.escape("Received: layer_name='out'")):
        conv_filters(model, layer_name="out")  # a dense layer has no 4D kernel
    with pytest.raises(ValueError, match=re.escape("Received: columns=0")):
        conv_filters(model, columns=0)
    dense_only = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="2D convolution.*Received: model="):
        conv_filters(dense_only)
