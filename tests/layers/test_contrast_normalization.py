import numpy as np
import pytest

from i2dl_keras.layers import ContrastNormalization
from i2dl_keras.testing import run_layer_test, run_serialization_test


def _np_contrast_normalization(x, size, mode, epsilon):
    """Brute force: for every value, the mean and variance of its (border-cut) window."""
    half = size // 2
    batch, height, width, channels = x.shape
    out = np.empty_like(x, dtype="float64")
    for b in range(batch):
        for i in range(height):
            for j in range(width):
                for c in range(channels):
                    if mode == "within":
                        window = x[
                            b,
                            max(i - half, 0) : i + half + 1,
                            max(j - half, 0) : j + half + 1,
                            c,
                        ]
                    else:
                        window = x[b, i, j, max(c - half, 0) : c + half + 1]
                    window = window.astype("float64")
                    out[b, i, j, c] = (x[b, i, j, c] - window.mean()) / np.sqrt(
                        window.var() + epsilon
                    )
    return out


def test_config_and_layer():
    revived = run_serialization_test(ContrastNormalization(size=5, mode="across", epsilon=1e-3))
    assert revived.get_config()["size"] == 5 and revived.mode == "across"
    assert revived.epsilon == 1e-3
    for mode in ("within", "across"):
        run_layer_test(
            ContrastNormalization,
            {"size": 3, "mode": mode},
            input_shape=(2, 5, 4, 3),
            expected_output_shape=(2, 5, 4, 3),
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=0,
        )


@pytest.mark.parametrize("mode, size", [("within", 3), ("within", 5), ("across", 3)])
def test_correctness_against_numpy(mode, size):
    x = np.random.default_rng(0).normal(loc=1.0, size=(2, 5, 6, 4)).astype("float32")
    expected = _np_contrast_normalization(x, size, mode, 1e-5)
    np.testing.assert_allclose(
        ContrastNormalization(size, mode=mode)(x), expected, atol=1e-4, rtol=1e-4
    )


def test_by_hand():
    # Across three maps holding 1, 2, 3: windows [1, 2], [1, 2, 3], [2, 3] give
    # (1 - 1.5) / 0.5, (2 - 2) / 0.816, (3 - 2.5) / 0.5 = -1, 0, 1.
    x = np.array([1.0, 2.0, 3.0], "float32").reshape(1, 1, 1, 3)
    np.testing.assert_allclose(
        ContrastNormalization(3, mode="across")(x)[0, 0, 0], [-1.0, 0.0, 1.0], atol=1e-4
    )
    # Within the 3x3 map 1..9: the corner's window is [1, 2, 4, 5] (mean 3, variance 2.5),
    # the centre's is the whole map (mean 5).
    x = np.arange(1, 10, dtype="float32").reshape(1, 3, 3, 1)
    y = ContrastNormalization(3, mode="within")(x)[0, :, :, 0]
    np.testing.assert_allclose(y[0, 0], -2.0 / np.sqrt(2.5), atol=1e-4)
    np.testing.assert_allclose(y[1, 1], 0.0, atol=1e-5)
    # A constant map has no contrast: all zeros, no NaN.
    flat = ContrastNormalization(3)(np.full((1, 4, 4, 2), 7.0, "float32"))
    np.testing.assert_allclose(flat, 0.0, atol=1e-4)


def test_bad_arguments():
    for size in (0, 2, 3.0, "3"):
        with pytest.raises(ValueError, match="`size`.*Received: size="):
            ContrastNormalization(size=size)
    with pytest.raises(ValueError, match="`mode`.*Received: mode="):
        ContrastNormalization(mode="between")
    for epsilon in (0.0, -1e-5):
        with pytest.raises(ValueError, match="`epsilon`.*Received: epsilon="):
            ContrastNormalization(epsilon=epsilon)
    with pytest.raises(ValueError, match="Received: input_shape="):
        ContrastNormalization()(np.zeros((2, 5, 3), "float32"))
