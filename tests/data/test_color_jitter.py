"""color_jitter: each change has its documented form and range, per image, on 0-255 pixels."""

import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras.data.color_jitter import color_jitter


def _two_tone(n=64, channels=1):
    """n images whose left half is 100 and right half 140 (mean 120)."""
    images = np.full((n, 6, 6, channels), 100.0, "float32")
    images[:, :, 3:] = 140.0
    return images


def _uniform(color, n=64):
    return np.broadcast_to(np.asarray(color, "float32"), (n, 4, 4, 3)).copy()


def test_brightness_shifts_every_pixel_of_an_image_by_one_amount():
    images = _two_tone()
    jitter = color_jitter(brightness=0.2, seed=1)
    # As the apps use it: inside a tf.data map, on batches.
    (out,) = list(tf.data.Dataset.from_tensors(images).map(jitter).as_numpy_iterator())
    shift = out - images
    per_image = shift[:, 0, 0, 0]
    np.testing.assert_allclose(
        shift, per_image[:, None, None, None] * np.ones_like(shift), atol=1e-3
    )
    # Shifts of up to 0.2 * 255 = 51 either way, and different per image.
    assert np.abs(per_image).max() <= 51.0 + 1e-3
    assert per_image.min() < -20 and per_image.max() > 20


def test_contrast_scales_the_distance_to_the_mean():
    images = _two_tone()
    out = color_jitter(contrast=0.3, seed=2)(images).numpy()
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 120.0, atol=1e-3)
    # (x - 120) * f + 120 with one f per image, f in [0.7, 1.3].
    factor = (out[:, 0, 0, 0] - 120.0) / (100.0 - 120.0)
    np.testing.assert_allclose(
        out, 120.0 + factor[:, None, None, None] * (images - 120.0), atol=1e-3
    )
    assert factor.min() >= 0.7 - 1e-5 and factor.max() <= 1.3 + 1e-5
    assert factor.min() < 0.85 and factor.max() > 1.15


def test_saturation_changes_only_the_saturation():
    # RGB (200, 150, 100): value 200, saturation (200 - 100) / 200 = 0.5.
    out = color_jitter(saturation=0.5, seed=3)(_uniform((200, 150, 100))).numpy()
    r, g, b = out[:, 0, 0, 0], out[:, 0, 0, 1], out[:, 0, 0, 2]
    np.testing.assert_allclose(r, 200.0, atol=0.05)  # the value (largest channel) is kept
    np.testing.assert_allclose((r - g) / (r - b), 0.5, atol=1e-3)  # and so is the hue
    # Saturation factors in [1 / 1.5, 1.5]: saturations in [1/3, 0.75].
    ratio = ((r - b) / r) / 0.5
    assert ratio.min() >= 1 / 1.5 - 1e-4 and ratio.max() <= 1.5 + 1e-4
    assert ratio.min() < 0.85 and ratio.max() > 1.2


def test_saturated_colours_stay_in_range():
    # Saturation 210 / 220: raised by up to 1.5 it clips at 1, so the smallest channel is 0.
    out = color_jitter(saturation=0.5, seed=4)(_uniform((220, 30, 10))).numpy()
    assert out.min() >= 0.0 and out.max() <= 255.0
    assert np.any(out[:, 0, 0, 2] < 1.0), "some image should reach full saturation"


def test_all_changes_together_repeat_with_a_seed():
    images = np.random.default_rng(0).uniform(0, 255, (8, 5, 5, 3)).astype("float32")
    first = color_jitter(0.2, 0.2, 0.5, seed=7)(images).numpy()
    again = color_jitter(0.2, 0.2, 0.5, seed=7)(images).numpy()
    np.testing.assert_array_equal(first, again)
    assert first.min() >= 0.0 and first.max() <= 255.0
    assert np.abs(first - images).max() > 5.0
    np.testing.assert_array_equal(color_jitter()(images).numpy(), images)


def test_invalid_arguments_raise():
    cases = [
        ({"brightness": 1.5}, "Received: brightness=1.5"),
        ({"contrast": 1.0}, "Received: contrast=1.0"),
        ({"saturation": -0.1}, "Received: saturation=-0.1"),
        ({"brightness": True}, "Received: brightness=True"),
    ]
    for kwargs, received in cases:
        with pytest.raises(ValueError) as info:
            color_jitter(**kwargs)
        assert str(info.value).endswith(received), str(info.value)
    with pytest.raises(ValueError, match="needs RGB images") as info:
        color_jitter(saturation=0.5)(_two_tone(2))
    assert str(info.value).endswith("Received: saturation=0.5")
