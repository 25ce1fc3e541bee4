"""PSNR and SSIM against values worked out by hand, and SSIM against tf.image.ssim."""

import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras.metrics import psnr, ssim


def test_psnr_hand_computed():
    clean = np.zeros((3, 4, 4, 1))
    noisy = clean.copy()
    noisy[0] += 0.1  # MSE 0.01 -> 10 log10(1 / 0.01) = 20 dB
    noisy[1, :2] = 0.5  # half the pixels off by 0.5: MSE 0.125 -> 9.0309 dB
    noisy[2, 0, 0, 0] = 1.0  # one pixel of 16 off by 1: MSE 1/16 -> 12.0412 dB
    np.testing.assert_allclose(psnr(noisy, clean), [20.0, 9.030900, 12.041200], atol=1e-5)
    # On the byte scale the same errors give the same PSNR.
    np.testing.assert_allclose(psnr(noisy * 255, clean * 255, max_val=255), psnr(noisy, clean))
    # Symmetric, per image, and a single image gives a scalar.
    np.testing.assert_allclose(psnr(clean, noisy), psnr(noisy, clean))
    assert psnr(noisy[0], clean[0]).shape == ()
    assert np.isinf(psnr(clean, clean)).all()


def test_ssim_hand_computed_uniform_window():
    # A 2-pixel Gaussian window has equal weights, so on 2x2 images one patch covers the image
    # with plain means: x = [[0, 1], [1, 0]], y = x / 2 give mu_x = 0.5, mu_y = 0.25,
    # var_x = 0.25, var_y = 0.0625, cov = 0.125 (population moments).
    x = np.array([[0.0, 1.0], [1.0, 0.0]])[None, :, :, None]
    y = x / 2
    c1, c2 = 0.01**2, 0.03**2
    expected = (2 * 0.5 * 0.25 + c1) * (2 * 0.125 + c2) / ((0.25 + 0.0625 + c1) * (0.3125 + c2))
    np.testing.assert_allclose(ssim(x, y, filter_size=2), [expected], rtol=1e-12)
    assert expected == pytest.approx(0.80006 * 0.80057, abs=1e-5)  # luminance x structure


def test_ssim_constant_images_and_identity():
    # Flat images have no variance: SSIM is the luminance term (2ab + C1) / (a^2 + b^2 + C1).
    a = np.full((1, 12, 12, 1), 0.5)
    b = np.full((1, 12, 12, 1), 0.25)
    c1 = 0.01**2
    np.testing.assert_allclose(ssim(a, b), [(0.25 + c1) / (0.3125 + c1)], rtol=1e-12)
    rng = np.random.default_rng(0)
    images = rng.random((2, 16, 16, 3))
    np.testing.assert_allclose(ssim(images, images), [1.0, 1.0], atol=1e-12)
    # Noise lowers it, more noise lowers it more.
    low = ssim(np.clip(images + 0.05 * rng.normal(size=images.shape), 0, 1), images)
    high = ssim(np.clip(images + 0.3 * rng.normal(size=images.shape), 0, 1), images)
    assert np.all(high < low) and np.all(low < 1.0)


@pytest.mark.parametrize("shape", [(3, 16, 16, 1), (2, 20, 13, 3)])
def test_ssim_matches_tensorflow(shape):
    rng = np.random.default_rng(1)
    x = rng.random(shape).astype(np.float32)
    y = np.clip(x + 0.2 * rng.normal(size=shape), 0, 1).astype(np.float32)
    expected = tf.image.ssim(tf.constant(x), tf.constant(y), max_val=1.0).numpy()
    np.testing.assert_allclose(ssim(x, y), expected, atol=1e-5)


def test_small_images_use_a_smaller_window():
    rng = np.random.default_rng(2)
    x = rng.random((2, 8, 8, 1))
    np.testing.assert_allclose(ssim(x, x), [1.0, 1.0], atol=1e-12)
    assert ssim(x, 1 - x).shape == (2,)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: psnr(np.zeros((1, 4, 4, 1)), np.zeros((1, 4, 4, 3))), "same shape"),
        (lambda: psnr(np.zeros((4, 4)), np.zeros((4, 4))), "at least 3 axes"),
        (lambda: psnr(np.zeros((4, 4, 1)), np.zeros((4, 4, 1)), max_val=0), "max_val"),
        (lambda: ssim(np.zeros((4, 4, 1)), np.zeros((4, 4, 1)), filter_size=0), "filter_size"),
        (lambda: ssim(np.zeros((4, 4, 1)), np.zeros((4, 4, 1)), filter_sigma=-1), "filter_sig"),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
