"""Tests for SaltPepperNoise: corrupts a `rate` fraction to low/high in training only."""

import numpy as np
import pytest

from i2dl_keras.layers.salt_pepper_noise import SaltPepperNoise
from i2dl_keras.testing import run_layer_test


def test_identity_at_inference_and_at_zero_rate():
    x = np.random.default_rng(0).uniform(size=(3, 7)).astype("float32")
    layer = SaltPepperNoise(rate=0.5, seed=1)
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer(x, training=False), x)
    np.testing.assert_array_equal(SaltPepperNoise(rate=0.0)(x, training=True), x)


def test_training_corrupts_rate_fraction_to_low_or_high():
    x = np.full((200, 100), 0.5, "float32")
    y = np.asarray(SaltPepperNoise(rate=0.3, low=-1.0, high=2.0, seed=3)(x, training=True))
    n = y.size
    salt, pepper, kept = (y == 2.0).sum(), (y == -1.0).sum(), (y == 0.5).sum()
    assert salt + pepper + kept == n  # nothing but the three values
    # 20,000 Bernoulli(0.3) draws: std of the fraction ~0.0032, so 0.015 is ~5 sigma.
    assert abs((salt + pepper) / n - 0.3) < 0.015
    assert abs(salt / (salt + pepper) - 0.5) < 0.03


def test_layer_helpers():
    layer = run_layer_test(
        SaltPepperNoise,
        {"rate": 0.2, "low": 0.0, "high": 1.0, "seed": 4},
        input_shape=(2, 3, 4),
        expected_output_shape=(2, 3, 4),
        expected_num_trainable_weights=0,
    )
    assert layer.get_config()["rate"] == 0.2
    assert layer.get_config()["seed"] == 4


def test_invalid_arguments_raise():
    cases = [
        ({"rate": 1.0}, "Received: rate=1.0"),
        ({"rate": -0.1}, "Received: rate=-0.1"),
        ({"low": 1.0, "high": 0.0}, "Received: high=0.0"),
        ({"low": "0"}, "Received: low='0'"),
        ({"seed": -1}, "Received: seed=-1"),
    ]
    for kwargs, received in cases:
        with pytest.raises(ValueError) as info:
            SaltPepperNoise(**kwargs)
        assert str(info.value).endswith(received), str(info.value)
