"""MNIST-style IDX files, parsed with NumPy.

An IDX file starts with a 4-byte magic number: two zero bytes, a type code (0x08 unsigned byte,
0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64) and the number of
dimensions; then one big-endian int32 per dimension, then the values, big-endian, row-major.
Images are `idx3` (count, rows, columns) and labels `idx1` (count).
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib

import numpy as np
import tensorflow as tf

from i2dl_keras.data import images as image_utils
from i2dl_keras.data.errors import DataError
from i2dl_keras.data.source import ReadOptions, Source

logger = logging.getLogger(__name__)

_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# (split, images stem, labels stem): the official MNIST names.
IDX_FILES = (
    ("train", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    ("test", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
)


def read_idx(path: str) -> np.ndarray:
    """Reads one IDX file (optionally gzip'd) into a NumPy array, checking header and size.

    Args:
        path: The `.idx*` file, or its `.gz`.

    Returns:
        The array, in native byte order.

    Raises:
        DataError: When the file is missing, not gzip when named `.gz`, or not a valid IDX file.
    """
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            with open(path, "rb") as f:
                raw = f.read()
    except FileNotFoundError:
        raise DataError(f"IDX file not found: {path}") from None
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"Cannot read IDX file {path}: {err}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise DataError(
            f"{path} is not an IDX file: expected a magic number 00 00 TT NN (TT a type code "
            f"such as 08 for unsigned bytes), found {raw[:4].hex(' ') or 'an empty file'}"
        )
    dtype, ndim = _TYPES[raw[2]], raw[3]
    header_end = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header_end:
        raise DataError(f"{path}: truncated IDX header ({ndim} dimensions declared)")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header_end
    if actual != expected:
        raise DataError(
            f"{path}: the header declares shape {dims} ({expected:,} bytes of data) but the file "
            f"holds {actual:,} bytes: the file is truncated or corrupt"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_end).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def find_idx_file(folder: str, stem: str) -> str | None:
    dotted = stem.replace("-idx", ".idx")  # some mirrors name them train-images.idx3-ubyte
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def has_idx_files(folder: str) -> bool:
    return any(find_idx_file(folder, stem) for _, stem, _ in IDX_FILES)


def load_idx(folder: str, options: ReadOptions) -> Source:
    """Reads MNIST IDX files from `folder` into an image-classification `Source`."""
    splits = {}
    for split, images_stem, labels_stem in IDX_FILES:
        images_path = find_idx_file(folder, images_stem)
        labels_path = find_idx_file(folder, labels_stem)
        if images_path is None and labels_path is None:
            continue
        if images_path is None or labels_path is None:
            have, missing = (
                (images_path, labels_stem) if labels_path is None else (labels_path, images_stem)
            )
            raise DataError(
                f"Found {have} but not its partner {os.path.join(folder, missing)}[.gz]: IDX "
                "images and labels come in pairs"
            )
        images = read_idx(images_path)
        labels = read_idx(labels_path)
        if images.ndim != 3:
            raise DataError(
                f"{images_path}: expected images of shape (count, rows, columns), "
                f"found shape {images.shape}"
            )
        if labels.ndim != 1:
            raise DataError(
                f"{labels_path}: expected labels of shape (count,), found {labels.shape}"
            )
        if len(images) != len(labels):
            raise DataError(
                f"{images_path} holds {len(images):,} images but {labels_path} holds "
                f"{len(labels):,} labels: they must match one to one"
            )
        if images.dtype != np.uint8:
            raise DataError(f"{images_path}: expected unsigned-byte pixels, found {images.dtype}")
        if labels.dtype.kind == "f" or (len(labels) and labels.min() < 0):
            raise DataError(f"{labels_path}: expected class ids 0, 1, 2, ..., found {labels.dtype}")
        splits[split] = (images[..., None], labels.astype(np.int64))
        logger.info("read %d images from %s", len(images), images_path)
    if "train" not in splits:
        raise DataError(
            f"No IDX training files in {folder}: expected train-images-idx3-ubyte[.gz] and "
            "train-labels-idx1-ubyte[.gz] (t10k-* for the test split)"
        )

    notes: list[str] = []
    sizes = [tuple(images.shape[1:3]) for images, _ in splits.values()]
    if options.image_size is None and len(set(sizes)) > 1:
        raise DataError(
            f"The IDX files in {folder} hold images of different sizes {sorted(set(sizes))}: "
            "pass an image size to resize them to one"
        )
    size = tuple(options.image_size or sizes[0])
    if any(s != size for s in sizes):
        notes.append(f"resized the IDX images to {size[0]}x{size[1]} (height x width) as asked")
    max_label = max(int(labels.max()) for _, labels in splits.values() if len(labels))
    datasets, counts = {}, {}
    for split, (images, labels) in splits.items():
        images = image_utils.resize_array_images(images, size)
        images = image_utils.set_channels(images, options.channels)
        datasets[split] = tf.data.Dataset.from_tensor_slices((images, labels))
        counts[split] = len(labels)
    return Source(
        name=f"MNIST IDX files in {folder}",
        task="image_classification",
        train=datasets["train"],
        test=datasets.get("test"),
        class_names=[str(i) for i in range(max_label + 1)],
        num_examples=counts,
        notes=notes,
    )
