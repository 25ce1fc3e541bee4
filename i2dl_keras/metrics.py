"""Image-quality metrics: peak signal-to-noise ratio (PSNR) and structural similarity (SSIM).

Plain NumPy functions (float64 inside), for judging a denoiser or any image-to-image model
outside the training loop. Both take images whose last three axes are `(height, width,
channels)` and return one value per image, so `psnr(batch_a, batch_b)` on `[N, H, W, C]`
arrays gives `N` values: average them as the task needs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["psnr", "ssim"]


def _pair(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(
            f"`x` and `y` must have the same shape. Received: x.shape={x.shape}, y.shape={y.shape}"
        )
    if x.ndim < 3:
        raise ValueError(
            "`x` and `y` must be images (..., height, width, channels) with at least 3 axes. "
            f"Received: x.shape={x.shape}"
        )
    return x, y


def _check_max_val(max_val: Any) -> float:
    if isinstance(max_val, bool) or not isinstance(max_val, (int, float)) or not max_val > 0:
        raise ValueError(
            "`max_val` must be a positive number, the largest possible pixel value "
            f"(1.0 for pixels in [0, 1], 255 for bytes). Received: max_val={max_val!r}"
        )
    return float(max_val)


def psnr(x: Any, y: Any, max_val: float = 1.0) -> np.ndarray:
    """Peak signal-to-noise ratio of each image in `x` against the same image in `y`, in dB.

    `PSNR = 10 * log10(max_val**2 / MSE)`, with the mean squared error taken over the image's
    height, width and channels. Each halving of the error's standard deviation adds about 6 dB.
    Identical images have no error and an infinite PSNR (as `tf.image.psnr` returns); clip
    before averaging when that can happen.

    Args:
        x: Images, an array `(..., height, width, channels)`.
        y: Images of the same shape, e.g. the clean references.
        max_val: The largest possible pixel value. Defaults to `1.0`.

    Returns:
        A float64 array of the leading axes' shape (a 0-d array for a single image).

    Raises:
        ValueError: if the shapes differ, have fewer than 3 axes, or `max_val` is not positive.

    Example:

    >>> clean = np.zeros((1, 4, 4, 1))
    >>> float(i2dl_keras.metrics.psnr(clean + 0.1, clean)[0])  # MSE 0.01
    20.0
    """
    x, y = _pair(x, y)
    max_val = _check_max_val(max_val)
    mse = np.mean((x - y) ** 2, axis=(-3, -2, -1))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(max_val**2 / mse)


def _gaussian_window(size: int, sigma: float) -> np.ndarray:
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    window = np.exp(-(coords**2) / (2.0 * sigma**2))
    return window / window.sum()


def _filter(images: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Valid weighted means over every `n x n` patch (separable: along height, then width)."""
    n = len(window)
    out = np.lib.stride_tricks.sliding_window_view(images, n, axis=-3) @ window
    return np.lib.stride_tricks.sliding_window_view(out, n, axis=-2) @ window


def ssim(
    x: Any,
    y: Any,
    max_val: float = 1.0,
    filter_size: int = 11,
    filter_sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> np.ndarray:
    """Structural similarity index (Wang et al., 2004) of each image in `x` against `y`.

    Over every `filter_size x filter_size` patch, weighted by a Gaussian of standard deviation
    `filter_sigma`, SSIM compares local means, variances and covariance:

    `SSIM = (2 mu_x mu_y + C1) (2 cov_xy + C2) / ((mu_x^2 + mu_y^2 + C1) (var_x + var_y + C2))`

    with `C1 = (k1 * max_val)**2` and `C2 = (k2 * max_val)**2`; the result is the mean over the
    patches that fit in the image ("valid", no padding) and over the channels. The defaults are
    the paper's and `tf.image.ssim`'s, whose values this function matches. Images smaller than
    `filter_size` use a window as large as their shorter side (where `tf.image.ssim` fails).
    Identical images score 1; the score falls towards 0 (and can go negative) as structure is
    lost.

    Args:
        x: Images, an array `(..., height, width, channels)`.
        y: Images of the same shape, e.g. the clean references.
        max_val: The largest possible pixel value. Defaults to `1.0`.
        filter_size: Side of the Gaussian window. Defaults to `11`.
        filter_sigma: Standard deviation of the Gaussian window. Defaults to `1.5`.
        k1: Stabiliser of the luminance term. Defaults to `0.01`.
        k2: Stabiliser of the contrast-structure term. Defaults to `0.03`.

    Returns:
        A float64 array of the leading axes' shape (a 0-d array for a single image).

    Raises:
        ValueError: if the shapes differ or have fewer than 3 axes, or an argument is out of
            range.

    Example:

    >>> a = np.random.default_rng(0).random((2, 16, 16, 1))
    >>> i2dl_keras.metrics.ssim(a, a)
    array([1., 1.])
    """
    x, y = _pair(x, y)
    max_val = _check_max_val(max_val)
    if isinstance(filter_size, bool) or not isinstance(filter_size, int) or filter_size < 1:
        raise ValueError(
            f"`filter_size` must be a positive integer. Received: filter_size={filter_size!r}"
        )
    for name, value in (("filter_sigma", filter_sigma), ("k1", k1), ("k2", k2)):
        ok = not isinstance(value, bool) and isinstance(value, (int, float))
        if not ok or not (value > 0 and math.isfinite(value)):
            raise ValueError(f"`{name}` must be a positive number. Received: {name}={value!r}")
    size = min(filter_size, x.shape[-3], x.shape[-2])
    window = _gaussian_window(size, float(filter_sigma))
    c1 = (k1 * max_val) ** 2
    c2 = (k2 * max_val) ** 2
    mu_x, mu_y = _filter(x, window), _filter(y, window)
    var_x = _filter(x * x, window) - mu_x**2
    var_y = _filter(y * y, window) - mu_y**2
    cov = _filter(x * y, window) - mu_x * mu_y
    luminance = (2.0 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    structure = (2.0 * cov + c2) / (var_x + var_y + c2)
    return np.mean(luminance * structure, axis=(-3, -2, -1))
