"""split, make_pipeline and train_val_test."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras.data import DataError, Source, make_pipeline, split, train_val_test


def _ids(ds):
    return [int(v) for v in ds.as_numpy_iterator()]


def _pairs(n):
    """n elements (x, y) with x = [i, i] float and y = i, so every element is identifiable."""
    x = np.repeat(np.arange(n, dtype=np.float32)[:, None], 2, axis=1)
    return tf.data.Dataset.from_tensor_slices((x, np.arange(n, dtype=np.int64)))


def _labels(ds):
    """The y of every element, read in large batches (fast)."""
    return np.concatenate([y for y in ds.map(lambda x, y: y).batch(4096).as_numpy_iterator()])


def _epoch(ds):
    return [int(v) for _, y in ds for v in y.numpy()]


def test_split_is_exact_disjoint_complete_and_seeded():
    ds = tf.data.Dataset.range(100)
    rest, held = split(ds, 0.25, seed=7)
    rest_ids, held_ids = _ids(rest), _ids(held)
    assert len(held_ids) == 25 and len(rest_ids) == 75
    assert set(rest_ids).isdisjoint(held_ids)
    assert sorted(rest_ids + held_ids) == list(range(100))
    assert rest_ids == sorted(rest_ids)  # input order kept
    assert int(rest.cardinality()) == 75 and int(held.cardinality()) == 25
    keras.utils.set_random_seed(99)  # the split does not depend on TF's global seed
    assert _ids(split(ds, 0.25, seed=7)[1]) == held_ids
    assert _ids(split(ds, 0.25, seed=8)[1]) != held_ids


def test_split_small_and_unknown_cardinality():
    ds = tf.data.Dataset.range(10).filter(lambda i: i < 5)  # cardinality unknown to tf.data
    rest, held = split(ds, 0.01, seed=0)
    assert len(_ids(held)) == 1 and len(_ids(rest)) == 4


def test_split_rejects_bad_fractions():
    for fraction in (0, 1, 1.5, -0.1, True, "0.5"):
        with pytest.raises(DataError, match="fraction"):
            split(tf.data.Dataset.range(10), fraction, seed=0)


def test_split_rejects_infinite_and_tiny():
    with pytest.raises(DataError, match="infinite"):
        split(tf.data.Dataset.range(3).repeat(), 0.5, seed=0)
    with pytest.raises(DataError, match="at least 2"):
        split(tf.data.Dataset.range(1), 0.5, seed=0)


def test_pipeline_batches():
    batches = list(make_pipeline(_pairs(10), 4, training=False))
    assert [b[0].shape.as_list() for b in batches] == [[4, 2], [4, 2], [2, 2]]
    dropped = list(make_pipeline(_pairs(10), 4, training=True, drop_remainder=True))
    assert [int(b[0].shape[0]) for b in dropped] == [4, 4]


def test_evaluation_keeps_order_even_when_not_deterministic():
    ds = make_pipeline(_pairs(50), 8, training=False, preprocess=lambda x, y: (x * 2, y))
    assert _epoch(ds) == list(range(50))


def test_training_shuffle_is_seeded_and_reshuffles_each_epoch():
    def build(seed, deterministic=False):
        keras.utils.set_random_seed(1234)
        return make_pipeline(_pairs(40), 8, training=True, seed=seed, deterministic=deterministic)

    ds = build(seed=5)
    first, second = _epoch(ds), _epoch(ds)
    assert sorted(first) == list(range(40)) and first != list(range(40))
    assert first != second  # reshuffled between epochs
    again = build(seed=5)
    assert _epoch(again) == first and _epoch(again) == second  # reproducible, epoch by epoch
    assert _epoch(build(seed=6)) != first

    fixed = build(seed=5, deterministic=True)
    fixed_first = _epoch(fixed)
    assert fixed_first != list(range(40))
    assert _epoch(fixed) == fixed_first  # same order every epoch


def test_augment_only_when_training_and_on_batches():
    seen_ranks = []

    def augment(x, y):
        seen_ranks.append(x.shape.rank)
        return x + 1000.0, y

    train = make_pipeline(_pairs(6), 3, training=True, augment=augment)
    evaluate = make_pipeline(_pairs(6), 3, training=False, augment=augment)
    assert all(float(x[0, 0]) >= 1000 for x, _ in train)
    assert all(float(x[0, 0]) < 1000 for x, _ in evaluate)
    assert seen_ranks == [2]  # traced once, on batches [batch, 2]


def test_preprocess_runs_once_when_cached():
    calls = tf.Variable(0, dtype=tf.int64)

    def preprocess(x, y):
        calls.assign_add(1)
        return x, y

    cached = make_pipeline(_pairs(10), 4, training=True, preprocess=preprocess, cache=True)
    _epoch(cached), _epoch(cached)
    assert int(calls.numpy()) == 10
    calls.assign(0)
    uncached = make_pipeline(_pairs(10), 4, training=True, preprocess=preprocess, cache=False)
    _epoch(uncached), _epoch(uncached)
    assert int(calls.numpy()) == 20


def test_pipeline_rejects_bad_batch_size():
    with pytest.raises(DataError, match="batch_size"):
        make_pipeline(_pairs(4), 0, training=False)
    with pytest.raises(DataError, match="shuffle_buffer"):
        make_pipeline(_pairs(4), 2, training=True, shuffle_buffer=0)


def _source(n_train, test=None, validation=None):
    return Source(
        name="ids",
        task="image_classification",
        train=_pairs(n_train),
        test=test,
        validation=validation,
        class_names=["x"],
        num_examples={"train": n_train},
    )


def test_train_val_test_carves_missing_splits():
    train, val, test, notes = train_val_test(_source(1797), seed=0)
    ids = [_labels(ds).tolist() for ds in (train, val, test)]
    assert [len(i) for i in ids] == [1294, 144, 359]
    assert sorted(ids[0] + ids[1] + ids[2]) == list(range(1797))
    assert notes == [
        "held out 20% of the 1,797 training examples as the test split (359 examples, seed 0)",
        "held out 10% of the 1,438 remaining training examples as the validation split "
        "(144 examples, seed 0)",
    ]
    again = train_val_test(_source(1797), seed=0)[2]
    assert _labels(again).tolist() == ids[2]
    other = train_val_test(_source(1797), seed=1)[2]
    assert _labels(other).tolist() != ids[2]


def test_train_val_test_keeps_existing_splits():
    test = _pairs(3)
    train, val, got_test, notes = train_val_test(
        _source(20, test=test), validation_fraction=0.25, seed=0
    )
    assert got_test is test
    assert len(list(val)) == 5 and len(list(train)) == 15
    assert notes == [
        "held out 25% of the 20 training examples as the validation split (5 examples, seed 0)"
    ]
    validation = _pairs(2)
    train, val, _, notes = train_val_test(_source(20, test=test, validation=validation))
    assert val is validation and len(list(train)) == 20 and notes == []
    with pytest.raises(DataError, match="test_fraction"):
        train_val_test(_source(20), test_fraction=1.0)


def test_cache_to_files_and_bad_cache_values(tmp_path):
    calls = tf.Variable(0, dtype=tf.int64)

    def preprocess(x, y):
        calls.assign_add(1)
        return x, y

    prefix = str(tmp_path / "cache")
    cached = make_pipeline(_pairs(10), 4, training=False, preprocess=preprocess, cache=prefix)
    assert _epoch(cached) == list(range(10)) and _epoch(cached) == list(range(10))
    assert int(calls.numpy()) == 10
    assert any(p.name.startswith("cache") for p in tmp_path.iterdir())
    for bad in (3, "", "  ", 0.5):
        with pytest.raises(DataError, match="cache must be"):
            make_pipeline(_pairs(4), 2, training=False, cache=bad)
