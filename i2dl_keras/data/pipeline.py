"""Seeded splits and the `tf.data` input pipeline every app uses."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from i2dl_keras.data.errors import DataError
from i2dl_keras.data.source import Source, file_table

logger = logging.getLogger(__name__)

# The default shuffle buffer: the whole split when it is smaller than this.
MAX_SHUFFLE_BUFFER = 10_000


def _check_fraction(fraction, name: str) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise DataError(
            f"{name} must be a number strictly between 0 and 1. Received: {name}={fraction!r}"
        )
    return float(fraction)


def _cardinality(ds: tf.data.Dataset) -> int:
    """The number of elements, counting them when tf.data does not know it."""
    n = int(ds.cardinality())
    if n == tf.data.INFINITE_CARDINALITY:
        raise DataError("Cannot split an infinite dataset (one that repeats forever)")
    if n < 0:
        logger.info("counting the elements of a dataset of unknown size")
        n = int(ds.reduce(np.int64(0), lambda count, _: count + 1))
    return n


def held_out_count(n: int, fraction: float) -> int:
    """How many of `n` examples `split` holds out: `round(n * fraction)`, kept in 1..n-1."""
    return int(min(max(round(n * fraction), 1), n - 1))


def split(
    ds: tf.data.Dataset, fraction: float, seed: int
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """Deterministic seeded split: returns `(rest, held_out)`.

    Exactly `held_out_count(n, fraction)` elements (`round(n * fraction)`, kept within 1..n-1)
    go to `held_out`, chosen by a NumPy permutation seeded with `seed`; both parts keep the input
    order, are disjoint, and together hold every element. The same `ds` order, `fraction` and
    `seed` always give the same split, whatever TensorFlow's global seed. A split of a
    `FileTable` source (local image or text folders, CSV/TSV tables) cuts its list of rows, so
    each part reads only its own files; any other `ds` is read whole by each part and filtered,
    so it must give the same order every time it is iterated (true of every `Source` split;
    shuffle after splitting, not before).

    Args:
        ds: A finite, unbatched dataset.
        fraction: The share to hold out, strictly between 0 and 1.
        seed: Which elements are held out.

    Returns:
        `(rest, held_out)`, both with known cardinality.

    Raises:
        DataError: For a fraction outside (0, 1), an infinite dataset, or fewer than 2 elements.

    Example:

    >>> ds = tf.data.Dataset.range(10)
    >>> train, val = i2dl_keras.data.split(ds, 0.2, seed=0)
    >>> len(list(val)), len(list(train))
    (2, 8)
    """
    fraction = _check_fraction(fraction, "fraction")
    n = _cardinality(ds)
    if n < 2:
        raise DataError(f"Cannot split a dataset of {n} element(s): need at least 2")
    k = held_out_count(n, fraction)
    chosen = np.zeros(n, dtype=bool)
    chosen[np.random.default_rng(seed).permutation(n)[:k]] = True
    table = file_table(ds)
    if table is not None:
        rest = table.subset(np.flatnonzero(~chosen)).dataset()
        return rest, table.subset(np.flatnonzero(chosen)).dataset()
    mask = tf.constant(chosen)

    def part(keep_held_out: bool, count: int) -> tf.data.Dataset:
        picked = ds.enumerate().filter(lambda i, _: tf.equal(mask[i], keep_held_out))
        picked = picked.map(lambda _, element: element)
        return picked.apply(tf.data.experimental.assert_cardinality(count))

    return part(False, n - k), part(True, k)


def _cache_mode(cache) -> str | None:
    """`"memory"`, a file path, or None (no cache), from `make_pipeline`'s `cache`."""
    if cache is True or cache == "memory":
        return "memory"
    if cache is False or cache is None:
        return None
    if isinstance(cache, str) and cache.strip() and cache != "auto":
        return cache
    raise DataError(
        f"cache must be 'auto', 'memory', a file path, True or False. Received: cache={cache!r}"
    )


def make_pipeline(
    ds: tf.data.Dataset,
    batch_size: int,
    *,
    training: bool,
    seed: int = 0,
    preprocess: Callable | None = None,
    augment: Callable | None = None,
    cache: bool | str | None = "auto",
    shuffle_buffer: int | None = None,
    deterministic: bool = False,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Builds the input pipeline: preprocess, cache, shuffle, batch, augment, prefetch.

    The order follows the tf.data performance guide: the per-example `preprocess` runs once and
    its results are cached, so later epochs only shuffle and batch; augmentation runs after
    caching (or it would freeze one random draw) and on whole batches, which vectorises it.

    * `preprocess(x, y) -> (x, y)` maps every example in parallel.
    * `cache` keeps the preprocessed examples in memory, in files at a path, or nowhere. The
      default, `"auto"`, caches in memory except for a split of a `FileTable` source (straight
      from `load_source`, `split` or `train_val_test`): its files are read and decoded again,
      in parallel, every epoch, so memory does not grow with the number of files.
    * Training only: a shuffle seeded with `seed`, reshuffled every epoch unless `deterministic`.
      An uncached `FileTable` split shuffles its list of files or rows before reading them
      (cheap, and as thorough as a buffer holding every example); anything else shuffles the
      examples.
      The order also depends on TensorFlow's global seed, as every seeded TF op does: call
      `keras.utils.set_random_seed` first for runs that repeat exactly.
    * `batch(batch_size)`; then, training only, `augment(x, y) -> (x, y)` on each batch.
    * `prefetch(AUTOTUNE)`.

    Evaluation pipelines (`training=False`) always keep the input order, so predictions line up
    with the examples; `deterministic=False` lets training pipelines finish parallel maps out of
    order for speed.

    Args:
        ds: An unbatched dataset of `(x, y)` elements.
        batch_size: Examples per batch, at least 1.
        training: Shuffle and augment (True) or keep order (False).
        seed: Shuffle seed. Defaults to `0`.
        preprocess: Per-example map `(x, y) -> (x, y)`. Defaults to `None`.
        augment: Per-batch map `(x, y) -> (x, y)`, used only when training. Defaults to `None`.
        cache: `"auto"` (see above), `"memory"` or `True` (in memory), a file path prefix
            (`tf.data.Dataset.cache` files, reused by later runs with the same path), or
            `False` / `None` (no cache). Defaults to `"auto"`.
        shuffle_buffer: Shuffle buffer size; `None` takes the whole dataset up to 10,000
            examples, or every row of an uncached `FileTable` split. Defaults to `None`.
        deterministic: The same order every epoch and ordered parallel maps. Defaults to
            `False`.
        drop_remainder: Drop the last batch when smaller than `batch_size`. Defaults to `False`.

    Returns:
        The batched, prefetched dataset.

    Raises:
        DataError: For a batch size or shuffle buffer below 1, or an unknown `cache`.

    Example:

    >>> ds = tf.data.Dataset.from_tensor_slices((tf.zeros([10, 4]), tf.range(10)))
    >>> batches = i2dl_keras.data.make_pipeline(ds, 4, training=True, seed=1)
    >>> [int(x.shape[0]) for x, _ in batches]
    [4, 4, 2]
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise DataError(
            f"batch_size must be a positive integer. Received: batch_size={batch_size!r}"
        )
    if shuffle_buffer is not None and (
        isinstance(shuffle_buffer, bool)
        or not isinstance(shuffle_buffer, int)
        or shuffle_buffer < 1
    ):
        raise DataError(
            f"shuffle_buffer must be a positive integer or None. "
            f"Received: shuffle_buffer={shuffle_buffer!r}"
        )
    table = file_table(ds)
    if isinstance(cache, str) and cache == "auto":
        mode = None if table is not None else "memory"
    else:
        mode = _cache_mode(cache)
    ordered = deterministic or not training
    streaming = table is not None and mode is None
    if streaming:
        # Shuffle file names, not decoded images: the buffer costs bytes per file. Reading,
        # decoding and `preprocess` run as one parallel map.
        if preprocess is not None:
            table = table.map(preprocess)
        ds = table.elements(
            shuffle_seed=seed if training else None,
            shuffle_buffer=shuffle_buffer,
            reshuffle_each_iteration=not deterministic,
            deterministic=ordered,
        )
    elif preprocess is not None:
        ds = ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE, deterministic=ordered)
    if mode == "memory":
        ds = ds.cache()
    elif mode is not None:
        ds = ds.cache(mode)
    if training and not streaming:
        if shuffle_buffer is None:
            n = int(ds.cardinality())
            shuffle_buffer = min(n, MAX_SHUFFLE_BUFFER) if n > 0 else MAX_SHUFFLE_BUFFER
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=not deterministic)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if training and augment is not None:
        ds = ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=ordered)
    return ds.prefetch(tf.data.AUTOTUNE)


def _percent(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def _count(source: Source, ds: tf.data.Dataset, key: str) -> int:
    n = source.num_examples.get(key)
    return n if n is not None else _cardinality(ds)


def train_val_test(
    source: Source,
    *,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[tf.data.Dataset, tf.data.Dataset, tf.data.Dataset, list[str]]:
    """Train, validation and test splits of a `Source`, carving out the splits it lacks.

    A source without a test split gives up `test_fraction` of its training data as the test
    split; then, when it has no validation split, `validation_fraction` of the remaining training
    data becomes the validation split. Both carvings are seeded (`split`), so a given source and
    seed always test on the same examples.

    Args:
        source: The loaded source.
        validation_fraction: Share of the training data held out for validation when the
            source has no validation split. Defaults to `0.1`.
        test_fraction: Share of the training data held out for testing when the source has no
            test split. Defaults to `0.2`.
        seed: Which examples are held out. Defaults to `0`.

    Returns:
        `(train, validation, test, notes)`: unbatched datasets and the notes saying what was
        held out (the source's own notes are not repeated).

    Raises:
        DataError: For fractions outside (0, 1) or too little data to split.
    """
    validation_fraction = _check_fraction(validation_fraction, "validation_fraction")
    test_fraction = _check_fraction(test_fraction, "test_fraction")
    notes = []
    train, test, validation = source.train, source.test, source.validation
    if test is None:
        n = _count(source, train, "train")
        train, test = split(train, test_fraction, seed)
        notes.append(
            f"held out {_percent(test_fraction)} of the {n:,} training examples as the test "
            f"split ({held_out_count(n, test_fraction):,} examples, seed {seed})"
        )
        remaining = n - held_out_count(n, test_fraction)
        what = "remaining training examples"
    else:
        remaining = _count(source, train, "train")
        what = "training examples"
    if validation is None:
        train, validation = split(train, validation_fraction, seed)
        notes.append(
            f"held out {_percent(validation_fraction)} of the {remaining:,} {what} as the "
            f"validation split ({held_out_count(remaining, validation_fraction):,} examples, "
            f"seed {seed})"
        )
    return train, validation, test, notes
