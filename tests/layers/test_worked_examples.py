"""The course's worked examples that concern layers and activations."""

import keras
import numpy as np


def test_softmax_of_one_two_three():
    # The slides: z = [1.0, 2.0, 3.0] -> softmax(z) = [0.09, 0.24, 0.67].
    y = keras.ops.convert_to_numpy(keras.activations.softmax(np.array([[1.0, 2.0, 3.0]])))[0]
    np.testing.assert_array_equal(np.round(y, 2), [0.09, 0.24, 0.67])
    np.testing.assert_allclose(y.sum(), 1.0, atol=1e-6)
    # The same from the formula exp(z_j) / sum_k exp(z_k).
    z = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(y, np.exp(z) / np.exp(z).sum(), atol=1e-6)
    # The derivative: d s_j / d z_j = s_j (1 - s_j), d s_i / d z_j = -s_i s_j.
    jacobian = np.diag(y) - np.outer(y, y)
    np.testing.assert_allclose(jacobian[0, 0], 0.09 * 0.91, atol=1e-3)
    np.testing.assert_allclose(jacobian[0, 2], -0.09 * 0.67, atol=1e-3)


def test_conv_parameter_count():
    # F * F * C_in * C_out + C_out, e.g. 3 * 3 * 5 * 8 + 8 = 368 and 5 * 5 * 3 * 6 + 6 = 456.
    for f, c_in, c_out, expected in ((3, 5, 8, 368), (5, 3, 6, 456), (1, 16, 4, 68)):
        assert f * f * c_in * c_out + c_out == expected
        layer = keras.layers.Conv2D(c_out, f)
        layer.build((None, 12, 12, c_in))
        assert layer.count_params() == expected
