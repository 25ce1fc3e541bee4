"""What a user holds, as arrays a model takes: image files, folders, arrays, PIL images, strings."""

from __future__ import annotations

import os
import unicodedata
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np

from i2dl_keras.data import images
from i2dl_keras.data.errors import DataError


def read_images(inputs: Any) -> list[tuple[str, np.ndarray]]:
    """Turns images in any form a user holds into `(name, pixels)` pairs, one per image.

    Accepted, alone or in a list: a path to an image file (PNG, JPEG, GIF, BMP, WebP, TIFF,
    ...), a folder (its images, searched recursively in natural order), a NumPy array (one
    image `[H, W]` or `[H, W, C]` with `C` in 1, 3 or 4, or a batch `[N, H, W]` or
    `[N, H, W, C]`; any integer or float dtype, on the 0-255 scale), or a PIL image. Files are
    decoded to uint8 with their own channels (grey stays grey, an alpha channel is composited on
    black, 16-bit images are scaled to 0-255); arrays keep their dtype and values.

    Args:
        inputs: One input or an iterable of them.

    Returns:
        `(name, pixels)` per image, in input order: the file's path, or `array[i]` / `image[i]`
        for in-memory inputs; `pixels` is `[H, W, C]`.

    Raises:
        DataError: for a path that does not exist, a folder without images, a file that is not
            a readable image, or an array of an unusable shape or dtype.
    """
    items = [inputs] if _is_single(inputs) else list(inputs)
    found: list[tuple[str, np.ndarray]] = []
    for index, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)):
            found.extend(_read_path(os.fspath(item)))
        elif isinstance(item, np.ndarray) or hasattr(item, "__array__") and not _is_pil(item):
            found.extend(_from_array(np.asarray(item), f"array[{index}]"))
        elif _is_pil(item):
            found.append((f"image[{index}]", _pil_pixels(item)))
        else:
            raise DataError(
                f"input {index}: expected an image path, a folder, a NumPy array or a PIL "
                f"image, got {type(item).__name__}"
            )
    if not found:
        raise DataError("no images given")
    return found


def read_texts(inputs: Any) -> list[str]:
    """Turns one string or an iterable of strings into a list of strings.

    Raises:
        DataError: if an item is not a string (bytes are decoded as UTF-8), or nothing is given.
    """
    items = [inputs] if isinstance(inputs, (str, bytes)) else list(inputs)
    texts = []
    for index, item in enumerate(items):
        if isinstance(item, bytes):
            try:
                item = item.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(f"input {index}: bytes that are not UTF-8 text") from None
        if not isinstance(item, str):
            raise DataError(f"input {index}: expected a string, got {type(item).__name__}")
        texts.append(item)
    if not texts:
        raise DataError("no texts given")
    return texts


def text_problem(text: str) -> str | None:
    """Why a model's answer for `text` means little (empty, or not text), or `None`.

    Args:
        text: One input text.

    Returns:
        `"empty text"` for an empty or whitespace-only string, `"not text"` when more than a
        tenth of its characters are control characters (binary data read as text), else `None`.
    """
    if not text.strip():
        return "empty text"
    control = sum(
        1 for c in text if unicodedata.category(c) in ("Cc", "Cs", "Co") and c not in "\t\n\r"
    )
    if control > 0.1 * len(text):
        return "not text"
    return None


def _is_single(inputs: Any) -> bool:
    return (
        isinstance(inputs, (str, os.PathLike, np.ndarray))
        or _is_pil(inputs)
        or not isinstance(inputs, Iterable)
    )


def _is_pil(item: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        return False
    return isinstance(item, Image.Image)


def _read_path(path: str) -> list[tuple[str, np.ndarray]]:
    if os.path.isdir(path):
        files = sorted(
            (
                os.path.join(root, name)
                for root, _, names in os.walk(path)
                for name in names
                if images.is_image_file(name)
            ),
            key=images.natural_key,
        )
        if not files:
            raise DataError(f"{path}: no images in this folder")
        return [(file, _read_file(file)) for file in files]
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file or folder")
    return [(path, _read_file(path))]


def _read_file(path: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                image.load()
                return _pil_pixels(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path}: not a readable image ({images.read_error_reason(err)})") from None


def _pil_pixels(image) -> np.ndarray:
    gray = image.mode in images.GRAY_MODES or (image.mode == "P" and images.palette_is_gray(image))
    mode = "L" if gray else "RGB"
    pixels = np.asarray(images.to_mode(image, mode), dtype=np.uint8)
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def _from_array(array: np.ndarray, name: str) -> list[tuple[str, np.ndarray]]:
    if array.dtype.kind not in "uif" and array.dtype != bool:
        raise DataError(f"{name}: expected numbers, got an array of dtype {array.dtype}")
    if array.ndim == 2:
        return [(name, array[:, :, None])]
    if array.ndim == 3 and array.shape[-1] in (1, 3, 4):
        return [(name, array)]
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim == 4 and array.shape[-1] in (1, 3, 4):
        return [(f"{name}[{i}]", image) for i, image in enumerate(array)]
    raise DataError(
        f"{name}: expected an image [H, W(, C)] or a batch [N, H, W(, C)] with C in 1, 3 or 4, "
        f"got shape {array.shape}"
    )
