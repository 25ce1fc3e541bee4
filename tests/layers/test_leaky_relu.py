import numpy as np
import pytest

from i2dl_keras.layers import LeakyReLU
from i2dl_keras.testing import run_layer_test, run_serialization_test


def test_config():
    assert run_serialization_test(LeakyReLU(alpha=0.2)).get_config()["alpha"] == 0.2
    assert LeakyReLU().alpha == 0.01  # the course's slope


def test_layer():
    run_layer_test(
        LeakyReLU,
        {"alpha": 0.1},
        input_shape=(2, 3, 4),
        expected_output_shape=(2, 3, 4),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
    )


def test_correctness():
    x = np.array([-100.0, -2.0, -0.5, 0.0, 0.5, 3.0], "float32")
    # The course's form max(0.01 x, x), written out.
    np.testing.assert_allclose(
        LeakyReLU()(x), [-1.0, -0.02, -0.005, 0.0, 0.5, 3.0], atol=1e-6, rtol=0
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5)).astype("float32")
    np.testing.assert_allclose(LeakyReLU(alpha=0.3)(x), np.maximum(0.3 * x, x), atol=1e-6, rtol=0)


def test_bad_alpha():
    for alpha in [-0.1, float("nan"), "0.1", None]:
        with pytest.raises(ValueError, match="`alpha`.*Received: alpha="):
            LeakyReLU(alpha=alpha)
