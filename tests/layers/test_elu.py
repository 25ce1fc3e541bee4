import keras
import numpy as np
import pytest

from i2dl_keras.layers import ELU
from i2dl_keras.testing import run_layer_test, run_serialization_test


def test_config():
    assert run_serialization_test(ELU(alpha=0.5)).get_config()["alpha"] == 0.5


def test_layer():
    run_layer_test(
        ELU,
        {"alpha": 1.0},
        input_shape=(2, 6),
        expected_output_shape=(2, 6),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
    )


def test_correctness():
    x = np.array([-3.0, -1.0, 0.0, 0.5, 2.0], "float32")
    expected = np.where(x > 0, x, 2.0 * (np.exp(x) - 1.0))
    np.testing.assert_allclose(ELU(alpha=2.0)(x), expected, atol=1e-6, rtol=0)
    # By hand: f(-1) = exp(-1) - 1 = -0.63212 for alpha = 1; large inputs saturate at -alpha.
    np.testing.assert_allclose(
        ELU()(np.array([-1.0, -50.0], "float32")), [-0.632121, -1.0], atol=1e-6
    )


def test_gradient_is_finite_for_large_inputs():
    # exp(x) of the unused branch must not overflow into an inf * 0 = nan gradient.
    import tensorflow as tf

    x = tf.constant([100.0, -100.0, 1.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = keras.ops.sum(ELU()(x))
    grad = tape.gradient(y, x).numpy()
    np.testing.assert_allclose(grad, [1.0, 0.0, 1.0], atol=1e-6)


def test_bad_alpha():
    for alpha in [-1.0, float("inf"), True]:
        with pytest.raises(ValueError, match="`alpha`.*Received: alpha="):
            ELU(alpha=alpha)
