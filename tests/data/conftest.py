"""Writers of tiny data files for the data-layer tests (everything lands in tmp_path)."""

import gzip
import struct
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image


@pytest.fixture(autouse=True)
def _seed():
    """Overrides the suite's fixture: same seeding, but no garbage collection after each test.

    The data tests build no models, and `clear_session()`'s `gc.collect()` costs about a second
    per test on a loaded machine, which would double this folder's run time.
    """
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session(free_memory=False)


def _png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def write_png():
    """`write_png(path, array)`: a PNG of a uint8 array (2-D grey, or H x W x 3 colour)."""
    return _png


@pytest.fixture
def image_folders(tmp_path):
    """`image_folders(root, {"cat": [arrays], ...})`: one subfolder of PNGs per class."""

    def make(root: Path, classes: dict) -> Path:
        for name, arrays in classes.items():
            for i, array in enumerate(arrays):
                _png(root / name / f"{i}.png", array)
        return root

    return make


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(
        ">" + "i" * array.ndim, *array.shape
    )
    return header + array.astype(">u1").tobytes()


@pytest.fixture
def write_idx():
    """`write_idx(folder, images, labels, split="train", gz=True)`: an MNIST-style IDX pair."""

    def make(folder: Path, images, labels, split: str = "train", gz: bool = True):
        folder.mkdir(parents=True, exist_ok=True)
        prefix = "train" if split == "train" else "t10k"
        paths = []
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            path = folder / f"{prefix}-{kind}-ubyte{'.gz' if gz else ''}"
            data = idx_bytes(np.asarray(array))
            path.write_bytes(gzip.compress(data) if gz else data)
            paths.append(path)
        return paths

    return make
