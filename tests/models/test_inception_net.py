"""inception_net: GoogLeNet's parameter count by hand, shapes, validation, training."""

import numpy as np
import pytest

from i2dl_keras.layers.inception_block import InceptionBlock
from i2dl_keras.models.inception_net import inception_net


def _x(*shape):
    return np.random.default_rng(0).normal(size=shape).astype("float32")


def test_googlenet_parameter_count_by_hand():
    def conv(f, c_in, c_out):
        return f * f * c_in * c_out + c_out

    # Szegedy et al. (2015), table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
    table = [
        (64, 96, 128, 16, 32, 32),
        (128, 128, 192, 32, 96, 64),
        (192, 96, 208, 16, 48, 64),
        (160, 112, 224, 24, 64, 64),
        (128, 128, 256, 24, 64, 64),
        (112, 144, 288, 32, 64, 64),
        (256, 160, 320, 32, 128, 128),
        (256, 160, 320, 32, 128, 128),
        (384, 192, 384, 48, 128, 128),
    ]
    expected = conv(7, 3, 64) + conv(1, 64, 64) + conv(3, 64, 192)
    c_in = 192
    for f1, r3, f3, r5, f5, fp in table:
        expected += conv(1, c_in, f1) + conv(1, c_in, r3) + conv(3, r3, f3)
        expected += conv(1, c_in, r5) + conv(5, r5, f5) + conv(1, c_in, fp)
        c_in = f1 + f3 + f5 + fp
    assert c_in == 1024
    expected += 1024 * 1000 + 1000
    assert expected == 6_998_552
    model = inception_net()
    assert model.count_params() == expected
    assert sum(isinstance(layer, InceptionBlock) for layer in model.layers) == 9
    # Total stride 32: 224 -> 7 at block 5b, with 1024 channels.
    assert model.get_layer("inception_5b").output.shape[1:] == (7, 7, 1024)
    assert model.get_layer("inception_3a").output.shape[1:] == (28, 28, 256)


def test_tiny_net_accepts_two_sizes_and_trains(train_one_step):
    model = inception_net(input_shape=(None, None, 3), num_classes=4, width_multiplier=1 / 8)
    for size in (32, 64):
        probs = model(_x(2, size, size, 3)).numpy()
        assert probs.shape == (2, 4)
        np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
    features = inception_net(input_shape=(64, 96, 3), width_multiplier=1 / 8, include_top=False)
    assert features.output_shape == (None, 2, 3, 48 + 48 + 16 + 16)
    train_one_step(model, _x(2, 32, 32, 3), np.array([0, 3]), learning_rate=0.05)


def test_invalid_arguments():
    cases = [
        ({"input_shape": (31, 64, 3)}, r"at least 32\. Received: input_shape=\(31, 64, 3\)"),
        ({"width_multiplier": 0}, r"Received: width_multiplier=0"),
        ({"dropout": -0.1}, r"Received: dropout=-0.1"),
        ({"num_classes": 0}, r"Received: num_classes=0"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            inception_net(**kwargs)
