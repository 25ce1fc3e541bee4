import keras
import numpy as np
import pytest

from i2dl_keras.layers import ClassicDropout
from i2dl_keras.testing import run_layer_test, run_serialization_test


def test_config_and_layer():
    revived = run_serialization_test(ClassicDropout(0.3, noise_shape=(None, 1), seed=5))
    assert revived.get_config()["noise_shape"] == [None, 1]
    assert revived.seed == 5
    run_layer_test(
        ClassicDropout,
        {"rate": 0.3, "seed": 1},
        input_shape=(2, 5),
        expected_output_shape=(2, 5),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
    )


def test_classic_and_inverted_give_the_same_expected_activation():
    """The course's worked example: both forms match their inference output on average."""
    rate = 0.3
    x = np.random.default_rng(0).uniform(0.5, 1.5, size=(400, 500)).astype("float32")
    classic = ClassicDropout(rate, seed=1)
    inverted = keras.layers.Dropout(rate, seed=1)

    classic_test = keras.ops.convert_to_numpy(classic(x, training=False))
    classic_train = keras.ops.convert_to_numpy(classic(x, training=True))
    inverted_test = keras.ops.convert_to_numpy(inverted(x, training=False))
    inverted_train = keras.ops.convert_to_numpy(inverted(x, training=True))

    # Inference: classic scales by (1 - p), inverted is the identity.
    np.testing.assert_allclose(classic_test, (1 - rate) * x, atol=1e-6, rtol=0)
    np.testing.assert_allclose(inverted_test, x, atol=0, rtol=0)
    # Training: classic keeps units unchanged, inverted scales them by 1 / (1 - p).
    kept = classic_train != 0
    np.testing.assert_array_equal(classic_train[kept], x[kept])
    inverted_kept = inverted_train != 0
    np.testing.assert_allclose(
        inverted_train[inverted_kept], x[inverted_kept] / (1 - rate), rtol=1e-6
    )
    # 200,000 draws: the dropped fraction is within 0.01 of the rate (std is about 0.001).
    assert abs((1 - kept.mean()) - rate) < 0.01
    assert abs((1 - inverted_kept.mean()) - rate) < 0.01
    # The expected training activation equals the inference activation, for both forms.
    assert abs(classic_train.mean() / classic_test.mean() - 1.0) < 0.01
    assert abs(inverted_train.mean() / inverted_test.mean() - 1.0) < 0.01
    # Classic train mean ~ (1 - p) x, inverted train mean ~ x: they differ by the factor 1 - p.
    assert abs(classic_train.mean() / inverted_train.mean() - (1 - rate)) < 0.01


def test_noise_shape_and_rate_zero():
    x = np.ones((50, 4), "float32")
    y = keras.ops.convert_to_numpy(
        ClassicDropout(0.5, noise_shape=(None, 1), seed=2)(x, training=True)
    )
    # One mask value per row: each row is all zeros or all ones, and both occur.
    assert set(np.unique(y.sum(axis=1))) == {0.0, 4.0}
    np.testing.assert_array_equal(ClassicDropout(0.0)(x, training=True), x)
    np.testing.assert_array_equal(ClassicDropout(0.0)(x, training=False), x)


def test_bad_arguments():
    for rate in (1.0, -0.1, "0.5", None):
        with pytest.raises(ValueError, match="`rate`.*Received: rate="):
            ClassicDropout(rate)
    with pytest.raises(ValueError, match="`seed`.*Received: seed="):
        ClassicDropout(0.5, seed=1.5)
    with pytest.raises(ValueError, match="`noise_shape`.*Received: noise_shape="):
        ClassicDropout(0.5, noise_shape=(None, 0))
    with pytest.raises(ValueError, match="`noise_shape`.*Received: noise_shape="):
        ClassicDropout(0.5, noise_shape=(None, 1))(np.ones((2, 3, 4), "float32"))


def test_trains_in_graph_mode_with_a_dynamic_batch():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(4),
            ClassicDropout(0.5, noise_shape=(None, 1), seed=1),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.SGD(0.1), "mse")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(np.ones((8, 4)), np.ones((8, 1)), batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert all(not np.array_equal(b, a) for b, a in zip(before, model.get_weights()))
