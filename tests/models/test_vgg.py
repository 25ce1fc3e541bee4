"""vgg: the parameter counts of keras.applications.VGG16/19, depth, validation, training."""

import keras
import numpy as np
import pytest

from i2dl_keras.models.vgg import vgg


@pytest.mark.parametrize("depth, expected", [(16, 138_357_544), (19, 143_667_240)])
def test_parameter_count_matches_keras_applications(depth, expected):
    # keras.applications.VGG16/VGG19(weights=None).count_params(), at 224x224x3, 1000 classes.
    model = vgg(depth)
    assert model.count_params() == expected
    weighted = [layer for layer in model.layers if layer.weights]
    assert len(weighted) == depth
    assert model.get_layer("block5_pool").output.shape[1:] == (7, 7, 512)
    assert model.output_shape == (None, 1000)


def test_tiny_forward_and_training_step(train_one_step):
    model = vgg(11, input_shape=(32, 32, 3), num_classes=4, width_multiplier=1 / 16)
    assert len([layer for layer in model.layers if layer.weights]) == 11
    # Filters 64, 128, 256, 512, 512 and 4096 units, divided by 16.
    kernels = [layer.kernel.shape[-1] for layer in model.layers if layer.weights]
    assert kernels == [4, 8, 16, 16, 32, 32, 32, 32, 256, 256, 4]
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    probs = model(x).numpy()
    assert probs.shape == (2, 4)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
    train_one_step(model, x, np.array([1, 2]))


def test_batch_norm_variant():
    model = vgg(13, input_shape=(32, 32, 3), num_classes=3, width_multiplier=1 / 32,
                use_batch_norm=True)  # fmt: skip
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bns) == 10


def test_invalid_arguments():
    cases = [
        ({"depth": 15}, r"`depth`.*Received: depth=15"),
        ({"depth": 16.0}, r"`depth`.*Received: depth=16.0"),
        ({"input_shape": (31, 31, 3)}, r"at least 32\. Received: input_shape=\(31, 31, 3\)"),
        ({"width_multiplier": 0.0}, r"Received: width_multiplier=0.0"),
        ({"num_classes": -1}, r"Received: num_classes=-1"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            vgg(**kwargs)
