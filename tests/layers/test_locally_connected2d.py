"""LocallyConnected2D: a convolution when its weights are tied, unshared otherwise."""

import os
import tempfile

import keras
import numpy as np
import pytest

import i2dl_keras
from i2dl_keras.initializers.sobel import Sobel
from i2dl_keras.layers.locally_connected2d import LocallyConnected2D
from i2dl_keras.layers.max_pooling2d import MaxPooling2D
from i2dl_keras.layers.max_unpooling2d import MaxUnpooling2D
from i2dl_keras.testing import run_layer_test, run_model_saving_test, run_serialization_test
from i2dl_keras.utils import conv_output_size, conv_params


def _np_locally_connected(x, kernel, bias, kernel_size, strides):
    """Brute force over positions, "valid" padding; kernel (positions, k_h * k_w * c, f)."""
    (k_h, k_w), (s_h, s_w) = kernel_size, strides
    out_h = (x.shape[1] - k_h) // s_h + 1
    out_w = (x.shape[2] - k_w) // s_w + 1
    out = np.zeros((x.shape[0], out_h, out_w, kernel.shape[-1]))
    for i, j in np.ndindex(out_h, out_w):
        window = x[:, i * s_h : i * s_h + k_h, j * s_w : j * s_w + k_w, :].reshape(len(x), -1)
        out[:, i, j] = window @ kernel[i * out_w + j] + bias[i, j]
    return out


def test_config():
    layer = LocallyConnected2D(
        4, (3, 2), strides=2, padding="same", activation="relu", kernel_regularizer="l2"
    )
    config = run_serialization_test(layer).get_config()
    assert config["kernel_size"] == [3, 2] and config["strides"] == [2, 2]
    assert config["padding"] == "same" and config["filters"] == 4


def test_layer():
    run_layer_test(
        LocallyConnected2D,
        {"filters": 4, "kernel_size": (3, 2), "strides": (2, 1)},
        input_shape=(2, 6, 7, 3),
        # (6 - 3) // 2 + 1 = 2 rows, (7 - 2) // 1 + 1 = 6 columns.
        expected_output_shape=(2, 2, 6, 4),
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
    )


def test_parameter_count():
    # 8x8x3 input, 3x3 windows, 4 filters: 6 x 6 positions, each with its own
    # 3 * 3 * 3 * 4 + 4 = 112 parameters: 36 * 112 = 4032 (a Conv2D has 112).
    layer = LocallyConnected2D(4, 3)
    layer.build((None, 8, 8, 3))
    assert layer.count_params() == 4032 == 36 * conv_params(3, 3, 4)
    for shape, kwargs in [
        ((None, 9, 7, 2), {"filters": 5, "kernel_size": (3, 2), "strides": (2, 1)}),
        ((None, 9, 7, 2), {"filters": 5, "kernel_size": 3, "strides": 2, "padding": "same"}),
        ((None, 5, 6, 4), {"filters": 3, "kernel_size": 2, "use_bias": False}),
    ]:
        layer = LocallyConnected2D(**kwargs)
        layer.build(shape)
        padding = kwargs.get("padding", "valid")
        out_h, out_w = conv_output_size(shape[1:3], layer.kernel_size, padding, layer.strides)
        per_position = conv_params(
            layer.kernel_size,
            shape[3],
            kwargs["filters"],
            use_bias=kwargs.get("use_bias", True),
        )
        assert layer.count_params() == out_h * out_w * per_position, kwargs
        conv = keras.layers.Conv2D(**kwargs)
        conv.build(shape)
        assert layer.count_params() == out_h * out_w * conv.count_params(), kwargs


def test_tied_weights_are_a_convolution():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 9, 8, 2)).astype("float32")
    for kwargs in [
        {"filters": 4, "kernel_size": 3},
        {"filters": 3, "kernel_size": (3, 2), "strides": (2, 3)},
        {"filters": 2, "kernel_size": (4, 3), "strides": 2, "padding": "same"},
        {"filters": 2, "kernel_size": 3, "padding": "same", "activation": "relu"},
    ]:
        conv = keras.layers.Conv2D(bias_initializer="random_normal", **kwargs)
        expected = conv(x)
        local = LocallyConnected2D(**kwargs)
        local.build(x.shape)
        positions = local.kernel.shape[0]
        kernel, bias = conv.get_weights()
        # Every position gets the one shared kernel and bias.
        tied_kernel = np.tile(kernel.reshape(1, -1, kernel.shape[-1]), (positions, 1, 1))
        tied_bias = np.broadcast_to(bias, local.bias.shape)
        local.set_weights([tied_kernel, tied_bias])
        np.testing.assert_allclose(local(x), expected, atol=1e-5, rtol=0, err_msg=str(kwargs))


def test_untied_weights_against_numpy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 7, 6, 3)).astype("float32")
    layer = LocallyConnected2D(4, (3, 2), strides=(2, 2), bias_initializer="random_normal")
    y = layer(x)
    kernel, bias = layer.get_weights()
    assert kernel.shape == (3 * 3, 3 * 2 * 3, 4) and bias.shape == (3, 3, 4)
    expected = _np_locally_connected(x, kernel, bias, (3, 2), (2, 2))
    np.testing.assert_allclose(y, expected, atol=1e-5, rtol=0)


def test_weights_are_not_shared():
    # A hand-worked 3x3 image of ones, 2x2 windows, one filter: four positions. Kernel p is
    # all p + 1, so output p is 4 * (p + 1): a convolution could not give four values here.
    layer = LocallyConnected2D(1, 2, use_bias=False)
    layer.build((1, 3, 3, 1))
    layer.set_weights([np.arange(1, 5, dtype="float32").reshape(4, 1, 1) * np.ones((4, 4, 1))])
    y = layer(np.ones((1, 3, 3, 1), "float32"))
    np.testing.assert_allclose(y[0, :, :, 0], [[4, 8], [12, 16]], atol=1e-6, rtol=0)


def test_saving():
    model = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            LocallyConnected2D(3, 3, activation="tanh"),
            keras.layers.Flatten(),
        ]
    )
    x = np.random.default_rng(2).normal(size=(2, 6, 6, 2)).astype("float32")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        np.testing.assert_allclose(keras.saving.load_model(path)(x), model(x), atol=0, rtol=0)


@pytest.mark.skipif(
    not all(
        hasattr(package, name)
        for package, name in [
            (i2dl_keras.layers, "LocallyConnected2D"),
            (i2dl_keras.layers, "MaxUnpooling2D"),
            (i2dl_keras.initializers, "Sobel"),
        ]
    ),
    reason="a fresh process finds the new classes only once their subpackages export them",
)
def test_fresh_process_reload():
    # One subprocess for the new layers: Sobel edges, pooling with indices, unpooling, and a
    # locally connected layer on top.
    inputs = keras.Input((6, 6, 1))
    edges = keras.layers.Conv2D(2, 3, padding="same", kernel_initializer=Sobel())(inputs)
    pooled, indices = MaxPooling2D(2, return_indices=True)(edges)
    unpooled = MaxUnpooling2D(2)(pooled, indices)
    outputs = LocallyConnected2D(3, 3, bias_initializer="random_normal")(unpooled)
    x = np.random.default_rng(3).uniform(size=(2, 6, 6, 1)).astype("float32")
    run_model_saving_test(keras.Model(inputs, outputs), x)


def test_bad_arguments():
    for kwargs, name in [
        ({"filters": 0, "kernel_size": 3}, "filters"),
        ({"filters": 2, "kernel_size": (3, 0)}, "kernel_size"),
        ({"filters": 2, "kernel_size": 3, "strides": -1}, "strides"),
        ({"filters": 2, "kernel_size": 3, "padding": "full"}, "padding"),
        ({"filters": 2, "kernel_size": 3, "use_bias": "yes"}, "use_bias"),
    ]:
        with pytest.raises(ValueError, match=f"`{name}`.*Received: {name}="):
            LocallyConnected2D(**kwargs)
    with pytest.raises(ValueError, match="known height and width.*Received: input_shape="):
        LocallyConnected2D(2, 3)(keras.Input((None, None, 1)))
    with pytest.raises(ValueError, match="smaller than the window.*Received: input_shape="):
        LocallyConnected2D(2, 3)(np.zeros((1, 2, 5, 1), "float32"))
