"""Tests for MaskingNoise: zeroes a `rate` fraction without rescaling, in training only."""

import numpy as np
import pytest

from i2dl_keras.layers.masking_noise import MaskingNoise
from i2dl_keras.testing import run_layer_test


def test_inference_is_identity():
    x = np.random.default_rng(0).uniform(1.0, 2.0, size=(3, 7)).astype("float32")
    np.testing.assert_array_equal(MaskingNoise(rate=0.5, seed=1)(x), x)


def test_training_zeroes_rate_fraction_and_keeps_the_rest_unscaled():
    x = np.random.default_rng(0).uniform(1.0, 2.0, size=(200, 100)).astype("float32")
    y = np.asarray(MaskingNoise(rate=0.25, seed=2)(x, training=True))
    zeroed = y == 0.0
    # 20,000 Bernoulli(0.25) draws: std of the fraction ~0.0031, so 0.015 is ~5 sigma.
    assert abs(zeroed.mean() - 0.25) < 0.015
    # Unlike inverted dropout, the survivors are not divided by (1 - rate).
    np.testing.assert_array_equal(y[~zeroed], x[~zeroed])


def test_layer_helpers():
    layer = run_layer_test(
        MaskingNoise,
        {"rate": 0.1, "seed": 0},
        input_shape=(2, 6),
        expected_output_shape=(2, 6),
        expected_num_trainable_weights=0,
    )
    assert layer.get_config()["rate"] == 0.1


def test_invalid_arguments_raise():
    cases = [
        ({"rate": 1.5}, "Received: rate=1.5"),
        ({"rate": 0.1, "seed": 1.5}, "Received: seed=1.5"),
    ]
    for kwargs, received in cases:
        with pytest.raises(ValueError) as info:
            MaskingNoise(**kwargs)
        assert str(info.value).endswith(received), str(info.value)
