import keras
import numpy as np
import pytest

from i2dl_keras.layers import Maxout
from i2dl_keras.testing import run_layer_test, run_serialization_test


def test_config():
    layer = Maxout(units=3, pieces=4, use_bias=False, kernel_regularizer="l2", name="mx")
    revived = run_serialization_test(layer)
    config = revived.get_config()
    assert (config["units"], config["pieces"], config["use_bias"]) == (3, 4, False)
    assert config["kernel_regularizer"] is not None


def test_layer():
    layer = run_layer_test(
        Maxout,
        {"units": 3, "pieces": 2},
        input_shape=(4, 5),
        expected_output_shape=(4, 3),
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
    )
    assert layer.kernel.shape == (5, 6) and layer.bias.shape == (6,)


def test_correctness_against_numpy():
    rng = np.random.default_rng(0)
    units, pieces, dim = 3, 4, 5
    kernel = rng.normal(size=(dim, units * pieces)).astype("float32")
    bias = rng.normal(size=(units * pieces,)).astype("float32")
    x = rng.normal(size=(6, 2, dim)).astype("float32")  # rank 3: applied on the last axis
    layer = Maxout(units, pieces=pieces)
    layer.build(x.shape)
    layer.set_weights([kernel, bias])
    # Column j * pieces + k is piece k of unit j.
    z = x @ kernel + bias
    expected = np.stack(
        [z[..., j * pieces : (j + 1) * pieces].max(axis=-1) for j in range(units)], axis=-1
    )
    np.testing.assert_allclose(layer(x), expected, atol=1e-5, rtol=0)


def test_two_pieces_by_hand():
    # max(w1 x + b1, w2 x + b2) for one unit on a scalar input: max(2x - 1, -x + 2).
    layer = Maxout(1, pieces=2)
    layer.build((None, 1))
    layer.set_weights([np.array([[2.0, -1.0]], "float32"), np.array([-1.0, 2.0], "float32")])
    x = np.array([[-1.0], [0.0], [1.0], [3.0]], "float32")
    np.testing.assert_allclose(layer(x)[:, 0], [3.0, 2.0, 1.0, 5.0], atol=1e-6)


def test_bad_arguments():
    cases = [
        ({"units": 0}, "units"),
        ({"units": 2.5}, "units"),
        ({"units": 2, "pieces": 1}, "pieces"),
        ({"units": 2, "pieces": "2"}, "pieces"),
    ]
    for kwargs, name in cases:
        with pytest.raises(ValueError, match=f"`{name}`.*Received: {name}="):
            Maxout(**kwargs)


def test_learns_absolute_value():
    # |x| = max(x, -x) is one 2-piece maxout unit; plain gradient descent finds it.
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    x = np.linspace(-2, 2, 64, dtype="float32")[:, None]
    layer = Maxout(1, pieces=2)
    layer.build(x.shape)
    layer.set_weights([np.array([[0.3, 0.1]], "float32"), np.zeros(2, "float32")])

    def loss():
        return keras.ops.mean(keras.ops.square(layer(x) - np.abs(x)))

    first = float(loss())
    optimizer = keras.optimizers.SGD(0.3)
    for _ in range(100):
        with tf.GradientTape() as tape:
            value = loss()
        optimizer.apply(tape.gradient(value, layer.trainable_variables), layer.trainable_variables)
    assert float(loss()) < 1e-3 * first
    kernel = np.sort(layer.get_weights()[0][0])
    np.testing.assert_allclose(kernel, [-1.0, 1.0], atol=0.02)
    np.testing.assert_allclose(layer.get_weights()[1], [0.0, 0.0], atol=0.02)
