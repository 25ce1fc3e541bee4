"""read_images / read_texts: every form of input a user holds becomes (name, pixels) or text."""

import numpy as np
import pytest
from PIL import Image

from i2dl_keras.data import DataError, read_images, read_texts


@pytest.fixture
def folder(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    Image.fromarray(grey).save(tmp_path / "2.png")
    Image.fromarray(np.stack([grey] * 3, -1)).save(tmp_path / "10.webp", lossless=True)
    (tmp_path / "sub").mkdir()
    Image.fromarray(np.full((3, 4, 4), 200, np.uint8), "RGBA").save(tmp_path / "sub" / "a.tiff")
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_files_and_folders(folder):
    found = read_images([folder / "2.png", folder])
    names = [name for name, _ in found]
    assert names == [str(folder / n) for n in ("2.png", "2.png", "10.webp", "sub/a.tiff")]
    first = found[0][1]
    assert first.dtype == np.uint8 and first.shape == (3, 4, 1)
    np.testing.assert_array_equal(first[..., 0], np.arange(12).reshape(3, 4))
    assert found[2][1].shape == (3, 4, 3)
    # RGBA is composited on black: alpha 200 of 255 scales the colour.
    np.testing.assert_array_equal(found[3][1], np.full((3, 4, 3), round(200 * 200 / 255)))


def test_arrays_single_and_batched():
    assert [a.shape for _, a in read_images(np.zeros((5, 6)))] == [(5, 6, 1)]
    assert [a.shape for _, a in read_images(np.zeros((5, 6, 3)))] == [(5, 6, 3)]
    batch = read_images(np.zeros((2, 5, 6), np.float32))
    assert [n for n, _ in batch] == ["array[0][0]", "array[0][1]"]
    assert batch[0][1].shape == (5, 6, 1) and batch[0][1].dtype == np.float32
    assert len(read_images(np.zeros((4, 5, 6, 1), np.uint16))) == 4


def test_pil_images_and_mixed_lists(folder):
    pil = Image.fromarray(np.full((2, 2), 9, np.uint8))
    found = read_images([pil, np.ones((2, 2, 3))])
    assert [n for n, _ in found] == ["image[0]", "array[1]"]
    assert found[0][1].tolist() == [[[9], [9]], [[9], [9]]]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.png", "no such file or folder"),
        (lambda p: p / "notes.txt", "not a readable image"),
        (lambda p: np.zeros((2, 3, 4, 5, 6)), "got shape"),
        (lambda p: np.array(["a"]), "expected numbers"),
        (lambda p: 3.5, "expected an image path"),
        (lambda p: [], "no images given"),
    ],
)
def test_bad_inputs_name_the_input(folder, make, message):
    (folder / "empty").mkdir()
    with pytest.raises(DataError, match=message):
        read_images(make(folder))
    with pytest.raises(DataError, match="no images in this folder"):
        read_images(folder / "empty")


def test_texts():
    assert read_texts("a fine film") == ["a fine film"]
    assert read_texts(["x", b"y"]) == ["x", "y"]
    with pytest.raises(DataError, match="input 1: expected a string"):
        read_texts(["x", 3])
    with pytest.raises(DataError, match="not UTF-8"):
        read_texts([b"\xff\xfe"])


def test_text_problems_are_named():
    from i2dl_keras.data import text_problem

    assert text_problem("") == "empty text" and text_problem(" \t\n") == "empty text"
    assert text_problem("\x00\x01\x02binary\x03\x04") == "not text"
    assert text_problem("a fine film") is None and text_problem("naïve — überlong") is None
