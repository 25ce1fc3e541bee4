"""Checking, decoding and resizing images and masks (internal helpers of the loaders).

Local image files are read in two steps. A check pass over every file reads only its header and
structure with Pillow (`Image.open` and `verify`, plus a look at the file's end for JPEG and GIF
and at its length for BMP and TIFF), so corrupt and truncated files are named, or skipped, before
training, and the common size and channel count are known; it decodes no pixels. Then the
`tf.data` pipeline reads and decodes each file when it is needed (`read_image`, `read_mask`):
8-bit PNG, JPEG, GIF and 24-bit BMP with TensorFlow's own decoders, everything else (WebP, TIFF,
16-bit, palette, CMYK, ...) with Pillow inside the pipeline. Both paths give the pixels Pillow
gives: JPEG is decoded with the accurate integer DCT, alpha is composited on black and colour is
turned grey with Pillow's ITU-R 601 integer luma. Resizing is TensorFlow's antialiased bilinear
filter for images (within one grey level of Pillow's) and nearest neighbour for masks.

The NumPy helpers at the end resize and convert whole arrays for the in-memory sources (IDX,
builtin and synthetic data).
"""

from __future__ import annotations

import collections
import dataclasses
import io
import os
import re
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf
from PIL import Image

from i2dl_keras.data.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")

# Pillow modes whose pixels carry one grey value (everything else is treated as colour).
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}

# How the pipeline decodes a file, by index: with Pillow, or with TensorFlow's decoder of that
# format, asking for the channel count the file stores (4 = colour or grey with alpha).
IMAGE_DECODERS = ("pillow", "png1", "png3", "png4", "jpeg1", "jpeg3", "gif", "bmp")
# Masks keep palette indices, which only Pillow gives; the others are decoded as RGB.
MASK_DECODERS = ("pillow", "png", "jpeg", "bmp")

# Past this many distinct mask values the masks are probably not label images (JPEG artefacts,
# anti-aliased edges): worth telling the user.
_MANY_MASK_VALUES = 20

# A complete JPEG ends with the EOI marker; some writers append a little data after it.
_JPEG_TAIL = 1024


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


READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


def read_error_reason(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return f"not a readable image ({text})"


# --------------------------------------------------------------------------- the check pass


@dataclasses.dataclass
class ImageHeader:
    """What the check pass learns about one image file."""

    path: str
    size: tuple[int, int]  # (height, width)
    gray: bool
    decoder: int  # index into IMAGE_DECODERS
    mask_decoder: int  # index into MASK_DECODERS


def probe(path: str) -> ImageHeader:
    """Reads an image's header and checks the file's structure without decoding pixels.

    Raises:
        OSError (or another of `READ_ERRORS`): If the file is not a complete, readable image.
    """
    with warnings.catch_warnings():
        # Pillow warns (DecompressionBombWarning) on huge images; past twice its limit it raises
        # DecompressionBombError, which makes the file unreadable here.
        warnings.simplefilter("ignore")
        with open(path, "rb") as f:
            head = f.read(64)
            length = os.fstat(f.fileno()).st_size
            f.seek(0)
            with Image.open(f) as image:
                size = (image.height, image.width)
                mode, fmt = image.mode, image.format
                # Camera JPEGs that carry a second picture open as MPO; the first is the image.
                fmt = "JPEG" if fmt == "MPO" else fmt
                gray = mode in GRAY_MODES or (mode == "P" and _header_palette_is_gray(image))
                strips = _tiff_extents(image) if fmt == "TIFF" else []
                image.verify()
            complete = _looks_complete(fmt, f, head, length, strips)
        if not complete or gray is None:
            # Inconclusive from the header alone: let Pillow decode this one file to decide.
            with Image.open(path) as image:
                image.load()
                if gray is None:
                    gray = palette_is_gray(image)
    return ImageHeader(
        path, size, gray, _image_decoder(fmt, mode, head), _mask_decoder(fmt, mode, head)
    )


def _tiff_extents(image: Image.Image) -> list[int]:
    """Where each TIFF strip or tile ends, from the header's offset and byte-count tags."""
    tags = image.tag_v2
    offsets = tags.get(273) or tags.get(324) or ()
    counts = tags.get(279) or tags.get(325) or ()
    return [int(o) + int(c) for o, c in zip(offsets, counts)]


def _looks_complete(fmt: str, f, head: bytes, length: int, tiff_ends: list[int]) -> bool:
    """Whether the file holds all the data its header promises (PNG's `verify` checks itself)."""
    if fmt == "JPEG":
        f.seek(max(0, length - _JPEG_TAIL))
        return b"\xff\xd9" in f.read()
    if fmt == "GIF":
        f.seek(length - 1)
        return f.read(1) == b";"
    if fmt == "BMP" and len(head) >= 34 and int.from_bytes(head[30:34], "little") in (0, 3):
        offset = int.from_bytes(head[10:14], "little")
        width = int.from_bytes(head[18:22], "little", signed=True)
        height = int.from_bytes(head[22:26], "little", signed=True)
        bits = int.from_bytes(head[28:30], "little")
        stride = (abs(width) * bits + 31) // 32 * 4
        return offset + stride * abs(height) <= length
    if fmt == "TIFF":
        return bool(tiff_ends) and max(tiff_ends) <= length
    return True


def _png_layout(head: bytes) -> tuple[int, int]:
    """(bit depth, colour type) from a PNG's IHDR chunk."""
    return head[24], head[25]


def _bmp_plain_24_bit(head: bytes) -> bool:
    if len(head) < 34:
        return False
    bits = int.from_bytes(head[28:30], "little")
    return bits == 24 and int.from_bytes(head[30:34], "little") == 0


def _image_decoder(fmt: str, mode: str, head: bytes) -> int:
    """Which of `IMAGE_DECODERS` gives this file's pixels as Pillow would."""
    name = "pillow"
    if fmt == "PNG" and len(head) >= 26:
        depth, colour_type = _png_layout(head)
        if depth == 8 and colour_type in (0, 2, 4, 6):
            name = {0: "png1", 2: "png3", 4: "png4", 6: "png4"}[colour_type]
    elif fmt == "JPEG" and mode in ("L", "RGB"):
        name = "jpeg1" if mode == "L" else "jpeg3"
    elif fmt == "GIF":
        name = "gif"
    elif fmt == "BMP" and _bmp_plain_24_bit(head):
        name = "bmp"
    return IMAGE_DECODERS.index(name)


def _mask_decoder(fmt: str, mode: str, head: bytes) -> int:
    """Which of `MASK_DECODERS` gives this mask's raw values as Pillow would."""
    name = "pillow"
    if fmt == "PNG" and len(head) >= 26:
        depth, colour_type = _png_layout(head)
        if depth == 8 and colour_type in (0, 2, 4, 6):
            name = "png"
    elif fmt == "JPEG" and mode in ("L", "RGB"):
        name = "jpeg"
    elif fmt == "BMP" and _bmp_plain_24_bit(head):
        name = "bmp"
    return MASK_DECODERS.index(name)


def _header_palette_is_gray(image: Image.Image) -> bool | None:
    """Whether a palette read from the header holds only greys; None when it is not there."""
    palette = image.palette
    if palette is None:
        return None
    rawmode, data = palette.getdata()
    if rawmode != "RGB":
        return None
    rgb = np.frombuffer(data, dtype=np.uint8)
    rgb = rgb[: len(rgb) // 3 * 3].reshape(-1, 3)
    return bool(np.all(rgb[:, 0] == rgb[:, 1]) and np.all(rgb[:, 1] == rgb[:, 2]))


def palette_is_gray(image: Image.Image) -> bool:
    palette = image.getpalette()
    if not palette:
        return True
    rgb = np.asarray(palette, dtype=np.int32).reshape(-1, 3)
    return bool(np.all(rgb[:, 0] == rgb[:, 1]) and np.all(rgb[:, 1] == rgb[:, 2]))


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


# --------------------------------------------------------------------------- Pillow decoding


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


def pillow_pixels(contents: bytes, channels: int) -> np.ndarray:
    """Decodes an encoded image with Pillow to `uint8 [H, W, channels]` at its own size."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(io.BytesIO(contents)) as image:
            array = np.asarray(to_mode(image, "L" if channels == 1 else "RGB"), dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


def pillow_mask(contents: bytes) -> tuple[np.ndarray, bool]:
    """Decodes an encoded mask to a 2-D `int64` array of raw values, and whether it is colour.

    Colour masks come back packed as `0xRRGGBB`; grey and palette masks as their values (the
    palette index is the label, as in VOC-style masks).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(io.BytesIO(contents)) as image:
            if image.mode == "1":
                image = image.convert("L")
            elif image.mode in ("RGBA", "LA", "PA"):
                image = image.convert("RGB" if image.mode != "LA" else "L")
            elif image.mode != "P" and image.mode not in GRAY_MODES and image.mode != "RGB":
                image = image.convert("RGB")
            array = np.asarray(image)
    if array.ndim == 3:
        array = array.astype(np.int64)
        if np.all(array[..., 0] == array[..., 1]) and np.all(array[..., 1] == array[..., 2]):
            return array[..., 0], False
        return (array[..., 0] << 16) | (array[..., 1] << 8) | array[..., 2], True
    return array.astype(np.int64), False


def _pillow_mask_values(contents: bytes) -> tuple[np.ndarray, np.ndarray]:
    values, colour = pillow_mask(contents)
    return values, np.asarray(colour)


# --------------------------------------------------------------------------- in the pipeline


def _with_pillow(fn, contents, path, what: str):
    """Runs a Pillow decode inside the pipeline; a failure names the file."""
    try:
        return fn(contents)
    except READ_ERRORS as err:
        name = path.decode("utf-8", "replace") if isinstance(path, bytes) else str(path)
        raise DataError(bad_file_message(name, read_error_reason(err), what)) from None


def _shift(x: tf.Tensor, bits: int) -> tf.Tensor:
    return tf.bitwise.right_shift(x, tf.constant(bits, x.dtype))


def composite_on_black(rgba: tf.Tensor) -> tf.Tensor:
    """`uint8 [H, W, 4]` -> `uint8 [H, W, 3]`, as Pillow's `alpha_composite` on opaque black."""
    x = tf.cast(rgba, tf.int32)
    # Pillow's fixed-point blend (7 fraction bits, then a rounded division by 255).
    v = x[..., :3] * x[..., 3:] * 128 + 16384
    return tf.cast(_shift(_shift(_shift(v, 8) + v, 8), 7), tf.uint8)


def luma(rgb: tf.Tensor) -> tf.Tensor:
    """`uint8 [H, W, 3]` -> `uint8 [H, W, 1]` with Pillow's integer ITU-R 601 weights."""
    x = tf.cast(rgb, tf.int32)
    y = x[..., 0] * 19595 + x[..., 1] * 38470 + x[..., 2] * 7471 + 0x8000
    return tf.cast(_shift(y, 16), tf.uint8)[..., None]


def _decode_native(contents: tf.Tensor, name: str) -> tf.Tensor:
    stored = 1 if name.endswith("1") else 4 if name.endswith("4") else 3
    if name.startswith("jpeg"):
        # The accurate integer DCT gives the pixels Pillow's libjpeg gives.
        image = tf.io.decode_jpeg(contents, channels=stored, dct_method="INTEGER_ACCURATE")
    else:
        image = tf.io.decode_image(contents, channels=stored, expand_animations=False)
    image = tf.ensure_shape(image, [None, None, stored])
    return composite_on_black(image) if stored == 4 else image


def _set_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    have = image.shape[-1]
    if have == channels:
        return image
    return tf.tile(image, [1, 1, 3]) if channels == 3 else luma(image)


def resize_image(image: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Antialiased bilinear resize of a `uint8 [H, W, C]` image, when its size differs."""

    def resized():
        out = tf.image.resize(tf.cast(image, tf.float32), size, antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)

    same = tf.reduce_all(tf.shape(image)[:2] == tf.constant(size))
    return tf.cond(same, lambda: image, resized)


def _dispatch(decoder: tf.Tensor, branches: dict[int, Callable]):
    """Runs the branch of `decoder`, among only the decoders a file list uses.

    A list of one kind of file gets no branching at all, and two kinds one `cond`, which keeps
    the per-file work of the pipeline to reading and decoding.
    """
    kinds = sorted(branches)
    if len(kinds) == 1:
        return branches[kinds[0]]()
    if len(kinds) == 2:  # the common JPEG + PNG folder: a `cond` costs less than a switch
        first = tf.equal(tf.cast(decoder, tf.int32), kinds[0])
        return tf.cond(first, branches[kinds[0]], branches[kinds[1]])
    position = tf.argmax(tf.equal(tf.constant(kinds, tf.int32), tf.cast(decoder, tf.int32)))
    return tf.switch_case(tf.cast(position, tf.int32), [branches[k] for k in kinds])


def read_image(
    path: tf.Tensor,
    decoder: tf.Tensor,
    size: tuple[int, int],
    channels: int,
    *,
    decoders: Sequence[int] | None = None,
    resize: bool = True,
) -> tf.Tensor:
    """Reads and decodes one image file in a `tf.data` map: `uint8 [*size, channels]`.

    Args:
        path: The file name, a string scalar.
        decoder: The file's index in `IMAGE_DECODERS`, from `probe`.
        size: `(height, width)` of the output.
        channels: 1 or 3.
        decoders: The decoder indices that can occur (all when `None`).
        resize: False when every file is known to have `size` already.
    """
    contents = tf.io.read_file(path)

    def pillow():
        image = tf.numpy_function(
            lambda c, p: _with_pillow(lambda b: pillow_pixels(b, channels), c, p, "image"),
            [contents, path],
            tf.uint8,
        )
        return tf.ensure_shape(image, [None, None, channels])

    def native(name):
        return lambda: _set_channels(_decode_native(contents, name), channels)

    kinds = range(len(IMAGE_DECODERS)) if decoders is None else sorted(set(decoders))
    branches = {k: pillow if k == 0 else native(IMAGE_DECODERS[k]) for k in kinds}
    image = _dispatch(decoder, branches)
    if resize:
        image = resize_image(image, size)
    return tf.ensure_shape(image, [size[0], size[1], channels])


def nearest_resize(values: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Nearest-neighbour resize of `[H, W]`: output pixel `i` takes input `floor((i + .5) s)`.

    Integer arithmetic picks the source pixels, so no value that is not in the input appears
    and exact ratios never round the wrong way.
    """
    shape = tf.shape(values, out_type=tf.int64)

    def index(n_in, n_out):
        return (2 * tf.range(n_out, dtype=tf.int64) + 1) * n_in // (2 * n_out)

    rows = tf.gather(values, index(shape[0], size[0]), axis=0)
    return tf.gather(rows, index(shape[1], size[1]), axis=1)


def read_mask(
    path: tf.Tensor,
    decoder: tf.Tensor,
    size: tuple[int, int],
    *,
    decoders: Sequence[int] | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Reads one mask file in a `tf.data` map: raw `int64 [*size]` values and whether colour.

    Raw values are those of `pillow_mask`: grey or palette values, or `0xRRGGBB` for colour.
    `decoder` is the file's index in `MASK_DECODERS`; `decoders` the indices that can occur
    (all when `None`).
    """
    contents = tf.io.read_file(path)

    def pillow():
        values, colour = tf.numpy_function(
            lambda c, p: _with_pillow(_pillow_mask_values, c, p, "mask"),
            [contents, path],
            (tf.int64, tf.bool),
        )
        return tf.ensure_shape(values, [None, None]), tf.ensure_shape(colour, [])

    def native(name):
        def decode():
            if name == "jpeg":
                image = tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE")
            else:
                image = tf.io.decode_image(contents, channels=3, expand_animations=False)
            rgb = tf.cast(tf.ensure_shape(image, [None, None, 3]), tf.int64)
            r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
            colour = tf.reduce_any((r != g) | (g != b))
            packed = r * 65536 + g * 256 + b
            return tf.where(colour, packed, r), colour

        return decode

    kinds = range(len(MASK_DECODERS)) if decoders is None else sorted(set(decoders))
    branches = {k: pillow if k == 0 else native(MASK_DECODERS[k]) for k in kinds}
    values, colour = _dispatch(decoder, branches)
    return tf.ensure_shape(nearest_resize(values, size), list(size)), colour


def pack_grey(mask):
    """Grey mask values as `0xRRGGBB` colours, to sit beside colour masks of one data set."""
    return mask * 65536 + mask * 256 + mask


def mask_class_names(values: np.ndarray, colour: bool) -> tuple[list[str], list[str]]:
    """The class names of the sorted distinct mask values, and notes.

    Raises:
        DataError: With more than 256 distinct values (ids must fit in `uint8`).
    """
    if len(values) > 256:
        raise DataError(
            f"The masks hold {len(values):,} distinct values; at most 256 classes fit in a uint8 "
            "mask. Masks must be label images (one value per class), not photographs."
        )
    names = [f"#{int(v):06x}" for v in values] if colour else [str(int(v)) for v in values]
    notes = []
    if len(values) > _MANY_MASK_VALUES:
        notes.append(
            f"the masks hold {len(values)} distinct values, each made a class: masks saved as "
            "JPEG or with smoothed edges invent values; save label images as PNG"
        )
    return names, notes


# --------------------------------------------------------------------------- NumPy arrays


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
