"""The fused affine augmentation: exact geometry of the transform, statistics of the random one."""

import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras.data.augment import affine_transforms, random_affine


def _warp(image, angle=0.0, scale=1.0, shift=(0.0, 0.0)):
    h, w = image.shape[:2]
    t = affine_transforms([angle], [scale], [shift], h, w)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.constant(image[None], tf.float32),
        transforms=t,
        output_shape=[h, w],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    ).numpy()[0]


def test_identity_shift_and_half_turn_are_exact():
    image = np.arange(20, dtype=np.float32).reshape(4, 5, 1)
    np.testing.assert_allclose(_warp(image), image, atol=1e-5)
    shifted = _warp(image, shift=(1.0, 2.0))  # one pixel right, two down, zeros come in
    expected = np.zeros_like(image)
    expected[2:, 1:] = image[:2, :4]
    np.testing.assert_allclose(shifted, expected, atol=1e-5)
    np.testing.assert_allclose(_warp(image, angle=np.pi), image[::-1, ::-1], atol=1e-4)


def test_quarter_turn_is_counterclockwise_on_a_square():
    image = np.zeros((3, 3, 1), np.float32)
    image[0, 1] = 1.0  # top middle
    turned = _warp(image, angle=np.pi / 2)
    assert turned[1, 0, 0] == pytest.approx(1.0, abs=1e-5)  # now left middle
    assert turned.sum() == pytest.approx(1.0, abs=1e-5)


def test_zoom_out_shrinks_content_towards_the_centre():
    image = np.ones((9, 9, 1), np.float32)
    zoomed = _warp(image, scale=2.0)
    assert zoomed[4, 4, 0] == pytest.approx(1.0)
    assert zoomed[0, 0, 0] == 0.0 and zoomed[8, 8, 0] == 0.0


def test_random_affine_varies_per_image_and_keeps_shape():
    tf.random.set_seed(0)
    images = tf.tile(tf.constant(np.eye(8, dtype=np.float32)[None, ..., None]), [16, 1, 1, 1])
    out = random_affine(images, rotation=20, zoom=0.1, translation=0.1, seed=3).numpy()
    assert out.shape == images.shape
    diffs = [np.abs(out[i] - out[0]).sum() for i in range(1, 16)]
    assert min(diffs) > 0.1, "every image gets its own warp"
    np.testing.assert_allclose(random_affine(images).numpy(), images.numpy(), atol=1e-5)


def test_bad_ranges_raise():
    images = tf.zeros((1, 4, 4, 1))
    with pytest.raises(ValueError, match="Received: rotation=-1"):
        random_affine(images, rotation=-1)
    with pytest.raises(ValueError, match="Received: zoom=1.5"):
        random_affine(images, zoom=1.5)
