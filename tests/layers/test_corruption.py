"""Tests for the corruption functions shared by the noise layers and the data pipelines."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras.layers import (
    MaskingNoise,
    SaltPepperNoise,
    gaussian_corruption,
    masking_corruption,
    salt_pepper_corruption,
)


def _seed(a, b=0):
    return tf.constant([a, b], tf.int64)


def test_gaussian_noise_has_the_asked_deviation_and_is_clipped():
    grey = np.full((16, 32, 32, 1), 0.5, np.float32)
    diff = np.asarray(gaussian_corruption(grey, 0.1, seed=_seed(1, 2))) - grey
    # 16,384 draws: the sample mean is within 4 standard errors (0.1 / 128) of 0.
    assert abs(diff.mean()) < 0.004
    assert diff.std() == pytest.approx(0.1, rel=0.03)
    # Strong noise on black pixels, clipped to [0, 1]: about half the pixels stay at 0.
    noisy = np.asarray(
        gaussian_corruption(np.zeros_like(grey), 0.5, seed=_seed(1, 2), low=0, high=1)
    )
    assert noisy.min() == 0.0 and noisy.max() <= 1.0
    assert np.mean(noisy == 0.0) == pytest.approx(0.5, abs=0.02)
    # E[clip(0.5 Z, 0, 1)] = 0.5 (phi(0) - phi(2)) + P(Z > 2) = 0.19523 (phi: normal density);
    # the sample mean of 16,384 draws is within 0.006 (3 standard errors).
    assert noisy.mean() == pytest.approx(0.19523, abs=0.006)


@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_salt_pepper_hits_the_asked_fraction_with_fair_coins(rate):
    grey = np.full((16, 32, 32, 1), 0.5, np.float32)
    noisy = np.asarray(salt_pepper_corruption(grey, rate, seed=_seed(1, 2)))
    assert set(np.unique(noisy)) <= {0.0, 0.5, 1.0}
    hit = noisy != 0.5
    assert hit.mean() == pytest.approx(rate, abs=0.015)
    assert np.mean(noisy[hit] == 1.0) == pytest.approx(0.5, abs=0.03)


def test_masking_zeroes_the_asked_fraction_and_keeps_the_rest():
    images = np.random.default_rng(0).uniform(0.2, 1.0, (16, 32, 32, 1)).astype(np.float32)
    noisy = np.asarray(masking_corruption(images, 0.25, seed=_seed(1, 2)))
    zeroed = noisy == 0.0
    assert zeroed.mean() == pytest.approx(0.25, abs=0.015)
    np.testing.assert_array_equal(noisy[~zeroed], images[~zeroed])


def _corruptions():
    return {
        "gaussian": lambda x, seed: gaussian_corruption(x, 0.3, seed=seed, low=0.0, high=1.0),
        "masking": lambda x, seed: masking_corruption(x, 0.3, seed=seed),
        "salt_pepper": lambda x, seed: salt_pepper_corruption(x, 0.3, seed=seed),
    }


@pytest.mark.parametrize("kind", ["gaussian", "masking", "salt_pepper"])
def test_noise_is_a_function_of_the_seed_tensor(kind):
    corrupt = _corruptions()[kind]
    images = np.full((2, 8, 8, 1), 0.5, np.float32)
    a = np.asarray(corrupt(images, _seed(3, 4)))
    np.testing.assert_array_equal(a, np.asarray(corrupt(images, _seed(3, 4))))
    assert not np.array_equal(a, np.asarray(corrupt(images, _seed(3, 5))))
    assert not np.array_equal(a, images)


@pytest.mark.parametrize("kind", ["gaussian", "masking", "salt_pepper"])
def test_stateless_seeds_work_inside_tf_data(kind):
    corrupt = _corruptions()[kind]
    images = np.random.default_rng(0).random((4, 8, 8, 1)).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices(images).enumerate()
    mapped = ds.map(lambda i, x: corrupt(x, tf.stack([tf.constant(7, tf.int64), i])))
    expected = [np.asarray(corrupt(x, _seed(7, i))) for i, x in enumerate(images)]
    for got, want in zip(mapped.as_numpy_iterator(), expected):
        np.testing.assert_array_equal(got, want)


def test_zero_level_is_the_identity():
    x = np.random.default_rng(1).random((3, 5)).astype(np.float32)
    for corrupt in (
        lambda seed: gaussian_corruption(x, 0.0, seed=seed),
        lambda seed: masking_corruption(x, 0.0, seed=seed),
        lambda seed: salt_pepper_corruption(x, 0.0, seed=seed),
    ):
        np.testing.assert_array_equal(np.asarray(corrupt(_seed(1))), x)
        np.testing.assert_array_equal(np.asarray(corrupt(3)), x)


@pytest.mark.parametrize(
    "layer, function",
    [
        (MaskingNoise(rate=0.3, seed=5), lambda x, seed: masking_corruption(x, 0.3, seed=seed)),
        (
            SaltPepperNoise(rate=0.3, low=-1.0, high=2.0, seed=5),
            lambda x, seed: salt_pepper_corruption(x, 0.3, seed=seed, low=-1.0, high=2.0),
        ),
    ],
    ids=["masking", "salt_pepper"],
)
def test_layer_and_pipeline_function_agree_for_the_same_seed(layer, function):
    x = np.random.default_rng(2).uniform(0.2, 0.8, (64, 50)).astype(np.float32)
    from_layer = np.asarray(layer(x, training=True))
    # The layer draws its first call's noise with the first seed its generator hands out; a
    # pipeline passing that seed as a tensor corrupts exactly alike.
    seed = keras.random.SeedGenerator(5).next()
    np.testing.assert_array_equal(from_layer, np.asarray(function(x, seed)))
    # And so do their statistics: the hit fraction of 3,200 draws within 5 standard errors.
    assert np.mean(from_layer != x) == pytest.approx(0.3, abs=0.04)
    # The layer's next call draws fresh noise.
    assert not np.array_equal(np.asarray(layer(x, training=True)), from_layer)


@pytest.mark.parametrize(
    "call, received",
    [
        (lambda: masking_corruption(np.ones(3, "float32"), 1.0), "Received: rate=1.0"),
        (lambda: salt_pepper_corruption(np.ones(3, "float32"), -0.1), "Received: rate=-0.1"),
        (
            lambda: salt_pepper_corruption(np.ones(3, "float32"), 0.1, low=1, high=0),
            "Received: high=0",
        ),
        (lambda: gaussian_corruption(np.ones(3, "float32"), -1.0), "Received: stddev=-1.0"),
        (lambda: gaussian_corruption(np.ones(3, "float32"), 0.1, seed=-2), "Received: seed=-2"),
        (
            lambda: masking_corruption(np.ones(3, "float32"), 0.1, seed=_seed(1)[:1]),
            "Received: seed=",
        ),
    ],
)
def test_invalid_arguments_raise(call, received):
    with pytest.raises(ValueError) as info:
        call()
    assert received in str(info.value)
