"""resnet: parameter counts, output shapes at several input sizes, validation, training."""

import numpy as np
import pytest

from i2dl_keras.layers.residual_block import ResidualBlock
from i2dl_keras.models.resnet import resnet


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _x(*shape):
    return np.random.default_rng(0).normal(size=shape).astype("float32")


def test_resnet18_parameter_count_by_hand():
    def conv(f, c_in, c_out):
        return f * f * c_in * c_out  # no bias: batch normalization (gamma, beta) follows

    def bn(c):
        return 2 * c

    expected = conv(7, 3, 64) + bn(64)
    c_in = 64
    for stage, filters in enumerate((64, 128, 256, 512)):
        for block in range(2):
            expected += conv(3, c_in, filters) + bn(filters) + conv(3, filters, filters)
            expected += bn(filters)
            if stage > 0 and block == 0:
                expected += conv(1, c_in, filters) + bn(filters)
            c_in = filters
    expected += 512 * 1000 + 1000
    model = resnet(18)
    # The count of He et al.'s reference ResNet-18 (torchvision's resnet18 as well).
    assert expected == 11_689_512
    assert _trainable(model) == expected
    assert model.output_shape == (None, 1000)
    assert sum(isinstance(layer, ResidualBlock) for layer in model.layers) == 8


def test_resnet50_parameter_count():
    model = resnet(50)
    assert _trainable(model) == 25_557_032
    assert model.get_layer("stage4_block3").output.shape[1:] == (7, 7, 2048)


def test_feature_map_shapes_at_two_input_sizes():
    # Total stride 4 * 2**3 = 32, "same" padding everywhere: ceil(size / 32).
    model = resnet(blocks_per_stage=(1, 1, 1, 1), input_shape=(None, None, 3), base_filters=4,
                   include_top=False)  # fmt: skip
    assert model(_x(1, 64, 64, 3)).shape == (1, 2, 2, 32)
    assert model(_x(2, 96, 160, 3)).shape == (2, 3, 5, 32)
    assert model(_x(1, 100, 33, 3)).shape == (1, 4, 2, 32)
    bottleneck = resnet(blocks_per_stage=(1, 1), input_shape=(None, None, 2), base_filters=2,
                        bottleneck=True, stem="cifar", include_top=False)  # fmt: skip
    assert bottleneck(_x(1, 8, 8, 2)).shape == (1, 4, 4, 16)
    assert bottleneck(_x(1, 10, 6, 2)).shape == (1, 5, 3, 16)


def test_tiny_classifier_accepts_two_sizes_and_trains(train_one_step):
    model = resnet(blocks_per_stage=(1, 1), input_shape=(None, None, 3), num_classes=3,
                   base_filters=4, stem="cifar")  # fmt: skip
    assert model.name == "resnet6"
    for size in (16, 24):
        probs = model(_x(2, size, size, 3)).numpy()
        assert probs.shape == (2, 3)
        np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
    train_one_step(model, _x(4, 16, 16, 3), np.array([0, 1, 2, 0]))


def test_invalid_arguments():
    cases = [
        ({"depth": 20}, r"`depth`.*Received: depth=20"),
        ({}, r"exactly one of `depth` and `blocks_per_stage`.*Received: depth=None"),
        ({"depth": 18, "blocks_per_stage": (2, 2)}, r"Received: depth=18, blocks_per_stage"),
        ({"blocks_per_stage": (2, 0)}, r"Received: blocks_per_stage=\(2, 0\)"),
        ({"blocks_per_stage": ()}, r"Received: blocks_per_stage=\(\)"),
        ({"depth": 18, "input_shape": (16, 224, 3)}, r"at least 32\. Received: input_shape"),
        ({"blocks_per_stage": (1, 1, 1), "stem": "cifar", "input_shape": (3, 8, 3)},
         r"at least 4\."),
        ({"depth": 18, "base_filters": 0}, r"Received: base_filters=0"),
        ({"depth": 18, "stem": "tiny"}, r"`stem`.*Received: stem='tiny'"),
    ]  # fmt: skip
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            resnet(**kwargs)
