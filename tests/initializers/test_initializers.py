"""Xavier and He: variances from the fans, distributions, seeding, configs and bad arguments."""

import re

import keras
import numpy as np
import pytest

from i2dl_keras import initializers
from i2dl_keras.testing import run_serialization_test


def sample(init, shape):
    return np.asarray(init(shape), dtype="float64")


def test_compute_fans():
    assert initializers.compute_fans((20, 30)) == (20, 30)
    # A conv kernel: receptive field 3 * 3 times the input (or output) channels.
    assert initializers.compute_fans((3, 3, 16, 32)) == (144, 288)
    assert initializers.compute_fans((5, 4, 2)) == (20, 10)  # Conv1D: (k, c_in, c_out)
    assert initializers.compute_fans((7,)) == (7, 7)
    assert initializers.compute_fans(()) == (1, 1)
    for bad in ((3, 0), (2.0, 3), (True, 3)):
        with pytest.raises(ValueError, match=re.escape(f"Received: shape={bad!r}")):
            initializers.compute_fans(bad)


def test_correctness():
    cases = [
        # (initializer, shape, target variance)
        (initializers.Xavier(seed=1), (1000, 1000), 1.0 / 1000),
        (initializers.Xavier(mode="fan_avg", seed=2), (500, 1500), 2.0 / 2000),
        (initializers.He(seed=3), (1000, 1000), 2.0 / 1000),
        # Conv kernels: fan_in = 3 * 3 * 64 = 576, fan_out = 3 * 3 * 128 = 1152.
        (initializers.Xavier(seed=4), (3, 3, 64, 128), 1.0 / 576),
        (initializers.Xavier(mode="fan_avg", seed=5), (3, 3, 64, 128), 2.0 / 1728),
        (initializers.He(seed=6), (3, 3, 64, 128), 2.0 / 576),
        (initializers.Xavier(distribution="uniform", seed=7), (1000, 1000), 1.0 / 1000),
        (initializers.Xavier("fan_avg", "uniform", seed=8), (500, 1500), 2.0 / 2000),
        (initializers.He(distribution="uniform", seed=9), (3, 3, 64, 128), 2.0 / 576),
    ]
    for init, shape, variance in cases:
        w = sample(init, shape)
        label = f"{init.get_config()} {shape}"
        assert w.shape == shape
        assert w.var() == pytest.approx(variance, rel=0.02), label
        assert abs(w.mean()) < 0.02 * np.sqrt(variance), label
        limit = np.sqrt(3.0 * variance)
        if init.distribution == "uniform":
            # Inside the bounds, and reaching them (not a narrower distribution).
            assert np.abs(w).max() <= limit * (1 + 1e-6), label
            assert np.abs(w).max() > 0.99 * limit, label
        else:
            # A Gaussian, not truncated and not uniform: |w| beyond 3 sigma occurs (0.27%).
            assert np.mean(np.abs(w) > 3 * np.sqrt(variance)) == pytest.approx(0.0027, abs=0.001)

    # The fan_avg uniform limit is Glorot's sqrt(6 / (fan_in + fan_out)), as in Keras.
    ours = sample(initializers.Xavier("fan_avg", "uniform", seed=0), (50, 70))
    glorot = sample(keras.initializers.GlorotUniform(seed=0), (50, 70))
    assert np.abs(ours).max() <= np.sqrt(6.0 / 120) and np.abs(glorot).max() <= np.sqrt(6.0 / 120)
    # As a layer argument.
    layer = keras.layers.Conv2D(128, 3, kernel_initializer=initializers.He(seed=0))
    layer.build((None, 8, 8, 64))
    assert np.var(layer.kernel.numpy()) == pytest.approx(2.0 / 576, rel=0.02)
    assert initializers.Xavier(seed=0)((4, 4), dtype="float64").dtype == "float64"


def test_seeding():
    a = sample(initializers.He(seed=11), (20, 30))
    np.testing.assert_array_equal(a, sample(initializers.He(seed=11), (20, 30)))
    assert not np.allclose(a, sample(initializers.He(seed=12), (20, 30)))
    # Unseeded initializers follow keras.utils.set_random_seed.
    keras.utils.set_random_seed(5)
    b = sample(initializers.Xavier(), (20, 30))
    c = sample(initializers.Xavier(), (20, 30))
    keras.utils.set_random_seed(5)
    np.testing.assert_array_equal(b, sample(initializers.Xavier(), (20, 30)))
    assert not np.allclose(b, c)


def test_config_and_bad_arguments():
    for init, config in (
        (initializers.Xavier(), {"mode": "fan_in", "distribution": "normal", "seed": None}),
        (
            initializers.Xavier(mode="fan_avg", distribution="uniform", seed=3),
            {"mode": "fan_avg", "distribution": "uniform", "seed": 3},
        ),
        (initializers.He(distribution="uniform", seed=4), {"distribution": "uniform", "seed": 4}),
        (initializers.He(), {"distribution": "normal", "seed": None}),
    ):
        revived = run_serialization_test(init)
        assert revived.get_config() == config
    seeded = initializers.He(seed=4)
    np.testing.assert_array_equal(
        sample(run_serialization_test(seeded), (5, 5)), sample(seeded, (5, 5))
    )

    with pytest.raises(ValueError, match=r"`mode` must be one of .*Received: mode='fan_out'"):
        initializers.Xavier(mode="fan_out")
    for cls in (initializers.Xavier, initializers.He):
        with pytest.raises(
            ValueError, match=r"`distribution` must be one of .*Received: distribution='gauss'"
        ):
            cls(distribution="gauss")
        for seed in (-1, 1.5, "3", True):
            with pytest.raises(ValueError, match=f"Received: seed={seed!r}"):
                cls(seed=seed)
        with pytest.raises(ValueError, match="Received: dtype='int32'"):
            cls(seed=0)((2, 2), dtype="int32")
