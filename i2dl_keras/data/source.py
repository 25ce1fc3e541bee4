"""The `Source` record every loader returns, and the option checks shared by the loaders."""

from __future__ import annotations

import codecs
import dataclasses

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


def images_as_targets(source: Source) -> Source:
    """An image classification source as an autoencoder source: `(image, image)`, no classes."""

    def pair(image, _label):
        return image, image

    def unlabel(ds):
        return None if ds is None else ds.map(pair, num_parallel_calls=tf.data.AUTOTUNE)

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
