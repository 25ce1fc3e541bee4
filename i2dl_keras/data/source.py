"""The `Source` record every loader returns, and the option checks shared by the loaders."""

from __future__ import annotations

import codecs
import dataclasses
import weakref
from collections.abc import Callable, Mapping

import numpy as np
import tensorflow as tf

from i2dl_keras.data.errors import DataError

TASKS = ("image_classification", "segmentation", "text_classification", "autoencoder")

FORMATS = (
    "idx",
    "image_folders",
    "unlabelled_images",
    "image_mask_pairs",
    "text_files",
    "text_folders",
    "csv",
    "tsv",
)

# The task each local format serves. The autoencoder task also reads every image
# classification format, without its labels (`images_as_targets`).
FORMAT_TASKS = {
    "idx": "image_classification",
    "image_folders": "image_classification",
    "unlabelled_images": "autoencoder",
    "image_mask_pairs": "segmentation",
    "text_files": "text_classification",
    "text_folders": "text_classification",
    "csv": "text_classification",
    "tsv": "text_classification",
}


@dataclasses.dataclass
class Source:
    """A loaded data set: unbatched `tf.data` splits plus what the user should know about them.

    Elements are `(x, y)` pairs. Images are `uint8` tensors `[H, W, C]` with `C` 1 or 3 and labels
    `int64` scalars; segmentation pairs are a `uint8 [H, W, C]` image and a `uint8 [H, W]` mask of
    class ids `0..K-1`; text elements are a `tf.string` scalar (UTF-8) and an `int64` label; the
    autoencoder task pairs each image with itself, its reconstruction target, and has no classes.
    The splits of local image folders, text folders and CSV/TSV tables hold file names (or row
    offsets) and read them as they are iterated (see `FileTable`); the other sources hold their
    data in memory.

    Args:
        name: Human description, e.g. `"MNIST IDX files in /x/mnist"`.
        task: `"image_classification"`, `"segmentation"`, `"text_classification"` or
            `"autoencoder"`.
        train: The training split, unbatched.
        test: The test split, or `None` when the source has no test split of its own.
        validation: The validation split, or `None`. Defaults to `None`.
        class_names: Class id -> name. For segmentation read from files, the mask values found
            (e.g. `["0", "255"]`). Defaults to `[]`.
        num_examples: Examples per split where known, e.g. `{"train": 6000, "test": 2000}`.
            Defaults to `{}`.
        notes: Things the user should be told (images resized, bad files skipped, text decoded
            as Latin-1, ...). Defaults to `[]`.
    """

    name: str
    task: str
    train: tf.data.Dataset
    test: tf.data.Dataset | None
    validation: tf.data.Dataset | None = None
    class_names: list[str] = dataclasses.field(default_factory=list)
    num_examples: dict[str, int] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def num_classes(self) -> int:
        """The number of classes, `len(class_names)`."""
        return len(self.class_names)


@dataclasses.dataclass(frozen=True)
class ReadOptions:
    """The checked reading options shared by every loader (internal)."""

    image_size: tuple[int, int] | None = None
    channels: int | None = None
    encoding: str | None = None
    skip_bad_files: bool = False
    seed: int = 0


class FileTable:
    """A split read lazily from files: its rows (file names, ...) and how a row is read.

    A loader that decodes files inside the pipeline keeps one table per split instead of decoded
    data: `dataset()` slices the rows and maps `read` over them in parallel, so memory holds the
    file names and a few decoded elements, whatever the number of files. The dataset is recorded
    (weakly, by identity) so that `split` can cut the row list instead of filtering decoded
    elements, `make_pipeline` can shuffle file names instead of decoded images, and
    `images_as_targets` can extend the table; any other transformation of that dataset is an
    ordinary dataset to them.

    Args:
        columns: Column name -> 1-D NumPy array, all of one length, e.g. `path`, `label`. A
            `label` column holds the label that `read` gives each row's element, so that class
            selection can read the labels without reading the files.
        read: `row -> element`, a `tf.data` map over a dict of scalar tensors.
        then: Further per-element maps, applied in order after `read` in the same `tf.data`
            map (a tuple element is passed as positional arguments, as `Dataset.map` does).
            Defaults to `()`.
    """

    def __init__(
        self,
        columns: Mapping[str, np.ndarray],
        read: Callable,
        then: tuple[Callable, ...] = (),
    ):
        self.columns = {name: np.asarray(values) for name, values in columns.items()}
        lengths = {len(values) for values in self.columns.values()}
        if len(lengths) != 1:
            raise ValueError(f"columns must share one length. Received: lengths={lengths}")
        self.read = read
        self.then = tuple(then)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def subset(self, indices: np.ndarray) -> FileTable:
        """The table of the rows at `indices`, in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        columns = {name: values[indices] for name, values in self.columns.items()}
        return FileTable(columns, self.read, self.then)

    def map(self, fn: Callable) -> FileTable:
        """The table whose elements are `fn(*element)` of this one's."""
        return FileTable(self.columns, self.read, (*self.then, fn))

    def elements(
        self,
        *,
        shuffle_seed: int | None = None,
        shuffle_buffer: int | None = None,
        reshuffle_each_iteration: bool = True,
        deterministic: bool | None = None,
    ) -> tf.data.Dataset:
        """The rows, shuffled first when `shuffle_seed` is given, read in parallel."""
        rows = tf.data.Dataset.from_tensor_slices(self.columns)
        if shuffle_seed is not None:
            rows = rows.shuffle(
                shuffle_buffer or len(self),
                seed=shuffle_seed,
                reshuffle_each_iteration=reshuffle_each_iteration,
            )
        read, then = self.read, self.then

        def element(row):
            # One map for reading and every later step: one function call per file.
            value = read(row)
            for fn in then:
                value = fn(*value) if isinstance(value, tuple) else fn(value)
            return value

        return rows.map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)

    def dataset(self) -> tf.data.Dataset:
        """The elements in row order, recorded as this table's dataset."""
        ds = self.elements()
        _TABLES[ds] = self
        return ds


_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def file_table(ds: tf.data.Dataset | None) -> FileTable | None:
    """The `FileTable` that made `ds` (itself, not a transformation of it), or None."""
    try:
        return _TABLES.get(ds)
    except TypeError:  # not a dataset (nothing that cannot be weakly referenced is recorded)
        return None


def images_as_targets(source: Source) -> Source:
    """An image classification source as an autoencoder source: `(image, image)`, no classes."""

    def pair(image, _label):
        return image, image

    def unlabel(ds):
        if ds is None:
            return None
        table = file_table(ds)
        if table is not None:
            return table.map(pair).dataset()
        return ds.map(pair, num_parallel_calls=tf.data.AUTOTUNE)

    return dataclasses.replace(
        source,
        task="autoencoder",
        train=unlabel(source.train),
        test=unlabel(source.test),
        validation=unlabel(source.validation),
        class_names=[],
    )


def check_task(task: str) -> str:
    if task not in TASKS:
        raise DataError(f"Unknown task {task!r}: expected one of {', '.join(TASKS)}.")
    return task


def check_options(
    *,
    image_size,
    channels,
    encoding,
    skip_bad_files: bool,
    seed: int,
) -> ReadOptions:
    """Validates the reading options of `load_source` and returns them as a `ReadOptions`."""
    if image_size is not None:
        try:
            height, width = image_size
            ok = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in image_size)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise DataError(
                "image_size must be a pair of positive integers (height, width). "
                f"Received: image_size={image_size!r}"
            )
        image_size = (int(height), int(width))
    if channels is not None and channels not in (1, 3):
        raise DataError(f"channels must be 1, 3 or None. Received: channels={channels!r}")
    if encoding is not None:
        try:
            encoding = codecs.lookup(encoding).name
        except (LookupError, TypeError):
            raise DataError(
                f"Unknown text encoding {encoding!r}: pass a Python codec name such as "
                "'utf-8' or 'latin-1'."
            ) from None
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise DataError(f"seed must be an integer. Received: seed={seed!r}")
    return ReadOptions(
        image_size=image_size,
        channels=channels,
        encoding=encoding,
        skip_bad_files=bool(skip_bad_files),
        seed=seed,
    )
