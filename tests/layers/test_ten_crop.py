"""ten_crops and TenCrop: which pixels each crop takes, exact averaging of a classifier, saving."""

import keras
import numpy as np
import pytest

from i2dl_keras.layers.ten_crop import TenCrop, ten_crops
from i2dl_keras.testing import run_model_saving_test, run_serialization_test

# A 4x5 one-channel image whose pixel at row r, column c holds 10 r + c.
IMAGE = (10 * np.arange(4)[:, None] + np.arange(5)[None, :]).astype("float32")[None, :, :, None]


def _values(crop):
    return np.asarray(crop)[0, :, :, 0]


def test_ten_crops_take_the_corners_the_centre_and_their_mirror_images():
    crops = ten_crops(IMAGE, 3)
    assert len(crops) == 10
    # 3x3 crops of a 4x5 image: corners at rows 0 / 1 and columns 0 / 2; the centre at row
    # (4 - 3) // 2 = 0, column (5 - 3) // 2 = 1.
    expected = [
        [[0, 1, 2], [10, 11, 12], [20, 21, 22]],  # top-left
        [[2, 3, 4], [12, 13, 14], [22, 23, 24]],  # top-right
        [[10, 11, 12], [20, 21, 22], [30, 31, 32]],  # bottom-left
        [[12, 13, 14], [22, 23, 24], [32, 33, 34]],  # bottom-right
        [[1, 2, 3], [11, 12, 13], [21, 22, 23]],  # centre
    ]
    for k, values in enumerate(expected):
        np.testing.assert_array_equal(_values(crops[k]), values, err_msg=f"crop {k}")
        np.testing.assert_array_equal(
            _values(crops[k + 5]), np.array(values)[:, ::-1], err_msg=f"mirrored crop {k}"
        )


def test_five_crops_without_flip_and_rectangular_sizes():
    crops = TenCrop((2, 4), flip=False)(IMAGE)
    assert len(crops) == 5
    np.testing.assert_array_equal(_values(crops[3]), [[21, 22, 23, 24], [31, 32, 33, 34]])
    # Centre: row (4 - 2) // 2 = 1, column (5 - 4) // 2 = 0.
    np.testing.assert_array_equal(_values(crops[4]), [[10, 11, 12, 13], [20, 21, 22, 23]])


def _mean_crop_model(flip):
    pixels = keras.Input((4, 5, 1))
    crops = TenCrop(3, flip=flip)(pixels)
    flat = keras.layers.Flatten()
    return keras.Model(pixels, keras.layers.Average()([flat(crop) for crop in crops]))


def test_average_of_the_crops_by_hand():
    # Over the five crops the row offsets average 0.4 and the column offsets 1, so the mean
    # crop holds 10 (i + 0.4) + (j + 1) = 10 i + j + 5 at (i, j); the mirrored crops hold
    # 10 i + (2 - j) + 5 there, so the mean of all ten is 10 i + 6 in every column.
    five = np.asarray(_mean_crop_model(flip=False)(IMAGE)).reshape(3, 3)
    np.testing.assert_allclose(five, [[5, 6, 7], [15, 16, 17], [25, 26, 27]], atol=1e-5)
    ten = np.asarray(_mean_crop_model(flip=True)(IMAGE)).reshape(3, 3)
    np.testing.assert_allclose(ten, [[6, 6, 6], [16, 16, 16], [26, 26, 26]], atol=1e-5)


def _classifier(size, channels=3, classes=4):
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((size, size, channels)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )


def _ten_crop_classifier(classifier, height, width, size):
    pixels = keras.Input((height, width, 3))
    crops = TenCrop(size, name="ten_crop")(pixels)
    return keras.Model(pixels, keras.layers.Average()([classifier(crop) for crop in crops]))


def test_averages_exactly_the_ten_crops_probabilities():
    classifier = _classifier(6)
    images = np.random.default_rng(1).uniform(0, 255, (3, 8, 9, 3)).astype("float32")
    crops = [images[:, r : r + 6, c : c + 6] for r, c in ((0, 0), (0, 3), (2, 0), (2, 3), (1, 1))]
    crops += [crop[:, :, ::-1] for crop in crops]
    expected = np.mean([classifier.predict(crop, verbose=0) for crop in crops], axis=0)
    model = _ten_crop_classifier(classifier, 8, 9, 6)
    averaged = model.predict(images, verbose=0)
    np.testing.assert_allclose(averaged, expected, atol=1e-6)
    # Not the centre crop alone: the average differs from a single crop's probabilities.
    assert np.abs(averaged - classifier.predict(crops[4], verbose=0)).max() > 1e-4


def test_shapes_and_no_weights():
    layer = TenCrop((3, 4))
    assert layer.compute_output_shape((None, 8, 9, 3)) == [(None, 3, 4, 3)] * 10
    symbolic = layer(keras.Input((8, 9, 3)))
    assert [tuple(t.shape) for t in symbolic] == [(None, 3, 4, 3)] * 10
    assert layer.weights == []
    assert len(TenCrop(3, flip=False).compute_output_shape((2, 5, 5, 1))) == 5


def test_serialization():
    layer = TenCrop((3, 4), flip=False, name="crops")
    assert layer.get_config()["size"] == [3, 4] and layer.get_config()["flip"] is False
    revived = run_serialization_test(layer)
    assert revived.size == (3, 4) and revived.flip is False


def test_model_saving():
    model = _ten_crop_classifier(_classifier(6), 8, 8, 6)
    images = np.random.default_rng(2).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    run_model_saving_test(model, images)


def test_invalid_arguments_raise():
    cases = [
        (lambda: TenCrop(0), "Received: size=0"),
        (lambda: TenCrop(3, flip=1), "Received: flip=1"),
        (lambda: TenCrop((6, 3))(IMAGE), "Received: size=(6, 3)"),
        (lambda: TenCrop(5)(keras.Input((4, 8, 1))), "Received: size=(5, 5)"),
        (lambda: ten_crops(IMAGE, (3, 6)), "Received: size=(3, 6)"),
    ]
    for make, received in cases:
        with pytest.raises(ValueError) as info:
            make()
        assert str(info.value).endswith(received), str(info.value)
