"""Decoding, checking and resizing images and masks in NumPy (internal helpers of the loaders).

Local image files are decoded eagerly with Pillow into NumPy arrays that then feed
`tf.data.Dataset.from_tensor_slices`: the data sets this project reads fit in memory, and decoding
in Python lets every error name its file. Each file is read twice: a cheap first pass
(`PIL.Image.verify` plus the header's size and mode) finds corrupt files and the common size
before any pixel is decoded, and the second pass decodes each image straight to its final size and
channel count, so full-size originals are never held all at once.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
import warnings
from collections.abc import Sequence

import numpy as np
from PIL import Image

from i2dl_keras.data.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")

# Pillow modes whose pixels carry one grey value (everything else is treated as colour).
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}

# Past this many distinct mask values the masks are probably not label images (JPEG artefacts,
# anti-aliased edges): worth telling the user.
_MANY_MASK_VALUES = 20


def natural_key(name: str) -> list:
    """Sort key that orders `2.png` before `10.png`."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def is_image_file(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def bad_file_message(path: str, reason: str, what: str = "image") -> str:
    return (
        f"Cannot read {what} {path}: {reason}. Replace or remove the file, or rerun with "
        "--skip-bad-files (skip_bad_files=True) to skip unreadable files."
    )


@dataclasses.dataclass
class ImageHeader:
    """What the first pass learns about one image file."""

    path: str
    size: tuple[int, int]  # (height, width)
    gray: bool


def probe(path: str) -> ImageHeader:
    """Reads an image's header and verifies the file; raises `OSError`-like errors if corrupt."""
    with warnings.catch_warnings():
        # Pillow warns (DecompressionBombWarning) on huge images; the size check below is ours.
        warnings.simplefilter("ignore")
        with Image.open(path) as image:
            size = (image.height, image.width)
            gray = image.mode in GRAY_MODES or (image.mode == "P" and palette_is_gray(image))
            image.verify()
    return ImageHeader(path, size, gray)


def palette_is_gray(image: Image.Image) -> bool:
    palette = image.getpalette()
    if not palette:
        return True
    rgb = np.asarray(palette, dtype=np.int32).reshape(-1, 3)
    return bool(np.all(rgb[:, 0] == rgb[:, 1]) and np.all(rgb[:, 1] == rgb[:, 2]))


READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


def probe_all(
    paths: Sequence[str], *, skip_bad_files: bool, what: str = "image"
) -> tuple[list[ImageHeader | None], list[str]]:
    """Probes every path; returns headers (None for skipped bad files) and the bad paths."""
    headers: list[ImageHeader | None] = []
    bad: list[str] = []
    for path in paths:
        try:
            headers.append(probe(path))
        except READ_ERRORS as err:
            if not skip_bad_files:
                raise DataError(bad_file_message(path, read_error_reason(err), what)) from None
            bad.append(path)
            headers.append(None)
    return headers, bad


def read_error_reason(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return f"not a readable image ({text})"


def target_size(
    sizes: Sequence[tuple[int, int]], image_size: tuple[int, int] | None, what: str = "images"
) -> tuple[tuple[int, int], list[str]]:
    """The size every image gets, and a note when images are resized.

    With `image_size` given that size wins; otherwise the most common size (ties broken by the
    larger area, then the first seen) so that mixed-size folders still batch.
    """
    notes = []
    if image_size is not None:
        resized = sum(1 for s in sizes if tuple(s) != tuple(image_size))
        if resized:
            notes.append(
                f"resized {resized:,} of {len(sizes):,} {what} to "
                f"{image_size[0]}x{image_size[1]} (height x width) as asked"
            )
        return tuple(image_size), notes
    counts = collections.Counter(tuple(s) for s in sizes)
    best = max(counts, key=lambda s: (counts[s], s[0] * s[1]))
    resized = len(sizes) - counts[best]
    if resized:
        notes.append(
            f"{what} had {len(counts)} different sizes: resized {resized:,} of {len(sizes):,} to "
            f"the most common size {best[0]}x{best[1]} (height x width); pass an image size to "
            "choose another"
        )
    return best, notes


def decode_image(path: str, size: tuple[int, int], channels: int) -> np.ndarray:
    """Decodes one image to `uint8 [H, W, channels]`, resizing bilinearly when needed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(path) as image:
            image = to_mode(image, "L" if channels == 1 else "RGB")
            if (image.height, image.width) != tuple(size):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return array


def to_mode(image: Image.Image, mode: str) -> Image.Image:
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F") and mode in ("L", "RGB"):
        # Pillow clips 16-bit and float images when converting; rescale their range instead.
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        if image.mode == "F" and array.max() <= 1.0:
            top = 1.0
        image = Image.fromarray(np.clip(np.rint(array / top * 255.0), 0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Composite transparent pixels on black rather than keeping whatever colour they hide.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert(mode)


def decode_mask(path: str, size: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """Decodes a mask to a 2-D integer array of raw values, and whether it holds colours.

    Colour masks come back packed as `0xRRGGBB`; grey and palette masks as their values (the
    palette index is the label, as in VOC-style masks). Resizing uses nearest neighbour only, so
    no value that is not in the file appears.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(path) as image:
            if image.mode == "1":
                image = image.convert("L")
            elif image.mode in ("RGBA", "LA", "PA"):
                image = image.convert("RGB" if image.mode != "LA" else "L")
            elif image.mode != "P" and image.mode not in GRAY_MODES and image.mode != "RGB":
                image = image.convert("RGB")
            if (image.height, image.width) != tuple(size):
                image = image.resize((size[1], size[0]), Image.Resampling.NEAREST)
            array = np.asarray(image)
    if array.ndim == 3:
        array = array.astype(np.int64)
        if np.all(array[..., 0] == array[..., 1]) and np.all(array[..., 1] == array[..., 2]):
            return array[..., 0], False
        return (array[..., 0] << 16) | (array[..., 1] << 8) | array[..., 2], True
    return array.astype(np.int64), False


def pack_grey(mask: np.ndarray) -> np.ndarray:
    """A grey mask's values as `0xRRGGBB` colours, to sit beside colour masks of one data set."""
    return (mask << 16) | (mask << 8) | mask


def masks_to_ids(
    masks: Sequence[np.ndarray], colour: bool
) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Maps the distinct values of all masks, in sorted order, to class ids 0..K-1.

    Returns the `uint8` id masks, the class names (the values, or `#rrggbb` for colour masks) and
    notes.
    """
    values = np.unique(np.concatenate([np.unique(m) for m in masks])) if masks else np.array([])
    if len(values) > 256:
        raise DataError(
            f"The masks hold {len(values):,} distinct values; at most 256 classes fit in a uint8 "
            "mask. Masks must be label images (one value per class), not photographs."
        )
    if colour:
        names = [f"#{int(v):06x}" for v in values]
    else:
        names = [str(int(v)) for v in values]
    ids = [np.searchsorted(values, m).astype(np.uint8) for m in masks]
    notes = []
    if len(values) > _MANY_MASK_VALUES:
        notes.append(
            f"the masks hold {len(values)} distinct values, each made a class: masks saved as "
            "JPEG or with smoothed edges invent values; save label images as PNG"
        )
    return ids, names, notes


def resize_array_images(
    images: np.ndarray, size: tuple[int, int], *, nearest: bool = False
) -> np.ndarray:
    """Resizes a `uint8 [N, H, W, C]` array with Pillow (bilinear, or nearest for masks)."""
    if tuple(images.shape[1:3]) == tuple(size):
        return images
    method = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    out = np.empty((len(images), size[0], size[1], images.shape[3]), dtype=np.uint8)
    for i, image in enumerate(images):
        for c in range(images.shape[3]):
            out[i, :, :, c] = np.asarray(
                Image.fromarray(image[:, :, c]).resize((size[1], size[0]), method)
            )
    return out


def set_channels(images: np.ndarray, channels: int | None) -> np.ndarray:
    """Converts a `uint8 [N, H, W, C]` array to the asked channel count (None: unchanged)."""
    if channels is None or images.shape[3] == channels:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=3)
    # ITU-R 601 luma, as Pillow's convert("L") and tf.image.rgb_to_grayscale use.
    weights = np.array([0.299, 0.587, 0.114])
    gray = np.tensordot(images[..., :3].astype(np.float64), weights, axes=([3], [0]))
    return np.clip(np.rint(gray), 0, 255).astype(np.uint8)[..., None]
