"""MaxPooling2D and AveragePooling2D with the course's zero padding."""

import keras
import numpy as np
import pytest

from i2dl_keras.layers import AveragePooling2D, MaxPooling2D
from i2dl_keras.testing import run_layer_test, run_serialization_test


def _np_pool(x, pool, strides, padding, how, count_padding=False):
    """Brute-force pooling of a zero-padded (batch, h, w, c) array."""
    (top, bottom), (left, right) = padding
    padded = np.pad(x, [(0, 0), (top, bottom), (left, right), (0, 0)]).astype("float64")
    real = np.pad(np.ones(x.shape[1:3]), [(top, bottom), (left, right)])
    out_h = (x.shape[1] + top + bottom - pool[0]) // strides[0] + 1
    out_w = (x.shape[2] + left + right - pool[1]) // strides[1] + 1
    out = np.zeros((x.shape[0], out_h, out_w, x.shape[3]))
    for i in range(out_h):
        for j in range(out_w):
            rows = slice(i * strides[0], i * strides[0] + pool[0])
            cols = slice(j * strides[1], j * strides[1] + pool[1])
            window = padded[:, rows, cols, :]
            if how == "max":
                out[:, i, j] = window.max(axis=(1, 2))
            else:
                n = pool[0] * pool[1] if count_padding else real[rows, cols].sum()
                out[:, i, j] = window.sum(axis=(1, 2)) / n
    return out


def test_config():
    layer = MaxPooling2D(pool_size=(3, 2), strides=1, padding=((1, 0), (1, 1)))
    config = run_serialization_test(layer).get_config()
    assert config["pool_size"] == [3, 2] and config["strides"] == [1, 1]
    assert config["padding"] == [[1, 0], [1, 1]]
    assert config["return_indices"] is False
    with_indices = run_serialization_test(MaxPooling2D(2, return_indices=True))
    assert with_indices.get_config()["return_indices"] is True
    config = run_serialization_test(AveragePooling2D(2, padding=1, count_padding=True)).get_config()
    assert config["strides"] == [2, 2] and config["count_padding"] is True
    assert config["padding"] == [[1, 1], [1, 1]]


def test_layers():
    for cls, kwargs in ((MaxPooling2D, {}), (AveragePooling2D, {"count_padding": False})):
        run_layer_test(
            cls,
            {"pool_size": 3, "strides": 2, "padding": 1, **kwargs},
            input_shape=(2, 5, 6, 3),
            expected_output_shape=(2, 3, 3, 3),  # floor((5-3+2)/2)+1, floor((6-3+2)/2)+1
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=0,
        )


def test_average_pooling_worked_example():
    # The course: 3x3 matrix 1..9, zero-padded to 4x4 (bottom/right), 2x2 window, stride 1,
    # padding not counted.
    x = np.arange(1, 10, dtype="float32").reshape(1, 3, 3, 1)
    layer = AveragePooling2D(pool_size=2, strides=1, padding=((0, 1), (0, 1)))
    np.testing.assert_allclose(
        layer(x)[0, :, :, 0], [[3, 4, 4.5], [6, 7, 7.5], [7.5, 8.5, 9]], atol=1e-6, rtol=0
    )
    # Counting the padding divides every border window by 4 instead: e.g. (3 + 6) / 4 = 2.25.
    counted = AveragePooling2D(pool_size=2, strides=1, padding=((0, 1), (0, 1)), count_padding=True)
    np.testing.assert_allclose(
        counted(x)[0, :, :, 0],
        [[3, 4, 2.25], [6, 7, 3.75], [3.75, 4.25, 2.25]],
        atol=1e-6,
        rtol=0,
    )


def test_max_pooling_worked_example():
    # The course: 3x5 matrix 1..15, 3x3 window, stride 2, zero padding 1 -> 2x3 output
    # (floor((3-3+2)/2)+1 = 2 rows, floor((5-3+2)/2)+1 = 3 columns), first row [7, 9, ...].
    x = np.arange(1, 16, dtype="float32").reshape(1, 3, 5, 1)
    y = MaxPooling2D(pool_size=3, strides=2, padding=1)(x)
    assert tuple(y.shape) == (1, 2, 3, 1)
    np.testing.assert_array_equal(y[0, :, :, 0], [[7, 9, 10], [12, 14, 15]])
    # The padded zeros take part: on negative inputs every window touching the border gives 0,
    # where Keras' "same" max pooling would return the largest real value.
    np.testing.assert_array_equal(MaxPooling2D(3, 2, padding=1)(-x)[0, :, :, 0], np.zeros((2, 3)))
    keras_same = keras.layers.MaxPooling2D(3, 2, padding="same")(-x)
    assert float(keras.ops.max(keras_same)) < 0


def test_against_numpy_with_asymmetric_padding():
    x = np.random.default_rng(0).normal(size=(2, 7, 10, 2)).astype("float32")
    pool, strides, padding = (3, 2), (2, 4), ((1, 2), (0, 1))
    # Output size per dimension: floor((7+3-3)/2)+1 = 4 and floor((10+1-2)/4)+1 = 3.
    for cls, how, extra in (
        (MaxPooling2D, "max", {}),
        (AveragePooling2D, "avg", {"count_padding": False}),
        (AveragePooling2D, "avg", {"count_padding": True}),
    ):
        layer = cls(pool, strides, padding, **extra)
        assert layer.compute_output_shape((None, 7, 10, 2)) == (None, 4, 3, 2)
        expected = _np_pool(x, pool, strides, padding, how, extra.get("count_padding", False))
        assert expected.shape == (2, 4, 3, 2)
        np.testing.assert_allclose(layer(x), expected, atol=1e-5, rtol=0)
    # Without padding both agree with Keras' "valid" pooling.
    np.testing.assert_allclose(
        MaxPooling2D(3, 2)(x), keras.layers.MaxPooling2D(3, 2)(x), atol=0, rtol=0
    )
    np.testing.assert_allclose(
        AveragePooling2D(3, 2)(x), keras.layers.AveragePooling2D(3, 2)(x), atol=1e-6, rtol=0
    )


def _np_argmax_pool(x, pool, strides, padding):
    """Brute-force max pooling with the flat `row * width + col` of each winner (-1: padding)."""
    (top, bottom), (left, right) = padding
    batch, height, width, channels = x.shape
    out_h = (height + top + bottom - pool[0]) // strides[0] + 1
    out_w = (width + left + right - pool[1]) // strides[1] + 1
    values = np.zeros((batch, out_h, out_w, channels))
    indices = np.zeros((batch, out_h, out_w, channels), "int64")
    for b, i, j, c in np.ndindex(batch, out_h, out_w, channels):
        best, where = -np.inf, -1
        for di, dj in np.ndindex(*pool):
            row, col = i * strides[0] + di - top, j * strides[1] + dj - left
            inside = 0 <= row < height and 0 <= col < width
            value = x[b, row, col, c] if inside else 0.0
            if value > best:
                best, where = value, row * width + col if inside else -1
        values[b, i, j, c], indices[b, i, j, c] = best, where
    return values, indices


def test_max_pooling_indices_worked_example():
    # The course's example again: 7, 9, 10 sit in row 1 of the 3x5 input (columns 1, 3, 4),
    # 12, 14, 15 in row 2, so their flat positions row * 5 + col are 6, 8, 9 and 11, 13, 14.
    x = np.arange(1, 16, dtype="float32").reshape(1, 3, 5, 1)
    values, indices = MaxPooling2D(pool_size=3, strides=2, padding=1, return_indices=True)(x)
    assert keras.backend.standardize_dtype(indices.dtype) == "int32"
    np.testing.assert_array_equal(values[0, :, :, 0], [[7, 9, 10], [12, 14, 15]])
    np.testing.assert_array_equal(indices[0, :, :, 0], [[6, 8, 9], [11, 13, 14]])
    # On -x every window touches the padding, whose zeros win: no input position, index -1.
    values, indices = MaxPooling2D(3, 2, padding=1, return_indices=True)(-x)
    np.testing.assert_array_equal(values[0, :, :, 0], np.zeros((2, 3)))
    np.testing.assert_array_equal(indices[0, :, :, 0], -np.ones((2, 3)))


def test_max_pooling_indices_against_numpy():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 7, 10, 3)).astype("float32")
    for pool, strides, padding in (
        ((2, 2), (2, 2), ((0, 0), (0, 0))),
        ((3, 2), (2, 1), ((1, 2), (0, 1))),  # overlapping windows, asymmetric padding
        ((3, 3), (3, 3), ((1, 1), (2, 2))),
    ):
        layer = MaxPooling2D(pool, strides, padding, return_indices=True)
        values, indices = layer(x)
        expected_values, expected_indices = _np_argmax_pool(x, pool, strides, padding)
        np.testing.assert_allclose(values, expected_values, atol=0, rtol=0)
        np.testing.assert_array_equal(indices, expected_indices)
        # The values are those of the plain layer, and the indices point at them.
        plain = MaxPooling2D(pool, strides, padding)(x)
        np.testing.assert_array_equal(values, plain)
        indices = keras.ops.convert_to_numpy(indices)
        for b, i, j, c in np.ndindex(*indices.shape):
            k = indices[b, i, j, c]
            pointed = x[b, k // 10, k % 10, c] if k >= 0 else 0.0  # width 10
            assert values[b, i, j, c] == pointed


def test_max_pooling_indices_in_a_model():
    # Symbolic shapes and dtypes, unknown spatial size, and a compiled predict.
    inputs = keras.Input((None, None, 2))
    values, indices = MaxPooling2D(2, return_indices=True)(inputs)
    assert values.dtype == "float32" and indices.dtype == "int32"
    assert tuple(indices.shape) == (None, None, None, 2)
    layer = MaxPooling2D(3, 2, padding=1, return_indices=True)
    assert layer.compute_output_shape((None, 5, 6, 3)) == ((None, 3, 3, 3), (None, 3, 3, 3))
    model = keras.Model(inputs, MaxPooling2D(3, 2, padding=1, return_indices=True)(inputs))
    x = np.random.default_rng(0).normal(size=(3, 5, 6, 2)).astype("float32")
    got_values, got_indices = model.predict(x, verbose=0)
    expected_values, expected_indices = _np_argmax_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
    np.testing.assert_allclose(got_values, expected_values, atol=0, rtol=0)
    np.testing.assert_array_equal(got_indices, expected_indices)


def test_bad_arguments():
    cases = [
        ({"pool_size": 0}, "pool_size"),
        ({"pool_size": (2, 2, 2)}, "pool_size"),
        ({"pool_size": 2, "strides": (1,)}, "strides"),
        ({"pool_size": 2, "strides": 0}, "strides"),
        ({"pool_size": 2, "padding": -1}, "padding"),
        ({"pool_size": 2, "padding": "same"}, "padding"),
        ({"pool_size": 2, "padding": ((0, 1), (1,))}, "padding"),
        ({"pool_size": 2, "padding": 2}, "padding"),  # a window of padding only
        ({"pool_size": (3, 2), "padding": ((0, 0), (0, 2))}, "padding"),
    ]
    for cls in (MaxPooling2D, AveragePooling2D):
        for kwargs, name in cases:
            with pytest.raises(ValueError, match=f"`?{name}`?.*Received: {name}="):
                cls(**kwargs)
    with pytest.raises(ValueError, match="`return_indices`.*Received: return_indices=1"):
        MaxPooling2D(2, return_indices=1)
    with pytest.raises(ValueError, match="`count_padding`.*Received: count_padding="):
        AveragePooling2D(2, count_padding="yes")
    with pytest.raises(ValueError, match="Received: input_shape="):
        MaxPooling2D(3)(np.zeros((1, 2, 2, 1), "float32"))  # 2x2 input, 3x3 window
    with pytest.raises(ValueError, match="Received: input_shape="):
        MaxPooling2D(2)(np.zeros((1, 4, 4), "float32"))
