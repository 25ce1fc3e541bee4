"""The SavedModel signatures the image apps share: encoded bytes or 0-255 pixels in, and the
`classes` output a classifier adds beside its class ids."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from i2dl_keras import export


def resize_pixels(image: tf.Tensor, size: int) -> tf.Tensor:
    """An image `[H, W, C]` -> float32 `[size, size, C]` on the 0-255 scale, resized as the
    models' `ImagePreprocessing` resizes (bilinear, antialiased)."""
    image = tf.image.resize(tf.cast(image, tf.float32), [size, size], antialias=True)
    return tf.clip_by_value(image, 0.0, 255.0)


def decode_resized(encoded: tf.Tensor, size: int, channels: int) -> tf.Tensor:
    """Encoded PNG/JPEG/GIF/BMP bytes of any size -> float32 `[size, size, channels]`, 0-255."""
    image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
    image.set_shape([None, None, channels])
    return resize_pixels(image, size)


def image_endpoints(
    outputs: Callable[[tf.Tensor], dict], size: int, channels: int
) -> dict[str, export.Endpoint]:
    """The serving signatures of a model on `size`x`size` images: `serving_default` takes encoded
    images of any size (`image_bytes`, resized here so that they stack into one batch) and
    `serve_pixels` float 0-255 pixels of any size (the model resizes them itself); both return
    `outputs(pixels)`."""

    def from_bytes(image_bytes):
        pixels = tf.map_fn(
            lambda b: decode_resized(b, size, channels),
            image_bytes,
            fn_output_signature=tf.TensorSpec([size, size, channels], tf.float32),
        )
        return outputs(pixels)

    return {
        "serving_default": (from_bytes, [tf.TensorSpec([None], tf.string, name="image_bytes")]),
        "serve_pixels": (
            outputs,
            [tf.TensorSpec([None, None, None, channels], tf.float32, name="pixels")],
        ),
    }


def image_check_requests(seed: int, size: int, channels: int) -> dict[str, dict[str, np.ndarray]]:
    """Requests that check `image_endpoints` after an export: encoded images of two shapes (the
    bytes signature resizes whatever it is sent) and pixels of another size."""
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (s, s + 3, channels), dtype=np.uint8) for s in (size, size + 12)]
    encoded = np.array([tf.io.encode_png(im).numpy() for im in images], dtype=object)
    pixels = rng.integers(0, 256, (3, size + 4, size + 4, channels)).astype(np.float32)
    return {"serving_default": {"image_bytes": encoded}, "serve_pixels": {"pixels": pixels}}


def with_class_outputs(endpoint: export.Endpoint, class_names: Sequence[str]) -> export.Endpoint:
    """Adds TF Serving's `classes` output (string names) to an endpoint that gives `class_ids`."""
    function, specs = endpoint
    names = tf.constant(list(class_names))

    def with_classes(*args):
        outputs = dict(function(*args))
        if "class_ids" in outputs:
            outputs["classes"] = tf.gather(names, outputs["class_ids"])
        return outputs

    return with_classes, specs
