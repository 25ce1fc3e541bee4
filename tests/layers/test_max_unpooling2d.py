"""MaxUnpooling2D: pooled maxima go back in place, zeros elsewhere."""

import os
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras.layers.max_pooling2d import MaxPooling2D
from i2dl_keras.layers.max_unpooling2d import MaxUnpooling2D
from i2dl_keras.testing import run_layer_test, run_serialization_test


def _np_unpool(values, indices, height, width):
    out = np.zeros((values.shape[0], height * width, values.shape[3]))
    for b, i, j, c in np.ndindex(*values.shape):
        if indices[b, i, j, c] >= 0:
            out[b, indices[b, i, j, c], c] = values[b, i, j, c]
    return out.reshape(values.shape[0], height, width, values.shape[3])


def test_config():
    config = run_serialization_test(MaxUnpooling2D()).get_config()
    assert config["pool_size"] == [2, 2] and config["strides"] == [2, 2]
    assert config["padding"] == [[0, 0], [0, 0]] and config["output_size"] is None
    layer = MaxUnpooling2D((3, 2), strides=1, padding=((1, 0), (0, 1)), output_size=(5, 7))
    config = run_serialization_test(layer).get_config()
    assert config["pool_size"] == [3, 2] and config["strides"] == [1, 1]
    assert config["padding"] == [[1, 0], [0, 1]] and config["output_size"] == [5, 7]


def test_layer():
    indices = np.random.default_rng(0).integers(-1, 48, size=(2, 3, 4, 2)).astype("int32")
    run_layer_test(
        MaxUnpooling2D,
        {"pool_size": 2},
        input_shape=(2, 3, 4, 2),
        expected_output_shape=(2, 6, 8, 2),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
        call_kwargs={"indices": indices},
    )


def test_pool_then_unpool_worked_example():
    # The course's max-pooling example, 3x5 matrix 1..15, 3x3 window, stride 2, padding 1,
    # pools to [[7, 9, 10], [12, 14, 15]]; unpooling puts each maximum back where it was.
    x = np.arange(1, 16, dtype="float32").reshape(1, 3, 5, 1)
    pooled, indices = MaxPooling2D(3, strides=2, padding=1, return_indices=True)(x)
    y = MaxUnpooling2D(3, strides=2, padding=1)(pooled, indices)
    assert tuple(y.shape) == (1, 3, 5, 1)  # (2 - 1) * 2 + 3 - 2 = 3, (3 - 1) * 2 + 3 - 2 = 5
    expected = [
        [0, 0, 0, 0, 0],
        [0, 7, 0, 9, 10],
        [0, 12, 0, 14, 15],
    ]
    np.testing.assert_array_equal(y[0, :, :, 0], expected)

    # A 4x4 image pooled 2x2 / stride 2 (a SegNet encoder step), two channels.
    x = np.stack(
        [
            [[1, 5, 2, 0], [3, 2, 8, 1], [0, 0, 4, 6], [7, 1, 3, 2]],
            [[-1, -5, -2, -3], [-3, -2, -8, -1], [9, 0, -4, -6], [7, 1, -3, -2]],
        ],
        axis=-1,
    ).astype("float32")[None]
    pooled, indices = MaxPooling2D(2, return_indices=True)(x)
    np.testing.assert_array_equal(pooled[0, :, :, 0], [[5, 8], [7, 6]])
    np.testing.assert_array_equal(pooled[0, :, :, 1], [[-1, -1], [9, -2]])
    y = MaxUnpooling2D(2)(pooled, indices)
    np.testing.assert_array_equal(
        y[0, :, :, 0], [[0, 5, 0, 0], [0, 0, 8, 0], [0, 0, 0, 6], [7, 0, 0, 0]]
    )
    np.testing.assert_array_equal(
        y[0, :, :, 1], [[-1, 0, 0, 0], [0, 0, 0, -1], [9, 0, 0, 0], [0, 0, 0, -2]]
    )


def test_padding_winners_and_overlapping_windows():
    # -1 (a padded zero won) places nothing: on all-negative input everything unpools to 0.
    x = -np.arange(1, 16, dtype="float32").reshape(1, 3, 5, 1)
    pooled, indices = MaxPooling2D(3, strides=2, padding=1, return_indices=True)(x)
    np.testing.assert_array_equal(indices, -np.ones((1, 2, 3, 1)))
    np.testing.assert_array_equal(
        MaxUnpooling2D(3, strides=2, padding=1)(pooled, indices), np.zeros((1, 3, 5, 1))
    )
    # Overlapping windows (stride 1) that share their maximum give it back once, not summed:
    # 9 wins all four 2x2 windows of this 3x3 image.
    x = np.array([[1, 2, 3], [4, 9, 5], [6, 7, 8]], "float32").reshape(1, 3, 3, 1)
    pooled, indices = MaxPooling2D(2, strides=1, return_indices=True)(x)
    np.testing.assert_array_equal(indices[0, :, :, 0], [[4, 4], [4, 4]])
    y = MaxUnpooling2D(2, strides=1)(pooled, indices)
    np.testing.assert_array_equal(y[0, :, :, 0], [[0, 0, 0], [0, 9, 0], [0, 0, 0]])
    # Changed values at a shared position (e.g. after a layer in between) are averaged:
    # (1 + 2 + 3 + 6) / 4 = 3.
    changed = np.array([[1, 2], [3, 6]], "float32").reshape(1, 2, 2, 1)
    y = MaxUnpooling2D(2, strides=1)(changed, indices)
    np.testing.assert_array_equal(y[0, :, :, 0], [[0, 0, 0], [0, 3, 0], [0, 0, 0]])


def test_against_numpy():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 7, 9, 3)).astype("float32")
    for pool, strides, padding in (
        ((2, 2), (2, 2), ((0, 0), (0, 0))),
        ((3, 2), (2, 1), ((1, 2), (0, 1))),
        ((3, 3), (2, 2), ((1, 1), (1, 1))),
    ):
        pooled, indices = MaxPooling2D(pool, strides, padding, return_indices=True)(x)
        y = MaxUnpooling2D(pool, strides, padding, output_size=(7, 9))(pooled, indices)
        expected = _np_unpool(
            keras.ops.convert_to_numpy(pooled), keras.ops.convert_to_numpy(indices), 7, 9
        )
        np.testing.assert_allclose(y, expected, atol=1e-6, rtol=0)
        # Every kept value is the input's own value at that position.
        kept = expected != 0
        np.testing.assert_array_equal(expected[kept], x[kept])


def test_output_size():
    # A 5x5 input pools 2x2 to 2x2, dropping the last row and column: the inferred size is
    # 4x4, and the indices (positions in the 5-wide input) need `output_size` = 5.
    x = np.arange(25, dtype="float32").reshape(1, 5, 5, 1)
    pooled, indices = MaxPooling2D(2, return_indices=True)(x)
    assert MaxUnpooling2D(2).compute_output_shape((1, 2, 2, 1)) == (1, 4, 4, 1)
    y = MaxUnpooling2D(2, output_size=5)(pooled, indices)
    expected = np.zeros((5, 5))
    expected[1, 1], expected[1, 3], expected[3, 1], expected[3, 3] = 6, 8, 16, 18
    np.testing.assert_array_equal(y[0, :, :, 0], expected)
    assert MaxUnpooling2D(2, padding=((0, 1), (0, 1))).compute_output_shape((4, 3, 3, 2)) == (
        4,
        5,
        5,
        2,
    )


def test_gradient_reaches_the_pooled_values():
    # d out / d pooled is the upstream gradient read at the recorded positions (0 for -1).
    pooled = tf.constant(np.array([[1.0, 2.0], [3.0, 4.0]], "float32").reshape(1, 2, 2, 1))
    indices = np.array([[0, 3], [-1, 15]], "int32").reshape(1, 2, 2, 1)
    weights = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    with tf.GradientTape() as tape:
        tape.watch(pooled)
        out = MaxUnpooling2D(2)(pooled, indices)
        objective = tf.reduce_sum(out * weights)
    np.testing.assert_array_equal(tape.gradient(objective, pooled)[0, :, :, 0], [[0, 3], [0, 15]])


def _encoder_decoder():
    inputs = keras.Input((6, 8, 2))
    pooled, indices = MaxPooling2D(2, return_indices=True)(inputs)
    hidden = keras.layers.Conv2D(2, 3, padding="same")(pooled)
    outputs = MaxUnpooling2D(2)(hidden, indices)
    return keras.Model(inputs, outputs)


def test_in_a_model_trains_and_saves():
    model = _encoder_decoder()
    assert model.output_shape == (None, 6, 8, 2)
    x = np.random.default_rng(0).normal(size=(4, 6, 8, 2)).astype("float32")
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, np.ones((4, 6, 8, 2), "float32"), epochs=1, batch_size=2, verbose=0)
    assert not any(np.array_equal(b, a) for b, a in zip(before, model.get_weights()))
    # Three quarters of every unpooled map are zeros: one position per 2x2 window is kept.
    y = model.predict(x, verbose=0)
    assert np.count_nonzero(y) <= y.size // 4
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        np.testing.assert_allclose(keras.saving.load_model(path)(x), y, atol=1e-6, rtol=0)
    # With an unknown spatial size the output size must be given.
    inputs = keras.Input((None, None, 1))
    pooled, indices = MaxPooling2D(2, return_indices=True)(inputs)
    with pytest.raises(ValueError, match="`output_size`.*Received: input_shape="):
        MaxUnpooling2D(2)(pooled, indices)


def test_bad_arguments():
    for kwargs, name in [
        ({"pool_size": 0}, "pool_size"),
        ({"strides": (1, 2, 3)}, "strides"),
        ({"padding": -1}, "padding"),
        ({"output_size": 0}, "output_size"),
        ({"output_size": (4, "4")}, "output_size"),
    ]:
        with pytest.raises(ValueError, match=f"`{name}`.*Received: {name}="):
            MaxUnpooling2D(**kwargs)
    with pytest.raises(ValueError, match="4D input.*Received: input_shape="):
        MaxUnpooling2D()(np.zeros((1, 2, 2), "float32"), np.zeros((1, 2, 2), "int32"))
    with pytest.raises(ValueError, match="`indices`.*Received: indices_shape="):
        MaxUnpooling2D()(np.zeros((1, 2, 2, 1), "float32"), np.zeros((1, 2, 3, 1), "int32"))
