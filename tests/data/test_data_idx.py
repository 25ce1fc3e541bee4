"""MNIST IDX parsing: header checks, counts, gz and plain files."""

import gzip

import numpy as np
import pytest

from i2dl_keras.data import DataError, detect_format, load_source, read_idx

IC = "image_classification"


def _digits(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 4, 5), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def test_idx_train_and_test(tmp_path, write_idx):
    images, labels = _digits(7)
    t_images, t_labels = _digits(3, seed=1)
    write_idx(tmp_path, images, labels)
    write_idx(tmp_path, t_images, t_labels, split="test", gz=False)
    assert detect_format(str(tmp_path)) == "idx"
    source = load_source(str(tmp_path), IC)
    assert source.num_examples == {"train": 7, "test": 3}
    assert source.class_names == [str(i) for i in range(int(max(labels.max(), t_labels.max())) + 1)]
    x, y = next(iter(source.train))
    assert x.shape == (4, 5, 1) and x.dtype.name == "uint8" and y.dtype.name == "int64"
    np.testing.assert_array_equal(x.numpy()[..., 0], images[0])
    assert int(y) == labels[0]
    test_labels = [int(y) for _, y in source.test]
    assert test_labels == t_labels.tolist()


def test_idx_file_path_reads_its_folder(tmp_path, write_idx):
    images_path, _ = write_idx(tmp_path, *_digits(2))
    source = load_source(str(images_path), IC)
    assert source.num_examples == {"train": 2} and source.test is None


def test_count_mismatch_names_both_files(tmp_path, write_idx):
    images, labels = _digits(5)
    write_idx(tmp_path, images, labels[:4])
    with pytest.raises(DataError) as info:
        load_source(str(tmp_path), IC)
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message and "train-labels-idx1-ubyte.gz" in message
    assert "5 images" in message and "4 labels" in message


def test_bad_magic_number(tmp_path, write_idx):
    images_path, _ = write_idx(tmp_path, *_digits(2))
    images_path.write_bytes(gzip.compress(b"\x12\x34\x08\x03" + bytes(100)))
    with pytest.raises(DataError, match="not an IDX file"):
        load_source(str(tmp_path), IC)


def test_truncated_data(tmp_path, write_idx):
    images_path, _ = write_idx(tmp_path, *_digits(3), gz=False)
    images_path.write_bytes(images_path.read_bytes()[:-7])
    with pytest.raises(DataError, match="truncated"):
        read_idx(str(images_path))


def test_not_gzip_though_named_gz(tmp_path, write_idx):
    images_path, _ = write_idx(tmp_path, *_digits(2))
    images_path.write_bytes(b"plain bytes, not gzip")
    with pytest.raises(DataError, match="Cannot read IDX file"):
        load_source(str(tmp_path), IC)


def test_missing_partner_file(tmp_path, write_idx):
    _, labels_path = write_idx(tmp_path, *_digits(2))
    labels_path.unlink()
    with pytest.raises(DataError, match="train-labels-idx1-ubyte"):
        load_source(str(tmp_path), IC)


def test_resize_and_rgb(tmp_path, write_idx):
    write_idx(tmp_path, *_digits(2))
    source = load_source(str(tmp_path), IC, image_size=(8, 10), channels=3)
    assert source.train.element_spec[0].shape == (8, 10, 3)
    assert any("resized" in n for n in source.notes)
