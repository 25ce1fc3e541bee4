"""unet: parameter count by hand, full convolutionality, validation, training."""

import numpy as np
import pytest

from i2dl_keras.models.unet import unet


def _x(*shape):
    return np.random.default_rng(0).normal(size=shape).astype("float32")


def test_parameter_count_by_hand():
    def conv(f, c_in, c_out):
        return f * f * c_in * c_out + c_out

    depth, channels, classes = 4, 1, 2
    filters = [64 * 2**i for i in range(depth + 1)]  # 64 ... 1024
    expected = 0
    c_in = channels
    for f in filters:  # contracting path and bottom: two 3x3 convolutions per level
        expected += conv(3, c_in, f) + conv(3, f, f)
        c_in = f
    for i in reversed(range(depth)):  # 2x2 up-convolution, concatenation, two convolutions
        expected += conv(2, filters[i + 1], filters[i])
        expected += conv(3, 2 * filters[i], filters[i]) + conv(3, filters[i], filters[i])
    expected += conv(1, 64, classes)
    model = unet()
    assert expected == 31_030_658
    assert model.count_params() == expected


def test_fully_convolutional():
    for upsampling in ("transposed", "bilinear"):
        model = unet(num_classes=3, depth=2, base_filters=4, upsampling=upsampling)
        for h, w in ((64, 64), (96, 96), (64, 96)):
            probs = model(_x(1, h, w, 1)).numpy()
            assert probs.shape == (1, h, w, 3)
            np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
    assert model.get_layer("bottom_conv2").output.shape[-1] == 16


def test_tiny_training_step(train_one_step):
    model = unet(input_shape=(16, 16, 2), num_classes=2, depth=2, base_filters=2,
                 use_batch_norm=True, dropout=0.2, output_activation=None)  # fmt: skip
    assert model.layers[-1].name == "logits"
    y = np.random.default_rng(1).integers(0, 2, size=(2, 16, 16))
    train_one_step(model, _x(2, 16, 16, 2), y)


def test_invalid_arguments():
    cases = [
        ({"input_shape": (60, 64, 1)}, r"multiples of 16.*Received: input_shape=\(60, 64, 1\)"),
        ({"depth": 2, "input_shape": (6, 8, 1)}, r"multiples of 4"),
        ({"depth": 0}, r"`depth`.*Received: depth=0"),
        ({"base_filters": 1.5}, r"Received: base_filters=1.5"),
        ({"upsampling": "nearest"}, r"Received: upsampling='nearest'"),
        ({"dropout": 2}, r"Received: dropout=2"),
        ({"input_shape": (64, 64, None)}, r"Received: input_shape=\(64, 64, None\)"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            unet(**kwargs)
