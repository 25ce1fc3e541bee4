"""Encoded image inputs: their size read from the header, and the pixel limit checked on it.

`tf.io.decode_image` allocates the whole image before the model resizes it, so a few hundred
kilobytes of PNG can claim gigabytes. `read_image_header` reads the size that the decoder would
allocate from the first bytes of each format `tf.io.decode_image` accepts (PNG, JPEG, GIF, BMP,
WebP, JPEG XL), without decoding, and `check_image_bytes` refuses an image over the limit, or
bytes that are no image, with one sentence before any of them reaches the model.
"""

from __future__ import annotations

import dataclasses
import re
import struct

import numpy as np
import tensorflow as tf

from i2dl_keras.serving.errors import ServingError

# A 12-megapixel camera photo (4032x3024) fits; decoded as RGB it takes 50 MB (200 MB as
# float32), which bounds what one image adds to the server's memory.
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096

_FORMATS = "PNG/JPEG/GIF/BMP/WebP/JPEG XL"
_IMAGE_INPUT = re.compile(r"(.*_)?images?_bytes")
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_NO_LENGTH = {0x01, *range(0xD0, 0xD8)}
_JXL_CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"
_JXL_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}


@dataclasses.dataclass(frozen=True)
class ImageHeader:
    """What an encoded image's header says about the pixels it decodes to.

    Args:
        format: `"PNG"`, `"JPEG"`, `"GIF"`, `"BMP"`, `"WebP"` or `"JPEG XL"`.
        width: Width of the image (the canvas, for animations).
        height: Height of the image (the canvas, for animations).
        frames: Frames of an animated GIF or WebP; `1` otherwise.
        pixels: Pixels the decoder allocates: `width * height` per frame (for a GIF, each frame
            at least the canvas).
    """

    format: str
    width: int
    height: int
    frames: int
    pixels: int


class _Corrupt(Exception):
    """The bytes start like an image format but its header cannot be read."""


def is_image_input(name: str, spec: tf.TensorSpec) -> bool:
    """Whether a signature input carries encoded images: a string named like `image_bytes`."""
    return spec.dtype == tf.string and _IMAGE_INPUT.fullmatch(name) is not None


def read_image_header(data: bytes) -> ImageHeader | None:
    """The format and size of an encoded image, read from its header without decoding it.

    Args:
        data: The encoded bytes, as sent to `tf.io.decode_image`.

    Returns:
        The header, or `None` when `data` does not start like an image `tf.io.decode_image`
        reads.

    Raises:
        ValueError: If `data` starts like an image format but its header is truncated or
            corrupt; the message names the format.
    """
    readers = (
        (b"\x89PNG\r\n\x1a\n", "PNG", _png),
        (b"\xff\xd8\xff", "JPEG", _jpeg),
        (b"GIF8", "GIF", _gif),
        (b"BM", "BMP", _bmp),
        (b"\xff\x0a", "JPEG XL", _jxl_codestream),
        (_JXL_CONTAINER, "JPEG XL", _jxl_container),
    )
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        readers = ((b"RIFF", "WebP", _webp),)
    for magic, name, reader in readers:
        if data.startswith(magic):
            try:
                width, height, frames, pixels = reader(data)
            except (_Corrupt, struct.error, IndexError, ValueError):
                raise ValueError(f"truncated or corrupt {name} header") from None
            return ImageHeader(name, width, height, frames, pixels)
    return None


def check_image_bytes(values: np.ndarray, name: str, max_pixels: int) -> None:
    """Raises `ServingError` (HTTP 400) for the first item that is no image or is too large.

    Args:
        values: The encoded images of one input (any shape; items are counted flat).
        name: The input's name, for the message.
        max_pixels: Most pixels one image may decode to.
    """
    for i, item in enumerate(values.reshape(-1)):
        try:
            header = read_image_header(bytes(item))
        except ValueError as exc:
            raise ServingError(f"instance {i} of input {name!r}: {exc}") from None
        if header is None:
            raise ServingError(f"instance {i} of input {name!r}: not a {_FORMATS} image")
        if header.pixels > max_pixels:
            frames = f" with {header.frames} frames" if header.frames > 1 else ""
            raise ServingError(
                f"instance {i} of input {name!r}: the {header.format} image is "
                f"{header.width}x{header.height}{frames} ({header.pixels:,} pixels), more than "
                f"the limit of {max_pixels:,} pixels (--max-image-pixels)"
            )


def _png(data: bytes) -> tuple[int, int, int, int]:
    # The IHDR chunk comes first: length 13, then width and height.
    if data[12:16] != b"IHDR":
        raise _Corrupt
    width, height = struct.unpack_from(">II", data, 16)
    return width, height, 1, width * height


def _jpeg(data: bytes) -> tuple[int, int, int, int]:
    # Walk the marker segments up to the first start-of-frame, skipping stray bytes between
    # segments as libjpeg does.
    pos = 2
    while True:
        pos = data.index(b"\xff", pos)
        while data[pos] == 0xFF:
            pos += 1
        marker = data[pos]
        pos += 1
        if marker in _JPEG_SOF:
            height, width = struct.unpack_from(">HH", data, pos + 3)
            return width, height, 1, width * height
        if marker in (0xD9, 0xDA):  # end of image or scan data before any frame header
            raise _Corrupt
        if marker not in _JPEG_NO_LENGTH:
            (length,) = struct.unpack_from(">H", data, pos)
            if length < 2:
                raise _Corrupt
            pos += length


def _gif(data: bytes) -> tuple[int, int, int, int]:
    # giflib reads every frame's raster before TensorFlow keeps the first: count them all.
    width, height, flags = struct.unpack_from("<HHB", data, 6)
    canvas = width * height
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    frames = pixels = 0
    while pos < len(data) and data[pos] != 0x3B:
        block = data[pos]
        if block == 0x2C:
            frame_w, frame_h, frame_flags = struct.unpack_from("<HHB", data, pos + 5)
            frames += 1
            pixels += max(canvas, frame_w * frame_h)
            pos += 10 + (3 << ((frame_flags & 7) + 1) if frame_flags & 0x80 else 0) + 1
        elif block == 0x21:
            pos += 2
        else:
            break
        while pos < len(data) and data[pos]:  # data sub-blocks, ended by a zero length
            pos += data[pos] + 1
        pos += 1
    return width, height, max(frames, 1), max(pixels, canvas)


def _bmp(data: bytes) -> tuple[int, int, int, int]:
    # TensorFlow's BMP decoder reads both as signed 32-bit; a negative height is top-down.
    width, height = struct.unpack_from("<ii", data, 18)
    width, height = abs(width), abs(height)
    return width, height, 1, width * height


def _webp(data: bytes) -> tuple[int, int, int, int]:
    kind = data[12:16]
    payload = 20
    if kind == b"VP8 ":
        if data[payload + 3 : payload + 6] != b"\x9d\x01\x2a":
            raise _Corrupt
        width, height = struct.unpack_from("<HH", data, payload + 6)
        width, height = width & 0x3FFF, height & 0x3FFF
        return width, height, 1, width * height
    if kind == b"VP8L":
        if data[payload] != 0x2F:
            raise _Corrupt
        (bits,) = struct.unpack_from("<I", data, payload + 1)
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        return width, height, 1, width * height
    if kind != b"VP8X":
        raise _Corrupt
    size = data[payload + 4 : payload + 10]
    if len(size) < 6:
        raise _Corrupt
    width = int.from_bytes(size[:3], "little") + 1
    height = int.from_bytes(size[3:], "little") + 1
    frames, pos = 0, 12
    while pos + 8 <= len(data):
        (length,) = struct.unpack_from("<I", data, pos + 4)
        frames += data[pos : pos + 4] == b"ANMF"
        pos += 8 + length + (length & 1)
    frames = max(frames, 1)
    return width, height, frames, width * height * frames


def _jxl_codestream(data: bytes) -> tuple[int, int, int, int]:
    # The SizeHeader after the 0xFF0A signature, bit-packed least significant bit first.
    bits = int.from_bytes(data[2:14], "little")
    available = 8 * len(data[2:14])
    pos = 0

    def read(count: int) -> int:
        nonlocal pos
        if pos + count > available:
            raise _Corrupt
        value = (bits >> pos) & ((1 << count) - 1)
        pos += count
        return value

    def dimension(small: bool) -> int:
        if small:
            return (read(5) + 1) * 8
        return read((9, 13, 18, 30)[read(2)]) + 1

    small = bool(read(1))
    height = dimension(small)
    ratio = read(3)
    if ratio:
        num, den = _JXL_RATIOS[ratio]
        width = height * num // den
    else:
        width = dimension(small)
    return width, height, 1, width * height


def _jxl_container(data: bytes) -> tuple[int, int, int, int]:
    # ISO boxes: the codestream is in the first `jxlc` box, or split over `jxlp` boxes whose
    # payload starts with a 4-byte index.
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        if kind in (b"jxlc", b"jxlp"):
            start = pos + header + (4 if kind == b"jxlp" else 0)
            if data[start : start + 2] != b"\xff\x0a":
                raise _Corrupt
            return _jxl_codestream(data[start:])
        if size == 0 or size < header:
            break
        pos += size
    raise _Corrupt
