"""Sobel: the edge filters on step-edge images, channel cycling, config and bad arguments."""

import os
import re
import tempfile

import keras
import numpy as np
import pytest

from i2dl_keras.initializers.sobel import Sobel
from i2dl_keras.testing import run_serialization_test

# A 6x6 step edge: dark columns 0-2, bright columns 3-5 (a vertical edge).
STEP = np.repeat(np.array([[0, 0, 0, 1, 1, 1]], "float32"), 6, axis=0)


def edges(image, filters=2, **kwargs):
    conv = keras.layers.Conv2D(filters, 3, use_bias=False, kernel_initializer=Sobel(**kwargs))
    return keras.ops.convert_to_numpy(conv(image[None]))[0]


def test_kernel_values():
    kernel = keras.ops.convert_to_numpy(Sobel()((3, 3, 1, 2)))
    np.testing.assert_array_equal(kernel[:, :, 0, 0], [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    np.testing.assert_array_equal(kernel[:, :, 0, 1], [[-1, -2, -1], [0, 0, 0], [1, 2, 1]])
    # Output channels cycle x, y, x, y, x; each input channel carries 1 / C_in of the filter.
    kernel = keras.ops.convert_to_numpy(Sobel()((3, 3, 4, 5)))
    sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    for j, filt in enumerate([sobel_x, sobel_x.T, sobel_x, sobel_x.T, sobel_x]):
        for c in range(4):
            np.testing.assert_allclose(kernel[:, :, c, j], filt / 4, atol=0, rtol=0)
    only_y = keras.ops.convert_to_numpy(Sobel(directions=["y"])((3, 3, 1, 3)))
    assert np.all(only_y == only_y[:, :, :, :1])
    np.testing.assert_array_equal(only_y[0, :, 0, 0], [-1, -2, -1])
    assert keras.backend.standardize_dtype(Sobel()((3, 3, 1, 1), dtype="float64").dtype) == (
        "float64"
    )


def test_step_edges():
    # Vertical edge: the 3-wide windows at output columns 1 and 2 straddle it and G_x gives
    # -1*0 + 1*1 on each of the rows weighted 1, 2, 1: a response of 4; flat windows give 0.
    # G_y sees no change from row to row: 0 everywhere.
    out = edges(STEP[:, :, None])
    assert out.shape == (4, 4, 2)
    np.testing.assert_allclose(out[:, :, 0], np.tile([0, 4, 4, 0], (4, 1)), atol=1e-6, rtol=0)
    np.testing.assert_allclose(out[:, :, 1], np.zeros((4, 4)), atol=1e-6, rtol=0)
    # Horizontal edge (the transpose): the roles swap.
    out = edges(STEP.T[:, :, None])
    np.testing.assert_allclose(out[:, :, 0], np.zeros((4, 4)), atol=1e-6, rtol=0)
    np.testing.assert_allclose(out[:, :, 1], np.tile([[0], [4], [4], [0]], (1, 4)), atol=1e-6)
    # Bright to dark gives the opposite sign.
    out = edges(1.0 - STEP[:, :, None])
    np.testing.assert_allclose(out[:, :, 0], np.tile([0, -4, -4, 0], (4, 1)), atol=1e-6)
    # An RGB copy of the grey image gives the same edges (each channel carries a third).
    rgb = np.repeat(STEP[:, :, None], 3, axis=2)
    np.testing.assert_allclose(edges(rgb), edges(STEP[:, :, None]), atol=1e-6, rtol=0)


def test_config_and_saving():
    assert run_serialization_test(Sobel()).get_config() == {"directions": ["x", "y"]}
    assert run_serialization_test(Sobel(directions="y")).get_config() == {"directions": ["y"]}
    model = keras.Sequential(
        [keras.Input((6, 6, 1)), keras.layers.Conv2D(3, 3, kernel_initializer=Sobel(["y", "x"]))]
    )
    revived = keras.Sequential.from_config(model.get_config())
    assert isinstance(revived.layers[0].kernel_initializer, Sobel)
    assert revived.layers[0].kernel_initializer.directions == ("y", "x")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "edges.keras")
        model.save(path)
        np.testing.assert_allclose(
            keras.saving.load_model(path)(STEP[None, :, :, None]), model(STEP[None, :, :, None])
        )


def test_bad_arguments():
    for directions in ([], ("x", "z"), "diagonal", None, 3):
        with pytest.raises(ValueError, match=re.escape(f"Received: directions={directions!r}")):
            Sobel(directions=directions)
    for shape in ((3, 3), (5, 5, 1, 2), (3, 3, 3), (3, 2, 1, 1)):
        with pytest.raises(ValueError, match=re.escape(f"Received: shape={shape!r}")):
            Sobel()(shape)
    with pytest.raises(ValueError, match="Received: dtype='int32'"):
        Sobel()((3, 3, 1, 1), dtype="int32")
