import keras
import numpy as np
import pytest

from i2dl_keras.layers import PReLU
from i2dl_keras.testing import run_layer_test, run_serialization_test


def test_config():
    revived = run_serialization_test(PReLU(shared_axes=[2, 1], alpha_regularizer="l2"))
    assert revived.get_config()["shared_axes"] == [1, 2]
    assert revived.alpha_regularizer is not None


def test_layer():
    layer = run_layer_test(
        PReLU,
        {"shared_axes": [1, 2]},
        input_shape=(2, 3, 3, 2),
        expected_output_shape=(2, 3, 3, 2),
        expected_num_trainable_weights=1,
        expected_num_non_trainable_weights=0,
    )
    assert layer.alpha.shape == (1, 1, 2)  # one slope per channel


def test_initial_alpha_is_a_quarter():
    layer = PReLU()
    x = np.array([[-4.0, 2.0, -1.0]], "float32")
    np.testing.assert_allclose(layer(x), [[-1.0, 2.0, -0.25]], atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.alpha), [0.25] * 3)


def test_correctness_with_set_alpha():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4, 2)).astype("float32")
    alpha = np.array([[0.1, 0.7]], "float32")  # shared over axis 1
    layer = PReLU(shared_axes=1)
    layer.build(x.shape)
    layer.set_weights([alpha])
    expected = np.where(x >= 0, x, alpha[None] * x)
    np.testing.assert_allclose(layer(x), expected, atol=1e-6, rtol=0)


def test_alpha_learns():
    # Target 0.5 * x on negative inputs: gradient descent moves alpha from 0.25 to 0.5.
    import tensorflow as tf

    x = -np.abs(np.random.default_rng(0).normal(size=(64, 1))).astype("float32")
    layer = PReLU()
    layer.build(x.shape)
    optimizer = keras.optimizers.SGD(0.5)
    for _ in range(40):
        with tf.GradientTape() as tape:
            value = keras.ops.mean(keras.ops.square(layer(x) - 0.5 * x))
        optimizer.apply(tape.gradient(value, layer.trainable_variables), layer.trainable_variables)
    np.testing.assert_allclose(layer.get_weights()[0], [0.5], atol=0.01)


def test_bad_shared_axes():
    for shared_axes in (0, [1, -1], "1", [1.5]):
        with pytest.raises(ValueError, match="`shared_axes`.*Received: shared_axes="):
            PReLU(shared_axes=shared_axes)
    with pytest.raises(ValueError, match="`shared_axes`.*Received: shared_axes="):
        PReLU(shared_axes=3)(np.zeros((2, 4), "float32"))
