"""ImagePreprocessing: raw decoded pixels of any dtype, channels and size in, model input out."""

import numpy as np
import pytest

from i2dl_keras.layers import ImagePreprocessing
from i2dl_keras.testing import run_layer_test, run_model_saving_test, run_serialization_test


def test_config():
    layer = ImagePreprocessing(size=(8, 6), channels=1, scale=2.0, offset=-1.0, name="pre")
    revived = run_serialization_test(layer)
    assert revived.size == (8, 6) and revived.channels == 1
    assert (revived.scale, revived.offset) == (2.0, -1.0)


def test_layer_contract():
    run_layer_test(
        ImagePreprocessing,
        {"size": (4, 4), "channels": 3},
        input_shape=(2, 8, 8, 1),
        expected_output_shape=(2, 4, 4, 3),
        expected_num_trainable_weights=0,
        run_training_check=False,
    )


def test_correctness_channels_and_scale():
    rgb = np.zeros((1, 2, 2, 3), np.uint8)
    rgb[..., 0] = 100
    rgb[..., 1] = 200
    rgb[..., 2] = 50
    grey = ImagePreprocessing(channels=1, scale=1.0)(rgb)
    # 0.299 * 100 + 0.587 * 200 + 0.114 * 50 = 153.0
    np.testing.assert_allclose(np.asarray(grey), np.full((1, 2, 2, 1), 153.0), atol=1e-4)

    rgba = np.concatenate([rgb, np.full((1, 2, 2, 1), 7, np.uint8)], axis=-1)
    np.testing.assert_allclose(np.asarray(ImagePreprocessing(channels=3)(rgba)), rgb / 255.0)

    no_axis = np.full((1, 2, 2), 51, np.int32)
    out = np.asarray(ImagePreprocessing(channels=3, scale=1 / 255, offset=1.0)(no_axis))
    np.testing.assert_allclose(out, np.full((1, 2, 2, 3), 1.2), atol=1e-6)


def test_channels_known_only_at_run_time():
    import tensorflow as tf

    layer = ImagePreprocessing(channels=1, scale=1.0)
    traced = tf.function(layer, input_signature=[tf.TensorSpec([None, None, None, None])])
    rgb = np.zeros((1, 1, 1, 3), np.float32)
    rgb[..., 0] = 100
    np.testing.assert_allclose(np.asarray(traced(rgb)), [[[[29.9]]]], atol=1e-4)
    grey_alpha = np.array([[[[50.0, 255.0]]]], np.float32)
    np.testing.assert_allclose(np.asarray(traced(grey_alpha)), [[[[50.0]]]], atol=1e-4)
    colour = ImagePreprocessing(channels=3, scale=1.0)
    traced = tf.function(colour, input_signature=[tf.TensorSpec([None, None, None, None])])
    rgba = np.array([[[[1.0, 2.0, 3.0, 4.0]]]], np.float32)
    np.testing.assert_array_equal(np.asarray(traced(rgba)), [[[[1.0, 2.0, 3.0]]]])
    np.testing.assert_array_equal(np.asarray(traced(rgba[..., :1])), [[[[1.0, 1.0, 1.0]]]])


def test_resizes_only_when_needed():
    image = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    same = ImagePreprocessing(size=(4, 4), channels=1, scale=1.0)(image)
    np.testing.assert_array_equal(np.asarray(same), image)
    half = np.asarray(ImagePreprocessing(size=(2, 2), channels=1, scale=1.0)(image))
    # Antialiased 2x shrink: a triangle filter of radius 2 input pixels. Output pixel 0 sits at
    # input coordinate 1.0, so input pixels 0, 1, 2 (centres 0.5, 1.5, 2.5) weigh 3/7, 3/7, 1/7
    # along each axis; on the ramp 4 * row + col that gives 4 * 5/7 + 5/7 = 25/7 and so on.
    np.testing.assert_allclose(half[0, :, :, 0], np.array([[25, 36], [69, 80]]) / 7, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs",
    [{"size": (0, 4)}, {"size": 4}, {"channels": 2}, {"scale": float("nan")}, {"offset": "x"}],
)
def test_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="Received"):
        ImagePreprocessing(**kwargs)


def test_saves_and_reloads():
    import keras

    inputs = keras.Input((None, None, 3))
    x = ImagePreprocessing(size=(6, 6), channels=1)(inputs)
    model = keras.Model(inputs, keras.layers.Flatten()(x))
    run_model_saving_test(model, np.random.default_rng(0).integers(0, 256, (2, 9, 7, 3)))
