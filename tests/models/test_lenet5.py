"""lenet5: the classic parameter count, layer shapes, validation and a training step."""

import keras
import numpy as np
import pytest

from i2dl_keras.models.lenet5 import lenet5


def _conv(f, c_in, c_out):
    return f * f * c_in * c_out + c_out


def _dense(n_in, n_out):
    return n_in * n_out + n_out


def test_classic_parameter_count_and_shapes():
    model = lenet5()
    # C1, C3, C5 (a 5x5 conv on a 5x5x16 map), F6, output: the common Keras form of LeNet-5.
    expected = _conv(5, 1, 6) + _conv(5, 6, 16) + _conv(5, 16, 120) + _dense(120, 84)
    expected += _dense(84, 10)
    assert expected == 61_706
    assert model.count_params() == expected
    # (N - F) / S + 1 per layer: 32 -> 28 -> 14 -> 10 -> 5 -> 1.
    shapes = {layer.name: layer.output.shape[1:] for layer in model.layers}
    assert shapes["c1"] == (28, 28, 6)
    assert shapes["s2"] == (14, 14, 6)
    assert shapes["c3"] == (10, 10, 16)
    assert shapes["s4"] == (5, 5, 16)
    assert shapes["c5"] == (1, 1, 120)
    assert model.output_shape == (None, 10)
    assert model.layers[-1].name == "predictions"


def test_mnist_form_and_logits():
    model = lenet5(input_shape=(28, 28, 1), first_conv_padding="same", output_activation=None)
    assert model.get_layer("c5").output.shape[1:] == (1, 1, 120)
    assert model.count_params() == 61_706
    assert model.layers[-1].name == "logits"


def test_forward_softmax_and_training_step(train_one_step):
    model = lenet5(width_multiplier=0.5, pooling="max")
    x = np.random.default_rng(0).normal(size=(4, 32, 32, 1)).astype("float32")
    probs = model(x).numpy()
    assert probs.shape == (4, 10)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
    # Three steps on one batch must lower its loss.
    y = np.arange(4) % 10
    losses = [train_one_step(model, x, y, learning_rate=0.1) for _ in range(3)]
    assert losses[-1] < losses[0]


def test_invalid_arguments():
    cases = [
        ({"input_shape": (31, 32, 1)}, r"at least 32\. Received: input_shape=\(31, 32, 1\)"),
        ({"input_shape": (27, 28, 1), "first_conv_padding": "same"}, r"at least 28\."),
        ({"input_shape": (None, 32, 1)}, r"Received: input_shape=\(None, 32, 1\)"),
        ({"input_shape": (32, 32)}, r"Received: input_shape=\(32, 32\)"),
        ({"num_classes": 0}, r"`num_classes`.*Received: num_classes=0"),
        ({"width_multiplier": 0}, r"`width_multiplier`.*Received: width_multiplier=0"),
        ({"pooling": "min"}, r"`pooling`.*Received: pooling='min'"),
        ({"first_conv_padding": "full"}, r"Received: first_conv_padding='full'"),
        ({"output_activation": "nope"}, r"Received: output_activation='nope'"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            lenet5(**kwargs)
    assert isinstance(lenet5(input_shape=(32, 33, 3)), keras.Sequential)
