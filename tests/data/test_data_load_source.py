"""load_source: builtin, synthetic, spec parsing, detection and the bad-input errors."""

import numpy as np
import pytest

from i2dl_keras.data import TASKS, DataError, load_source

IC = "image_classification"


def _arrays(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.stack(xs), np.stack(ys)


def test_builtin_digits():
    source = load_source("builtin", IC)
    assert source.num_examples == {"train": 1797}
    assert source.test is None and source.validation is None
    assert source.class_names == [str(i) for i in range(10)]
    x, y = _arrays(source.train)
    assert x.shape == (1797, 8, 8, 1) and x.dtype == np.uint8 and y.dtype == np.int64
    assert x.max() == 255 and x.min() == 0
    assert y[:5].tolist() == [0, 1, 2, 3, 4]
    # load_digits' first image, row 0: 0 0 5 13 9 1 0 0 (of 16) -> scaled to 0..255.
    np.testing.assert_array_equal(
        x[0, 0, :, 0], np.rint(np.array([0, 0, 5, 13, 9, 1, 0, 0]) * 255 / 16)
    )


@pytest.mark.parametrize("task", ["segmentation", "text_classification"])
def test_builtin_has_nothing_for_other_tasks(task):
    with pytest.raises(DataError, match=f"no builtin data for {task}.*synthetic"):
        load_source("builtin", task)


def test_synthetic_images_are_seeded_and_learnable():
    source = load_source("synthetic", IC, seed=3)
    x, y = _arrays(source.train)
    xt, yt = _arrays(source.test)
    assert x.shape[1:] == (16, 16, 1) and len(x) >= 40 and len(xt) >= 16
    assert source.num_examples == {"train": len(x), "test": len(xt)}
    again, _ = _arrays(load_source("synthetic", IC, seed=3).train)
    other, _ = _arrays(load_source("synthetic", IC, seed=4).train)
    np.testing.assert_array_equal(x, again)
    assert not np.array_equal(x, other)

    # Learnable: logistic regression on the pixels beats chance (25%) by far.
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=300).fit(x.reshape(len(x), -1) / 255.0, y)
    accuracy = model.score(xt.reshape(len(xt), -1) / 255.0, yt)
    assert accuracy > 0.8, accuracy


def test_synthetic_segmentation_masks_are_exact():
    source = load_source("synthetic", "segmentation", image_size=(12, 20), channels=3)
    x, y = _arrays(source.train)
    assert x.shape[1:] == (12, 20, 3) and y.shape[1:] == (12, 20) and y.dtype == np.uint8
    assert source.class_names == ["background", "shape"]
    assert set(np.unique(y)) == {0, 1}
    # Shapes are bright (180) and background dark (60) under noise of sd 20.
    assert x[..., 0][y == 1].mean() > 150 and x[..., 0][y == 0].mean() < 90


def test_synthetic_text_is_learnable():
    source = load_source("synthetic", "text_classification")
    assert source.class_names == ["neg", "pos"]
    train = [(x.numpy().decode(), int(y)) for x, y in source.train]
    assert {label for _, label in train} == {0, 1}
    positive = {"good", "great", "excellent", "wonderful", "enjoyable", "brilliant"}
    negative = {"bad", "awful", "boring", "dull", "terrible", "poor"}
    for text, label in train:
        words = set(text.split())
        assert not (words & (negative if label else positive)), text


def test_unknown_task():
    with pytest.raises(DataError, match="Unknown task 'speech'.*image_classification"):
        load_source("synthetic", "speech")
    assert TASKS == ("image_classification", "segmentation", "text_classification", "autoencoder")


@pytest.mark.parametrize("spec", ["builtin", "synthetic"])
def test_autoencoder_reads_image_sources_without_labels(spec):
    labelled = load_source(spec, IC, seed=2)
    source = load_source(spec, "autoencoder", seed=2)
    assert source.task == "autoencoder" and source.class_names == []
    assert source.num_examples == labelled.num_examples
    for split in ("train", "test"):
        if getattr(labelled, split) is None:
            assert getattr(source, split) is None
            continue
        images, _ = _arrays(getattr(labelled, split))
        inputs, targets = _arrays(getattr(source, split))
        # The same images in the same order, each its own target.
        np.testing.assert_array_equal(inputs, images)
        np.testing.assert_array_equal(targets, images)


def test_missing_path_is_named(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=f"No such file or folder: {missing}"):
        load_source(str(missing), IC)


def test_empty_folder(tmp_path):
    with pytest.raises(DataError, match="empty"):
        load_source(str(tmp_path), IC)


def test_unrecognised_folder_lists_formats(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "lonely.bin").write_bytes(b"\x00")
    with pytest.raises(DataError) as info:
        load_source(str(tmp_path), IC)
    message = str(info.value)
    for fmt in ("idx", "image_folders", "image_mask_pairs", "text_files", "csv"):
        assert fmt in message


def test_unknown_data_format(tmp_path):
    with pytest.raises(DataError, match="Unknown data format 'parquet'"):
        load_source(str(tmp_path), IC, data_format="parquet")
    with pytest.raises(DataError, match="local paths only"):
        load_source("synthetic", IC, data_format="csv")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_size": (0, 4)}, "image_size"),
        ({"image_size": 28}, "image_size"),
        ({"channels": 2}, "channels"),
        ({"seed": "x"}, "seed"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(DataError, match=match):
        load_source("synthetic", IC, **kwargs)


def test_empty_spec():
    with pytest.raises(DataError, match="--data is empty"):
        load_source("  ", IC)


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)
