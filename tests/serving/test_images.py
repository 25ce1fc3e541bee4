"""Image headers: sizes read without decoding, and the pixel limit on image-bytes inputs."""

import io
import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from i2dl_keras.serving import DEFAULT_MAX_IMAGE_PIXELS, ServingError
from i2dl_keras.serving.images import check_image_bytes, is_image_input, read_image_header


def _pil(fmt: str, width: int, height: int, frames: int = 1, mode: str = "RGB", **options) -> bytes:
    rng = np.random.default_rng(0)
    images = [
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(mode)
        for _ in range(frames)
    ]
    out = io.BytesIO()
    if frames > 1:
        images[0].save(out, fmt, save_all=True, append_images=images[1:], duration=50, **options)
    else:
        images[0].save(out, fmt, **options)
    return out.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG signature and IHDR for a `width` x `height` greyscale image, and no pixel data."""
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))


@pytest.mark.parametrize(
    "fmt, encode",
    [
        ("PNG", lambda w, h: tf.io.encode_png(np.zeros((h, w, 1), np.uint8)).numpy()),
        ("JPEG", lambda w, h: tf.io.encode_jpeg(np.zeros((h, w, 3), np.uint8)).numpy()),
        ("GIF", lambda w, h: _pil("GIF", w, h, mode="P")),
        ("BMP", lambda w, h: _pil("BMP", w, h)),
        ("WebP", lambda w, h: _pil("WEBP", w, h)),  # a VP8 chunk
        ("WebP", lambda w, h: _pil("WEBP", w, h, lossless=True)),  # a VP8L chunk
        ("WebP", lambda w, h: _pil("WEBP", w, h, mode="RGBA")),  # VP8X, then alpha and VP8
    ],
)
def test_header_size_is_the_size_tensorflow_decodes(fmt, encode):
    data = encode(37, 21)
    header = read_image_header(data)
    assert (header.format, header.width, header.height, header.pixels) == (fmt, 37, 21, 777)
    decoded = tf.io.decode_image(data, expand_animations=False)
    assert decoded.shape[:2] == (21, 37)


def test_animated_images_count_every_frame():
    gif = read_image_header(_pil("GIF", 10, 6, frames=3, mode="P"))
    assert (gif.width, gif.height, gif.frames, gif.pixels) == (10, 6, 3, 180)
    webp = read_image_header(_pil("WEBP", 10, 6, frames=4))
    assert (webp.width, webp.height, webp.frames, webp.pixels) == (10, 6, 4, 240)


def test_jpeg_xl_size_header_is_read_from_its_bits():
    # Bits, least significant first: div8=1, ysize=(1+3)*8=32, ratio=0, xsize=(1+1)*8=16.
    header = read_image_header(b"\xff\x0a\x07\x02")
    assert (header.format, header.width, header.height) == ("JPEG XL", 16, 32)
    # The same codestream in the ISO container, after an `ftyp` box, in a `jxlc` box.
    container = (
        b"\x00\x00\x00\x0cJXL \r\n\x87\n"
        + b"\x00\x00\x00\x14ftypjxl \x00\x00\x00\x00jxl "
        + b"\x00\x00\x00\x0cjxlc\xff\x0a\x07\x02"
    )
    assert read_image_header(container).pixels == 16 * 32
    # Not div8: ysize = U32 selector 0 -> 1 + 9 bits (=99) = 100; ratio 7 (2:1) -> xsize 200.
    bits = 0 | (0 << 1) | (99 << 3) | (7 << 12)
    header = read_image_header(b"\xff\x0a" + bits.to_bytes(2, "little"))
    assert (header.width, header.height) == (200, 100)


def test_a_20000_pixel_square_png_is_refused_by_its_header_alone():
    data = _png_header_only(20000, 20000)  # 57 bytes: nothing to decode
    assert read_image_header(data).pixels == 400_000_000
    assert DEFAULT_MAX_IMAGE_PIXELS <= 4096 * 4096
    values = np.array([_png_header_only(4, 4), data], dtype=object)
    with pytest.raises(ServingError) as error:
        check_image_bytes(values, "image_bytes", DEFAULT_MAX_IMAGE_PIXELS)
    assert error.value.http_status == 400
    message = error.value.message
    assert "instance 1" in message and "20000x20000" in message
    assert f"{DEFAULT_MAX_IMAGE_PIXELS:,}" in message
    check_image_bytes(values[:1], "image_bytes", DEFAULT_MAX_IMAGE_PIXELS)  # 16 pixels pass


@pytest.mark.parametrize(
    "data, message",
    [
        (b"hello", "not a PNG/JPEG/GIF/BMP/WebP/JPEG XL image"),
        (b"", "not a PNG/JPEG/GIF/BMP/WebP/JPEG XL image"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "truncated or corrupt PNG header"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "truncated or corrupt JPEG header"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "truncated or corrupt WebP header"),
    ],
    ids=["text", "empty", "short PNG", "JPEG without SOF", "short WebP"],
)
def test_bytes_without_a_readable_header_get_one_sentence(data, message):
    with pytest.raises(ServingError) as error:
        check_image_bytes(np.array([data], dtype=object), "image_bytes", 100)
    assert error.value.message == f"instance 0 of input 'image_bytes': {message}"


def test_image_inputs_are_string_inputs_named_like_image_bytes():
    string, floats = tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.float32)
    assert is_image_input("image_bytes", string)
    assert is_image_input("input_image_bytes", string)
    assert not is_image_input("image_bytes", floats)
    assert not is_image_input("text", string)
    assert not is_image_input("audio_bytes", string)
