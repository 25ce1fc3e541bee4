"""Class selection: keep some classes, a few labels per class, a test split held out first."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras.data import DataError, Source, load_source
from i2dl_keras.data.selection import hold_out_test, sample_per_class, select_classes
from i2dl_keras.data.source import file_table


def _toy(test=True, validation=False):
    """Elements (i, label): train labels 0,1,2,0,1,2,... (12 of them), test 2 per class."""
    train_y = np.arange(12) % 3
    test_y = np.array([2, 1, 0, 2, 1, 0])

    def ds(ids, labels):
        return tf.data.Dataset.from_tensor_slices((ids, labels.astype(np.int64)))

    return Source(
        name="toy",
        task="image_classification",
        train=ds(np.arange(12), train_y),
        test=ds(np.arange(100, 106), test_y) if test else None,
        validation=ds(np.arange(200, 203), np.array([0, 1, 2])) if validation else None,
        class_names=["a", "b", "c"],
        num_examples={"train": 12, **({"test": 6} if test else {})},
    )


def _pairs(ds):
    return [(int(x), int(y)) for x, y in ds.as_numpy_iterator()]


def test_select_classes_keeps_and_renumbers_in_the_given_order():
    picked = select_classes(_toy(validation=True), ["c", "0"])
    assert picked.class_names == ["c", "a"]
    # Train elements 2, 5, 8, 11 are class c (new id 0); 0, 3, 6, 9 are class a (new id 1).
    assert _pairs(picked.train) == [(0, 1), (2, 0), (3, 1), (5, 0), (6, 1), (8, 0), (9, 1), (11, 0)]
    assert _pairs(picked.test) == [(100, 0), (102, 1), (103, 0), (105, 1)]
    assert _pairs(picked.validation) == [(200, 1), (202, 0)]
    assert picked.num_examples == {"train": 8, "validation": 2, "test": 4}
    assert picked.notes == ["kept 2 of 3 classes: c, a"]
    assert int(picked.train.cardinality()) == 8
    # Integer ids work as well as names.
    assert _pairs(select_classes(_toy(), [2, 0]).train) == _pairs(picked.train)


def test_sample_per_class_draws_few_training_labels_and_keeps_the_test_split():
    source = _toy()
    picked = sample_per_class(source, 2, seed=0)
    pairs = _pairs(picked.train)
    assert np.bincount([y for _, y in pairs]).tolist() == [2, 2, 2]
    assert all(x % 3 == y for x, y in pairs), "the examples keep their own labels"
    assert _pairs(picked.test) == _pairs(source.test)
    assert picked.num_examples == {"train": 6, "test": 6}
    assert picked.notes == ["kept 2 labelled training examples per class (seed 0): 6 in all"]
    assert _pairs(sample_per_class(source, 2, seed=0).train) == pairs
    others = {tuple(_pairs(sample_per_class(source, 2, seed=s).train)) for s in range(1, 6)}
    assert others - {tuple(pairs)}, "other seeds draw other examples"


def test_sample_per_class_keeps_all_of_a_short_class():
    picked = sample_per_class(_toy(), 5, seed=0)
    assert picked.num_examples["train"] == 12
    assert picked.notes[-1].endswith("12 in all; fewer in a (4), b (4), c (4)")


def test_selection_on_a_real_loader_keeps_its_images():
    source = load_source("synthetic", "image_classification")
    picked = sample_per_class(select_classes(source, ["square", "0"]), 5, seed=0)
    assert picked.class_names == ["square", "horizontal"]
    assert picked.num_examples == {"train": 10, "test": 20}
    images, labels = next(iter(picked.train.batch(100)))
    all_images, all_labels = next(iter(source.train.batch(1000)))
    squares = {im.tobytes() for im in all_images.numpy()[all_labels.numpy() == 3]}
    assert all(im.tobytes() in squares for im in images.numpy()[labels.numpy() == 0])


def test_hold_out_test_only_when_the_source_has_none():
    with_test = _toy()
    assert hold_out_test(with_test, 0.25, seed=0) is with_test
    held = hold_out_test(_toy(test=False), 0.25, seed=0)
    train, test = _pairs(held.train), _pairs(held.test)
    assert len(test) == 3 and len(train) == 9
    assert sorted(train + test) == _pairs(_toy().train)
    assert held.num_examples == {"train": 9, "test": 3}
    assert held.notes == ["held out 25% of the training examples as the test split (seed 0)"]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda s: select_classes(s, []), r"at least one class to keep. Received: classes=\[\]"),
        (lambda s: select_classes(s, ["a", "d"]), "toy has no class 'd'; its classes are a, b, c"),
        (lambda s: select_classes(s, ["a", "0"]), r"named twice. Received: classes=\['a', '0'\]"),
        (lambda s: select_classes(s, [7]), "no class '7'"),
        (lambda s: sample_per_class(s, 0), "Received: count=0"),
        (lambda s: sample_per_class(s, 1.5), "Received: count=1.5"),
        (lambda s: hold_out_test(s, 1.5), "fraction"),
    ],
)
def test_bad_input_is_a_data_error(call, message):
    with pytest.raises(DataError, match=message):
        call(_toy(test=False))


def test_segmentation_sources_are_refused():
    source = load_source("synthetic", "segmentation")
    with pytest.raises(DataError, match="needs a classification source"):
        select_classes(source, ["0"])


def _in_memory(source):
    """The source with every split decoded into memory: what selection iterated before."""

    def decoded(ds):
        if ds is None:
            return None
        images, labels = zip(*ds.as_numpy_iterator())
        return tf.data.Dataset.from_tensor_slices((np.stack(images), np.array(labels)))

    return dataclasses.replace(
        source,
        train=decoded(source.train),
        test=decoded(source.test),
        validation=decoded(source.validation),
    )


def _select(source):
    source = hold_out_test(source, 0.25, seed=3)
    return sample_per_class(select_classes(source, ["c", "0"]), 3, seed=1)


def _elements(ds):
    return [(image.tobytes(), int(label)) for image, label in ds.as_numpy_iterator()]


def test_selection_of_an_image_folder_reads_no_image(tmp_path, image_folders):
    # Each image's pixels say which image it is, so equal elements are the same file.
    classes = {
        name: [np.full((8, 8), 10 * k + i) for i in range(6)] for k, name in enumerate("abc")
    }
    root = image_folders(tmp_path / "d", classes)
    expected = _select(_in_memory(load_source(str(root), "image_classification")))

    source = load_source(str(root), "image_classification")
    away = tmp_path / "away"
    root.rename(away)  # any read of an image during selection now fails
    with pytest.raises(tf.errors.NotFoundError):
        next(iter(source.train))
    picked = _select(source)
    away.rename(root)

    for split in ("train", "test"):
        ds = getattr(picked, split)
        assert file_table(ds) is not None, f"{split} reads its files as it is iterated"
        assert _elements(ds) == _elements(getattr(expected, split))
    assert picked.class_names == expected.class_names == ["c", "a"]
    assert picked.num_examples == expected.num_examples == {"train": 6, "test": 3}
    assert picked.notes == expected.notes
