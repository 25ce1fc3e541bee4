"""Subsets of a classification `Source`: some of its classes, a few labels per class.

Transfer learning and semi-supervised experiments train on a handful of labelled examples of a
few classes. These functions cut a loaded `Source` down to that, split by split, before it is
split and batched; each keeps the elements' order and records what it did in `Source.notes`.

A split of a local image folder is a `FileTable` whose `label` column holds every file's class:
selection reads that column and cuts the table's rows, so no image is read and the result still
reads its files as it is iterated. Any other split is iterated once to read its labels and
filtered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from i2dl_keras.data.errors import DataError
from i2dl_keras.data.pipeline import split
from i2dl_keras.data.source import FileTable, Source, file_table

__all__ = ["hold_out_test", "sample_per_class", "select_classes"]

_SPLITS = ("train", "validation", "test")
_CLASSIFICATION = ("image_classification", "text_classification")


def _check_classification(source: Source, what: str) -> None:
    if source.task not in _CLASSIFICATION:
        raise DataError(
            f"{what} needs a classification source, but {source.name} is a {source.task} "
            f"source. Received: source.task={source.task!r}"
        )


def _labelled_table(ds: tf.data.Dataset) -> FileTable | None:
    """The `FileTable` of `ds` when its `label` column is the elements' label, else None."""
    table = file_table(ds)
    if table is None or "label" not in table.columns or table.then:
        return None
    return table


def _labels(ds: tf.data.Dataset) -> np.ndarray:
    table = _labelled_table(ds)
    if table is not None:
        return table.columns["label"].astype(np.int64)
    # In batches: a step of the iterator costs about as much as a whole batch of labels.
    batches = ds.map(lambda x, y: y).batch(4096).as_numpy_iterator()
    return np.concatenate([np.zeros(0, np.int64), *(b.astype(np.int64) for b in batches)])


def _with_labels(table: FileTable, indices: np.ndarray, labels: np.ndarray) -> FileTable:
    """The rows at `indices` whose elements take their labels from the new `label` column."""
    rows = table.subset(indices)
    read = rows.read

    def relabelled(row):
        x, _ = read(row)
        return x, row["label"]

    return FileTable({**rows.columns, "label": labels.astype(np.int64)}, relabelled)


def _take(ds: tf.data.Dataset, mask: np.ndarray, remap: np.ndarray) -> tf.data.Dataset:
    """The elements where `mask` is true, in order, with labels mapped through `remap`."""
    table = _labelled_table(ds)
    if table is not None:
        # Cut the list of files: the images are read only when the result is iterated.
        indices = np.flatnonzero(mask)
        old = table.columns["label"][indices].astype(np.int64)
        new = remap[old]
        rows = (
            table.subset(indices) if np.array_equal(new, old) else _with_labels(table, indices, new)
        )
        return rows.dataset()
    keep, lookup = tf.constant(mask), tf.constant(remap, tf.int64)

    def kept(index, element):
        return keep[index]

    def relabelled(index, element):
        return element[0], tf.gather(lookup, tf.cast(element[1], tf.int64))

    picked = ds.enumerate().filter(kept).map(relabelled)
    return picked.apply(tf.data.experimental.assert_cardinality(int(mask.sum())))


def _class_names(source: Source, labels: dict[str, np.ndarray]) -> list[str]:
    if source.class_names:
        return list(source.class_names)
    top = max((int(v.max()) for v in labels.values() if v.size), default=0)
    return [str(i) for i in range(top + 1)]


def select_classes(source: Source, classes: Sequence[str | int]) -> Source:
    """Keeps the examples of some classes, renumbered `0..K-1` in the order given.

    Every split is filtered the same way. A class is named by its name in `source.class_names`
    or by its id (an `int`, or a string of digits that is not itself a class name).

    Args:
        source: A loaded image or text classification source.
        classes: The classes to keep, in the order of their new ids, e.g. `["cat", "dog"]` or
            `[5, 6, 7, 8, 9]`.

    Returns:
        The `Source` with only those classes, their names as `class_names` and the new counts
        in `num_examples`.

    Raises:
        DataError: If `classes` is empty, names a class twice, or names a class the source does
            not have, or if a split keeps no examples.

    Example:

    >>> source = i2dl_keras.data.load_source("synthetic", "image_classification")
    >>> select_classes(source, ["square", "horizontal"]).class_names
    ['square', 'horizontal']
    """
    _check_classification(source, "select_classes")
    wanted = [str(c) for c in classes]
    if not wanted:
        raise DataError(f"Name at least one class to keep. Received: classes={list(classes)!r}")
    labels = {s: _labels(getattr(source, s)) for s in _SPLITS if getattr(source, s) is not None}
    names = _class_names(source, labels)
    keep = []
    for token in wanted:
        if token in names:
            keep.append(names.index(token))
        elif token.isdigit() and int(token) < len(names):
            keep.append(int(token))
        else:
            raise DataError(
                f"{source.name} has no class {token!r}; its classes are {', '.join(names)}. "
                f"Received: classes={list(classes)!r}"
            )
    if len(set(keep)) != len(keep):
        raise DataError(f"A class is named twice. Received: classes={list(classes)!r}")
    remap = np.full(len(names), -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    splits, counts = {}, {}
    for name, values in labels.items():
        mask = remap[np.clip(values, 0, len(names) - 1)] >= 0
        if not mask.any():
            raise DataError(
                f"{source.name} has no {name} examples of the classes "
                f"{', '.join(names[k] for k in keep)}. Received: classes={list(classes)!r}"
            )
        splits[name] = _take(getattr(source, name), mask, remap)
        counts[name] = int(mask.sum())
    notes = list(source.notes)
    if len(keep) < len(names):
        notes.append(
            f"kept {len(keep)} of {len(names)} classes: {', '.join(names[k] for k in keep)}"
        )
    return dataclasses.replace(
        source,
        train=splits["train"],
        validation=splits.get("validation"),
        test=splits.get("test"),
        class_names=[names[k] for k in keep],
        num_examples=counts,
        notes=notes,
    )


def sample_per_class(source: Source, count: int, seed: int = 0) -> Source:
    """Keeps `count` training examples of each class, drawn at random; other splits stay whole.

    A class with fewer training examples keeps all it has (the notes say which).

    Args:
        source: A loaded image or text classification source.
        count: Training examples to keep per class, at least 1.
        seed: Which examples are drawn; the same seed always draws the same ones. Defaults to
            `0`.

    Returns:
        The `Source` with the smaller training split.

    Raises:
        DataError: If `count` is not a positive integer.

    Example:

    >>> source = i2dl_keras.data.load_source("synthetic", "image_classification")
    >>> sample_per_class(source, 5).num_examples["train"]
    20
    """
    _check_classification(source, "sample_per_class")
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise DataError(f"count must be a positive integer. Received: count={count!r}")
    values = _labels(source.train)
    names = _class_names(source, {"train": values})
    rng = np.random.default_rng([seed, 7])
    chosen = np.zeros(len(values), dtype=bool)
    short = []
    for label in range(len(names)):
        candidates = np.flatnonzero(values == label)
        if len(candidates) < count:
            short.append(f"{names[label]} ({len(candidates)})")
        chosen[rng.permutation(candidates)[:count]] = True
    if not chosen.any():
        raise DataError(f"{source.name} has no training examples to keep. Received: count={count}")
    notes = list(source.notes)
    notes.append(
        f"kept {count} labelled training examples per class (seed {seed}): "
        f"{int(chosen.sum()):,} in all" + (f"; fewer in {', '.join(short)}" if short else "")
    )
    identity = np.arange(len(names), dtype=np.int64)
    return dataclasses.replace(
        source,
        train=_take(source.train, chosen, identity),
        num_examples={**source.num_examples, "train": int(chosen.sum())},
        notes=notes,
    )


def hold_out_test(source: Source, fraction: float, seed: int = 0) -> Source:
    """Gives a source without a test split one, held out of its training split.

    Call it before `sample_per_class`, so that the few labels are drawn from what remains and
    the test split is a share of the whole source. A source with a test split is returned as
    it is.

    Args:
        source: A loaded source.
        fraction: The share of the training split held out, strictly between 0 and 1.
        seed: Which examples are held out. Defaults to `0`.

    Returns:
        The `Source` with a test split.

    Raises:
        DataError: For a fraction outside (0, 1) or a training split of fewer than 2 examples.
    """
    if source.test is not None:
        return source
    train, test = split(source.train, fraction, seed)
    counts = {
        **source.num_examples,
        "train": int(train.cardinality()),
        "test": int(test.cardinality()),
    }
    return dataclasses.replace(
        source,
        train=train,
        test=test,
        num_examples=counts,
        notes=[
            *source.notes,
            f"held out {fraction:.0%} of the training examples as the test split (seed {seed})",
        ],
    )
