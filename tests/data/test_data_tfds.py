"""TFDS sources: fast, clear errors offline, and the conversion checked on tfds' mock data."""

import socket
import time

import numpy as np
import pytest

from i2dl_keras.data import DataError, load_source, tfds_source


def test_not_prepared_fails_fast_and_says_what_to_do(tmp_path):
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        load_source("mnist", "image_classification", data_dir=str(tmp_path))
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert str(tmp_path) in message and "--download" in message and "--data PATH" in message
    assert "IDX" in message


def test_download_offline_fails_fast(tmp_path, monkeypatch):
    # TEST-NET-1 (RFC 5737) never answers, so this test never downloads, online or not.
    monkeypatch.setitem(tfds_source.KNOWN_TFDS["mnist"], "host", ("192.0.2.1", 9))
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        load_source("mnist", "image_classification", data_dir=str(tmp_path), download=True)
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "192.0.2.1 does not answer" in message and str(tmp_path) in message


def test_host_reachable_true_for_a_listening_socket():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        assert tfds_source.host_reachable("127.0.0.1", server.getsockname()[1], timeout=2)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert not tfds_source.host_reachable("127.0.0.1", port, timeout=2)


def test_unknown_tfds_name(tmp_path):
    with pytest.raises(DataError, match="no data set named 'no_such_set_xyz'"):
        load_source("tfds:no_such_set_xyz", "image_classification", data_dir=str(tmp_path))


def test_known_name_with_wrong_task(tmp_path):
    with pytest.raises(DataError, match="imdb_reviews.*text_classification.*not segmentation"):
        load_source("imdb_reviews", "segmentation", data_dir=str(tmp_path))


def test_mock_mnist_becomes_a_source(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=5):
        source = load_source("mnist", "image_classification", data_dir=str(tmp_path), channels=3)
        items = [(x.numpy(), y.numpy()) for x, y in source.train]
        n_test = len(list(source.test))
    assert source.task == "image_classification"
    assert source.class_names == [str(i) for i in range(10)]
    assert source.num_examples == {"train": 5, "test": 5} and n_test == 5
    assert len(items) == 5
    x, y = items[0]
    assert x.shape == (28, 28, 3) and x.dtype == np.uint8
    assert y.dtype == np.int64 and 0 <= y < 10
    np.testing.assert_array_equal(x[..., 0], x[..., 2])  # grey replicated to RGB


def test_mock_imdb_becomes_text_source(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=3):
        source = load_source("imdb_reviews", "text_classification", data_dir=str(tmp_path))
        items = list(source.train)
    assert source.class_names == ["neg", "pos"]
    assert len(items) == 3
    assert items[0][0].dtype.name == "string" and items[0][1].dtype.name == "int64"


def test_mock_pets_segmentation_masks_become_class_ids(tmp_path):
    import tensorflow_datasets as tfds

    # max_value=4 makes the fake trimaps hold 0..3; the real ones hold 1, 2, 3.
    with tfds.testing.mock_data(num_examples=2, max_value=4):
        source = load_source(
            "oxford_iiit_pet", "segmentation", data_dir=str(tmp_path), image_size=(8, 6)
        )
        x, y = next(iter(source.train))
    assert source.class_names == ["1", "2", "3"]
    assert x.shape == (8, 6, 3) and x.dtype.name == "uint8"
    assert y.shape == (8, 6) and y.dtype.name == "uint8"
    assert set(np.unique(y.numpy())) <= {0, 1, 2}
