"""`load_source`: one `--data SPEC` string to a `Source`."""

from __future__ import annotations

import logging

from i2dl_keras.data import generated, local, tfds_source
from i2dl_keras.data.errors import DataError
from i2dl_keras.data.source import (
    FORMATS,
    Source,
    check_options,
    check_task,
    images_as_targets,
)

logger = logging.getLogger(__name__)

TFDS_NAMES = tuple(tfds_source.KNOWN_TFDS)


def load_source(
    spec: str,
    task: str,
    *,
    data_dir: str | None = None,
    data_format: str | None = None,
    encoding: str | None = None,
    skip_bad_files: bool = False,
    download: bool = False,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    seed: int = 0,
) -> Source:
    """Loads the data named by `spec` for `task` as unbatched `tf.data` splits.

    `spec` is one of:

    * `"builtin"`: data shipped with an installed dependency, no network. For
      `image_classification`, scikit-learn's 1,797 8x8 digits (0..16 scaled to 0..255), with no
      test split of its own.
    * `"synthetic"`: a tiny generated, learnable, seeded set with train and test splits: patterned
      16x16 images (4 classes), shapes with exact masks (2 classes) or sentences of positive and
      negative words (2 classes).
    * A TFDS name: `mnist`, `fashion_mnist`, `cifar10`, `imdb_reviews`, `tf_flowers`,
      `cats_vs_dogs`, `oxford_iiit_pet` (image classification, or segmentation of its trimaps),
      or any other as `tfds:NAME`. A known name always means TFDS; write `./mnist` for a local
      folder of that name. Nothing is downloaded unless `download=True`.
    * A local file or folder, its format detected from the names in it (`data_format` forces one
      of `idx`, `image_folders`, `unlabelled_images`, `image_mask_pairs`, `text_files`,
      `text_folders`, `csv`, `tsv`). Local images (PNG, JPEG, GIF, BMP, WebP, TIFF) are
      listed and their headers checked up front, so that a corrupt file is named (or skipped)
      before training, then read and decoded in parallel inside the `tf.data` pipeline as they
      are needed, so memory does not grow with the number of files; masks are read once up
      front to find their classes. Class folders of text files and CSV/TSV
      tables stream the same way (file names or row offsets up front, text read in the
      pipeline); one-file-per-class line files and IDX files are read into memory. `train/`,
      `validation/` (or `val/`) and `test/` subfolders, when present, become the splits. A
      folder of images without class subfolders (`unlabelled_images`) serves the
      `autoencoder` task only.

    Elements: images `uint8 [H, W, C]` with `C` 1 or 3 (`channels` forces one) and `int64` labels;
    segmentation pairs `(uint8 [H, W, C], uint8 [H, W])` with masks of class ids 0..K-1, the
    distinct mask values mapped in sorted order and named in `class_names`; text `(tf.string,
    int64)`. The `autoencoder` task reads every image source (image classification data without
    its labels, or a folder of unlabelled images) as `(image, image)` pairs, with no classes.
    `image_size` resizes images bilinearly and masks by nearest neighbour; without it, local
    images of mixed sizes are resized to the most common size, with a note.

    Args:
        spec: What to load (see above).
        task: `"image_classification"`, `"segmentation"`, `"text_classification"` or
            `"autoencoder"`.
        data_dir: Where TFDS keeps prepared data sets; `None` uses TFDS' default. Defaults to
            `None`.
        data_format: Force the format of a local path. Defaults to `None` (detect).
        encoding: Text encoding of local text files; `None` reads UTF-8 and falls back to
            Latin-1 per file, with a note. Defaults to `None`.
        skip_bad_files: Skip unreadable images (counted in a note) instead of raising: those
            the header check finds, and masks that fail to decode. Defaults to `False`.
        download: Let TFDS download and prepare data that is not prepared yet. Defaults to
            `False`.
        image_size: `(height, width)` to resize images (and masks) to. Defaults to `None`.
        channels: Force 1 or 3 image channels. Defaults to `None` (as stored).
        seed: Seed of the `synthetic` data. Defaults to `0`.

    Returns:
        The `Source`.

    Raises:
        DataError: For every bad input: unknown task, spec or format, a missing or empty path,
            corrupt files, labels that do not match the images, TFDS data not prepared, offline.

    Example:

    >>> source = i2dl_keras.data.load_source("builtin", "image_classification")
    >>> source.num_examples, source.train.element_spec[0].shape
    ({'train': 1797}, TensorShape([8, 8, 1]))
    """
    task = check_task(task)
    options = check_options(
        image_size=image_size,
        channels=channels,
        encoding=encoding,
        skip_bad_files=skip_bad_files,
        seed=seed,
    )
    if data_format is not None and data_format not in FORMATS:
        raise DataError(
            f"Unknown data format {data_format!r} (--data-format): expected one of "
            f"{', '.join(FORMATS)}"
        )
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(
            "--data is empty: pass builtin, synthetic, a TFDS name ("
            + ", ".join(TFDS_NAMES)
            + ") or tfds:NAME, or a path to local files"
        )
    spec = spec.strip()
    lowered = spec.lower()
    kind = "local"
    if lowered in ("builtin", "synthetic"):
        kind = lowered
    elif lowered.startswith("tfds:") or lowered in TFDS_NAMES:
        kind = "tfds"
    if data_format is not None and kind != "local":
        raise DataError(
            f"--data-format {data_format} applies to local paths only, not to --data {spec}"
        )
    logger.info("loading %s data for %s", spec, task)
    if task == "autoencoder" and kind != "local":
        # Every built-in and TFDS image source serves an autoencoder, its labels dropped.
        return images_as_targets(
            load_source(
                spec,
                "image_classification",
                data_dir=data_dir,
                encoding=encoding,
                skip_bad_files=skip_bad_files,
                download=download,
                image_size=image_size,
                channels=channels,
                seed=seed,
            )
        )
    if kind == "builtin":
        return generated.load_builtin(task, options)
    if kind == "synthetic":
        return generated.load_synthetic(task, options)
    if kind == "tfds":
        name = spec[5:] if lowered.startswith("tfds:") else lowered
        if not name:
            raise DataError("--data tfds:NAME needs a data set name after 'tfds:'")
        return tfds_source.load_tfds(
            name, task, data_dir=data_dir, download=download, options=options
        )
    return local.load_local(spec, task, data_format, options)
