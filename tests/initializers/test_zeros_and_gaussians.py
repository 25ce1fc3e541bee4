"""Zeros, SmallGaussian and LargeGaussian: draws, configs, and what each does to a network."""

import re

import keras
import numpy as np
import pytest

import i2dl_keras
from i2dl_keras.diagnostics import activation_statistics
from i2dl_keras.initializers.large_gaussian import LargeGaussian
from i2dl_keras.initializers.small_gaussian import SmallGaussian
from i2dl_keras.initializers.xavier import Xavier
from i2dl_keras.initializers.zeros import Zeros
from i2dl_keras.testing import run_model_saving_test, run_serialization_test


def sample(init, shape, dtype=None):
    return np.asarray(init(shape, dtype=dtype), dtype="float64")


def test_correctness():
    for init, stddev in (
        (SmallGaussian(seed=1), 0.01),
        (LargeGaussian(seed=2), 1.0),
        (SmallGaussian(stddev=0.05, seed=3), 0.05),
        (LargeGaussian(stddev=2.5, seed=4), 2.5),
    ):
        w = sample(init, (1000, 1000))
        assert w.shape == (1000, 1000)
        # The same scale whatever the fans: also for a conv kernel.
        assert w.std() == pytest.approx(stddev, rel=0.01)
        assert sample(init, (3, 3, 64, 128)).std() == pytest.approx(stddev, rel=0.02)
        assert abs(w.mean()) < 0.01 * stddev
        # A plain Gaussian, not truncated: |w| beyond 3 sigma occurs (0.27%).
        assert np.mean(np.abs(w) > 3 * stddev) == pytest.approx(0.0027, abs=0.0005)
    assert SmallGaussian(seed=0)((4, 4), dtype="float64").dtype == "float64"

    zeros = Zeros()((3, 4))
    assert zeros.dtype == keras.config.floatx() and zeros.shape == (3, 4)
    assert not np.any(np.asarray(zeros))
    assert Zeros()((2,), dtype="float16").dtype == "float16"


def test_seeding():
    a = sample(SmallGaussian(seed=11), (20, 30))
    np.testing.assert_array_equal(a, sample(SmallGaussian(seed=11), (20, 30)))
    assert not np.allclose(a, sample(SmallGaussian(seed=12), (20, 30)))
    # The same seed draws the same standard normals, scaled by stddev.
    np.testing.assert_allclose(sample(LargeGaussian(seed=11), (20, 30)), 100 * a, rtol=1e-5)
    keras.utils.set_random_seed(5)
    b = sample(LargeGaussian(), (20, 30))
    c = sample(LargeGaussian(), (20, 30))
    keras.utils.set_random_seed(5)
    np.testing.assert_array_equal(b, sample(LargeGaussian(), (20, 30)))
    assert not np.allclose(b, c)


def test_config_and_bad_arguments():
    for init, config in (
        (SmallGaussian(), {"stddev": 0.01, "seed": None}),
        (LargeGaussian(), {"stddev": 1.0, "seed": None}),
        (SmallGaussian(stddev=0.001, seed=3), {"stddev": 0.001, "seed": 3}),
        (LargeGaussian(stddev=3, seed=4), {"stddev": 3.0, "seed": 4}),
        (Zeros(), {}),
    ):
        revived = run_serialization_test(init)
        assert revived.get_config() == config
    seeded = SmallGaussian(seed=4)
    np.testing.assert_array_equal(
        sample(run_serialization_test(seeded), (5, 5)), sample(seeded, (5, 5))
    )
    # Inside a saved layer config.
    layer = keras.layers.Dense(3, kernel_initializer=LargeGaussian(stddev=2.0, seed=1))
    revived = keras.layers.Dense.from_config(layer.get_config())
    assert isinstance(revived.kernel_initializer, LargeGaussian)
    assert revived.kernel_initializer.stddev == 2.0

    for cls in (SmallGaussian, LargeGaussian):
        for stddev in (0, -0.1, float("inf"), "0.1", True):
            with pytest.raises(ValueError, match=re.escape(f"Received: stddev={stddev!r}")):
                cls(stddev=stddev)
        for seed in (-1, 1.5, "3", True):
            with pytest.raises(ValueError, match=re.escape(f"Received: seed={seed!r}")):
                cls(seed=seed)
        with pytest.raises(ValueError, match="Received: dtype='int32'"):
            cls(seed=0)((2, 2), dtype="int32")


@pytest.mark.skipif(
    not all(
        hasattr(i2dl_keras.initializers, name)
        for name in ("Zeros", "SmallGaussian", "LargeGaussian")
    ),
    reason="a fresh process finds them only once i2dl_keras.initializers exports them",
)
def test_fresh_process_reload():
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4, kernel_initializer=SmallGaussian(seed=1)),
            keras.layers.Dense(4, kernel_initializer=LargeGaussian(stddev=2.0, seed=2)),
            keras.layers.Dense(1, kernel_initializer=Zeros(), bias_initializer="ones"),
        ]
    )
    run_model_saving_test(model, np.ones((2, 3), "float32"))


def two_layer_net(init):
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4, activation="sigmoid", kernel_initializer=init),
            keras.layers.Dense(1, kernel_initializer=init),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    return model


def test_zero_init_keeps_hidden_units_identical():
    # All-zero weights: every hidden unit computes the same output and gets the same gradient,
    # so after training the 4 units still have identical weights: one unit, copied 4 times.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
    model = two_layer_net(Zeros())
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False)
    hidden, output = model.layers[0], model.layers[1]
    kernel = hidden.kernel.numpy()
    assert np.abs(kernel).max() > 0.1  # the weights did move
    np.testing.assert_allclose(kernel, np.repeat(kernel[:, :1], 4, axis=1), rtol=1e-6)
    np.testing.assert_allclose(hidden.bias.numpy(), hidden.bias.numpy()[0], rtol=1e-6)
    np.testing.assert_allclose(output.kernel.numpy(), output.kernel.numpy()[0, 0], rtol=1e-6)

    # Random weights break the symmetry: the units end up different.
    model = two_layer_net(SmallGaussian(stddev=0.5, seed=0))
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False)
    kernel = model.layers[0].kernel.numpy()
    assert np.min(np.ptp(kernel, axis=1)) > 0.1


def tanh_stack(init):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 64)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")
    dense = [keras.layers.Dense(64, activation="tanh", kernel_initializer=init) for _ in range(6)]
    model = keras.Sequential([keras.Input((64,)), *dense, keras.layers.Dense(1)])
    return model, x, y


def test_large_weights_saturate_tanh_and_small_weights_vanish():
    # Large: pre-activations of std ~ 1 * sqrt(64) = 8, so most tanh outputs sit near +-1.
    # There tanh' = 1 - a^2 is close to 0: the course's "vanishing gradient from activations".
    model, x, y = tanh_stack(LargeGaussian(seed=0))
    hidden = keras.Model(model.inputs[0], [layer.output for layer in model.layers[:6]])(x)
    for a in map(np.asarray, hidden):
        assert np.mean(np.abs(a) > 0.9) > 0.75
        assert np.mean(1.0 - a**2) < 0.2
    stats = list(activation_statistics(model, x, y, loss="mse").values())[:6]
    assert all(s["activation_std"] > 0.9 for s in stats)

    # Small: each layer scales the activations by about 0.01 * sqrt(64) = 0.08, and the
    # gradients arriving at them shrink in the same way towards the input.
    model, x, y = tanh_stack(SmallGaussian(seed=0))
    stats = list(activation_statistics(model, x, y, loss="mse").values())[:6]
    stds = [s["activation_std"] for s in stats]
    assert all(0.04 < b / a < 0.16 for a, b in zip(stds, stds[1:]))
    assert stds[5] < 1e-5
    assert stats[0]["gradient_std"] < 1e-4 * stats[5]["gradient_std"]

    # Xavier (variance 1 / fan_in) keeps the activations alive, not saturated.
    model, x, y = tanh_stack(Xavier(seed=0))
    stats = list(activation_statistics(model, x, y, loss="mse").values())[:6]
    assert all(0.1 < s["activation_std"] < 0.8 for s in stats)
    hidden = keras.Model(model.inputs[0], [layer.output for layer in model.layers[:6]])(x)
    assert all(np.mean(1.0 - np.asarray(a) ** 2) > 0.5 for a in hidden)
