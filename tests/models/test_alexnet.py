"""alexnet: the parameter count from its layer table, shapes, validation, a training step."""

import numpy as np
import pytest

from i2dl_keras.models.alexnet import alexnet


def test_parameter_count_from_layer_table():
    def conv(f, c_in, c_out):
        return f * f * c_in * c_out + c_out

    def dense(n_in, n_out):
        return n_in * n_out + n_out

    table = {
        "conv1": conv(11, 3, 96),
        "conv2": conv(5, 96, 256),
        "conv3": conv(3, 256, 384),
        "conv4": conv(3, 384, 384),
        "conv5": conv(3, 384, 256),
        "fc6": dense(6 * 6 * 256, 4096),
        "fc7": dense(4096, 4096),
        "logits": dense(4096, 1000),
    }
    model = alexnet()
    for name, count in table.items():
        assert model.get_layer(name).count_params() == count, name
    assert sum(table.values()) == 62_378_344
    assert model.count_params() == 62_378_344
    # floor((N - F) / S) + 1: 227 -> 55 -> 27 -> 27 -> 13 -> 13 -> 6.
    assert model.get_layer("conv1").output.shape[1:] == (55, 55, 96)
    assert model.get_layer("pool1").output.shape[1:] == (27, 27, 96)
    assert model.get_layer("pool2").output.shape[1:] == (13, 13, 256)
    assert model.get_layer("pool5").output.shape[1:] == (6, 6, 256)
    assert model.output_shape == (None, 1000)


def test_tiny_forward_and_training_step(train_one_step):
    model = alexnet(input_shape=(67, 67, 3), num_classes=5, width_multiplier=1 / 16,
                    use_batch_norm=True, output_activation=None)  # fmt: skip
    x = np.random.default_rng(0).normal(size=(2, 67, 67, 3)).astype("float32")
    assert model.get_layer("pool5").output.shape[1:] == (1, 1, 16)
    assert model(x).shape == (2, 5)
    train_one_step(model, x, np.array([0, 3]))


def test_invalid_arguments():
    cases = [
        ({"input_shape": (66, 227, 3)}, r"at least 67\. Received: input_shape=\(66, 227, 3\)"),
        ({"width_multiplier": -1.0}, r"Received: width_multiplier=-1.0"),
        ({"dropout": 1.0}, r"`dropout`.*Received: dropout=1.0"),
        ({"num_classes": 2.5}, r"Received: num_classes=2.5"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            alexnet(**kwargs)
