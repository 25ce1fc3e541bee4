"""Local image data: one folder per class, a folder of unlabelled images, or image/mask pairs.

Loading lists the folders and runs a check pass over every file's header and structure
(`images.probe`, no pixels decoded): unreadable files are named, or skipped with a note, and the
common size and channel count are chosen. Each split is then a `FileTable` of file names whose
`tf.data` pipeline reads and decodes the files in parallel as they are needed
(`images.read_image`), so memory does not grow with the number of files. Masks are the exception
that proves the rule: their distinct values become the classes, so loading reads every mask once,
in the same parallel way, keeping only each mask's values.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import tensorflow as tf

from i2dl_keras.data import images as image_utils
from i2dl_keras.data import paths
from i2dl_keras.data.errors import DataError
from i2dl_keras.data.source import FileTable, ReadOptions, Source

logger = logging.getLogger(__name__)

IMAGE_DIR_NAMES = ("image", "images", "img", "imgs")
MASK_DIR_NAMES = ("label", "labels", "mask", "masks")


def pair_dirs(folder: str) -> tuple[str, str] | None:
    """`(image_dir, mask_dir)` when `folder` holds both, else None."""
    image_dir = paths.find_child(folder, IMAGE_DIR_NAMES)
    mask_dir = paths.find_child(folder, MASK_DIR_NAMES)
    if image_dir and mask_dir:
        return image_dir, mask_dir
    return None


def _skipped_note(bad: list[str]) -> str:
    return f"skipped {image_utils.plural(len(bad), 'unreadable file')}: {paths.short_list(bad)}"


def _choose_channels(headers, channels: int | None) -> tuple[int, list[str]]:
    if channels is not None:
        return channels, []
    gray = sum(1 for h in headers if h.gray)
    if gray == len(headers):
        return 1, []
    if gray:
        return 3, [f"converted {gray:,} greyscale images to RGB to match the colour ones"]
    return 3, []


def _ignored_note(ignored: list[str]) -> list[str]:
    if not ignored:
        return []
    return [
        f"ignored {image_utils.plural(len(ignored), 'file')} that are not images: "
        f"{paths.short_list(ignored)}"
    ]


def _check_splits(
    root: str, split_paths: dict[str, list[str]], options: ReadOptions, notes: list[str]
) -> tuple[dict[str, list[tuple[int, image_utils.ImageHeader]]], tuple[int, int], int]:
    """Checks every split's files and chooses the size and channel count.

    Returns split -> `(index in that split's list, header)` of the readable files, the size
    `(height, width)` and the channel count; unreadable files are skipped (with a note) or
    raise, as `options` say.
    """
    all_paths = [p for split in split_paths.values() for p in split]
    logger.info("checking %d images under %s", len(all_paths), root)
    headers, bad = image_utils.probe_all(all_paths, skip_bad_files=options.skip_bad_files)
    good = [h for h in headers if h is not None]
    if not good:
        raise DataError(f"None of the {len(all_paths):,} images under {root} could be read")
    size, size_notes = image_utils.target_size([h.size for h in good], options.image_size)
    channels, channel_notes = _choose_channels(good, options.channels)
    notes += size_notes + channel_notes
    header_of = dict(zip(all_paths, headers))
    kept = {}
    for split, split_files in split_paths.items():
        rows = [(i, header_of[p]) for i, p in enumerate(split_files) if header_of[p] is not None]
        if not rows:
            raise DataError(f"No readable images in the {split} split under {root}")
        kept[split] = rows
    if bad:
        notes.append(_skipped_note(bad))
    return kept, size, channels


def _image_table(
    headers: list[image_utils.ImageHeader],
    size: tuple[int, int],
    channels: int,
    labels: list[int] | None,
) -> FileTable:
    """The split's files, read as `(image, label)`, or `(image, image)` without labels."""
    columns = {
        "path": np.array([h.path for h in headers], dtype=object),
        "decoder": np.array([h.decoder for h in headers], dtype=np.int32),
    }
    if labels is not None:
        columns["label"] = np.asarray(labels, dtype=np.int64)

    decoders = sorted({h.decoder for h in headers})
    resize = any(h.size != size for h in headers)

    def read(row):
        image = image_utils.read_image(
            row["path"], row["decoder"], size, channels, decoders=decoders, resize=resize
        )
        return (image, row["label"]) if labels is not None else (image, image)

    return FileTable(columns, read)


def load_image_folders(root: str, options: ReadOptions) -> Source:
    """Reads `root/<class>/*.png` (or `root/train/<class>/...` plus `test/`) into a Source."""
    split_files: dict[str, list[tuple[str, str]]] = {}
    class_names: list[str] | None = None
    ignored: list[str] = []
    for split, folder in paths.split_dirs(root).items():
        classes = paths.subfolders(folder)
        if not classes:
            raise DataError(
                f"{folder} has no class subfolders: expected one subfolder per class, each "
                f"holding images ({', '.join(image_utils.IMAGE_EXTENSIONS)})"
            )
        if class_names is None:
            class_names = classes
        elif set(classes) - set(class_names):
            raise DataError(
                f"{folder} has class folders that the training split lacks: "
                f"{paths.short_list(sorted(set(classes) - set(class_names)))}"
            )
        items = []
        for name in classes:
            class_dir = os.path.join(folder, name)
            files = paths.data_files(class_dir)
            images = [f for f in files if image_utils.is_image_file(f)]
            ignored += [
                os.path.join(class_dir, f) for f in files if not image_utils.is_image_file(f)
            ]
            if not images:
                raise DataError(
                    f"Class folder {class_dir} holds no images "
                    f"({', '.join(image_utils.IMAGE_EXTENSIONS)})"
                )
            items += [(os.path.join(class_dir, f), name) for f in images]
        split_files[split] = items
    notes = _ignored_note(ignored)
    kept, size, channels = _check_splits(
        root, {split: [p for p, _ in items] for split, items in split_files.items()}, options, notes
    )
    label_of = {name: i for i, name in enumerate(class_names)}
    datasets, counts = {}, {}
    for split, rows in kept.items():
        labels = [label_of[split_files[split][i][1]] for i, _ in rows]
        table = _image_table([h for _, h in rows], size, channels, labels)
        datasets[split] = table.dataset()
        counts[split] = len(table)
    return Source(
        name=f"image folders in {root}",
        task="image_classification",
        train=datasets["train"],
        test=datasets.get("test"),
        validation=datasets.get("validation"),
        class_names=list(class_names),
        num_examples=counts,
        notes=notes,
    )


def load_unlabelled_images(root: str, options: ReadOptions) -> Source:
    """Reads the images directly in `root` (or in `root/train/`, `test/`, ...), without labels.

    The autoencoder task's own format: every element is `(image, image)`, the image being its
    own target, and the source has no classes. Subfolders other than the split folders and files
    that are not images are ignored (the latter with a note).
    """
    split_files: dict[str, list[str]] = {}
    ignored: list[str] = []
    for split, folder in paths.split_dirs(root).items():
        files = paths.data_files(folder)
        images = [os.path.join(folder, f) for f in files if image_utils.is_image_file(f)]
        ignored += [os.path.join(folder, f) for f in files if not image_utils.is_image_file(f)]
        if not images:
            raise DataError(
                f"{folder} holds no images ({', '.join(image_utils.IMAGE_EXTENSIONS)}) directly "
                "in it: a folder of unlabelled images keeps them at its top level"
            )
        split_files[split] = images
    notes = _ignored_note(ignored)
    kept, size, channels = _check_splits(root, split_files, options, notes)
    tables = {
        split: _image_table([h for _, h in rows], size, channels, None)
        for split, rows in kept.items()
    }
    return Source(
        name=f"unlabelled images in {root}",
        task="autoencoder",
        train=tables["train"].dataset(),
        test=tables["test"].dataset() if "test" in tables else None,
        validation=tables["validation"].dataset() if "validation" in tables else None,
        num_examples={split: len(table) for split, table in tables.items()},
        notes=notes,
    )


def _match_pairs(image_dir: str, mask_dir: str) -> list[tuple[str, str]]:
    def by_stem(folder):
        found: dict[str, str] = {}
        for name in paths.data_files(folder):
            if not image_utils.is_image_file(name):
                continue
            stem = os.path.splitext(name)[0]
            if stem in found:
                raise DataError(
                    f"Two files in {folder} share the name {stem!r} ({found[stem]}, {name}): "
                    "images and masks are matched by file name without extension"
                )
            found[stem] = name
        return found

    images, masks = by_stem(image_dir), by_stem(mask_dir)
    if not images:
        raise DataError(f"{image_dir} holds no images ({', '.join(image_utils.IMAGE_EXTENSIONS)})")
    lonely_images = sorted(set(images) - set(masks), key=image_utils.natural_key)
    lonely_masks = sorted(set(masks) - set(images), key=image_utils.natural_key)
    if lonely_images or lonely_masks:
        parts = []
        if lonely_images:
            parts.append(
                f"{len(lonely_images):,} images in {image_dir} have no mask in {mask_dir} "
                f"({paths.short_list([images[s] for s in lonely_images])})"
            )
        if lonely_masks:
            parts.append(
                f"{len(lonely_masks):,} masks in {mask_dir} have no image in {image_dir} "
                f"({paths.short_list([masks[s] for s in lonely_masks])})"
            )
        raise DataError(
            "Images and masks must pair up by file name without extension: " + "; ".join(parts)
        )
    return [
        (os.path.join(image_dir, images[s]), os.path.join(mask_dir, masks[s]))
        for s in sorted(images, key=image_utils.natural_key)
    ]


def _mask_failure(path: str) -> str:
    """Why a mask that passed the check pass could not be decoded, for the message."""
    try:
        with open(path, "rb") as f:
            image_utils.pillow_mask(f.read())
    except image_utils.READ_ERRORS as err:
        return image_utils.read_error_reason(err)
    return "TensorFlow cannot decode its pixels"


def _mask_values(
    masks: list[image_utils.ImageHeader], size: tuple[int, int], options: ReadOptions
) -> tuple[dict[int, tuple[np.ndarray, bool]], list[str]]:
    """Reads every mask once, in parallel: index -> (its distinct raw values, colour).

    Masks that cannot be decoded raise, or are left out and returned as bad paths when
    `options.skip_bad_files`.
    """
    rows = tf.data.Dataset.from_tensor_slices(
        (
            np.arange(len(masks), dtype=np.int64),
            np.array([m.path for m in masks], dtype=object),
            np.array([m.mask_decoder for m in masks], dtype=np.int32),
        )
    )

    decoders = sorted({m.mask_decoder for m in masks})

    def values(index, path, decoder):
        raw, colour = image_utils.read_mask(path, decoder, size, decoders=decoders)
        return index, tf.unique(tf.reshape(raw, [-1])).y, colour

    found = {}
    summaries = rows.map(values, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
    for index, distinct, colour in summaries.as_numpy_iterator():
        found[int(index)] = (distinct, bool(colour))
    bad = [m.path for i, m in enumerate(masks) if i not in found]
    if bad and not options.skip_bad_files:
        raise DataError(image_utils.bad_file_message(bad[0], _mask_failure(bad[0]), "mask"))
    return found, bad


def _pair_table(
    pairs: list[tuple[image_utils.ImageHeader, image_utils.ImageHeader]],
    size: tuple[int, int],
    channels: int,
    values: np.ndarray,
    colour: bool,
) -> FileTable:
    """The split's image/mask pairs, read as `(image, mask of class ids)`."""
    columns = {
        "image": np.array([i.path for i, _ in pairs], dtype=object),
        "image_decoder": np.array([i.decoder for i, _ in pairs], dtype=np.int32),
        "mask": np.array([m.path for _, m in pairs], dtype=object),
        "mask_decoder": np.array([m.mask_decoder for _, m in pairs], dtype=np.int32),
    }

    image_decoders = sorted({i.decoder for i, _ in pairs})
    mask_decoders = sorted({m.mask_decoder for _, m in pairs})
    resize = any(i.size != size for i, _ in pairs)

    def read(row):
        image = image_utils.read_image(
            row["image"],
            row["image_decoder"],
            size,
            channels,
            decoders=image_decoders,
            resize=resize,
        )
        raw, is_colour = image_utils.read_mask(
            row["mask"], row["mask_decoder"], size, decoders=mask_decoders
        )
        if colour:
            raw = tf.where(is_colour, raw, image_utils.pack_grey(raw))
        ids = tf.searchsorted(tf.constant(values[None, :]), tf.reshape(raw, [1, -1]))
        return image, tf.cast(tf.reshape(ids, size), tf.uint8)

    return FileTable(columns, read)


def load_image_mask_pairs(root: str, options: ReadOptions) -> Source:
    """Reads `root/image/*` + `root/label/*` (or per split under `train/`, `test/`).

    The distinct mask values, over all splits and in sorted order, become class ids
    `0..K-1`; a data set with any colour mask names its classes `#rrggbb`, grey ones too.
    """
    split_pairs: dict[str, list[tuple[str, str]]] = {}
    for split, folder in paths.split_dirs(root).items():
        dirs = pair_dirs(folder)
        if dirs is None:
            raise DataError(
                f"{folder} needs an image folder ({'/'.join(IMAGE_DIR_NAMES)}) and a mask folder "
                f"({'/'.join(MASK_DIR_NAMES)}) side by side; found: "
                f"{', '.join(paths.subfolders(folder)) or 'no subfolders'}"
            )
        split_pairs[split] = _match_pairs(*dirs)

    all_pairs = [pair for pairs in split_pairs.values() for pair in pairs]
    logger.info("checking %d image/mask pairs under %s", len(all_pairs), root)
    image_headers, bad_images = image_utils.probe_all(
        [i for i, _ in all_pairs], skip_bad_files=options.skip_bad_files
    )
    mask_headers, bad_masks = image_utils.probe_all(
        [m for _, m in all_pairs], skip_bad_files=options.skip_bad_files, what="mask"
    )
    bad = bad_images + bad_masks
    kept = {}
    for (image_path, mask_path), ih, mh in zip(all_pairs, image_headers, mask_headers):
        if ih is None or mh is None:
            continue
        if ih.size != mh.size:
            raise DataError(
                f"Mask {mask_path} is {mh.size[0]}x{mh.size[1]} but its image {image_path} is "
                f"{ih.size[0]}x{ih.size[1]} (height x width): a mask must match its image"
            )
        kept[image_path] = (ih, mh)
    if not kept:
        raise DataError(f"None of the {len(all_pairs):,} image/mask pairs under {root} is readable")
    headers = [ih for ih, _ in kept.values()]
    size, notes = image_utils.target_size(
        [h.size for h in headers], options.image_size, what="images and masks"
    )
    channels, channel_notes = _choose_channels(headers, options.channels)
    notes += channel_notes

    logger.info("reading the values of %d masks at %dx%d", len(kept), size[0], size[1])
    checked = list(kept.values())
    found, bad_values = _mask_values([mh for _, mh in checked], size, options)
    bad += bad_values
    good = {checked[i][0].path: summary for i, summary in found.items()}
    any_colour = any(colour for _, colour in good.values())
    distinct = [
        v if colour or not any_colour else image_utils.pack_grey(v) for v, colour in good.values()
    ]
    values = np.unique(np.concatenate(distinct)) if distinct else np.array([], np.int64)
    class_names, mask_notes = image_utils.mask_class_names(values, any_colour)
    notes += mask_notes

    datasets, counts = {}, {}
    for split, pairs in split_pairs.items():
        rows = [kept[image_path] for image_path, _ in pairs if image_path in good]
        if not rows:
            raise DataError(f"No readable image/mask pairs in the {split} split under {root}")
        table = _pair_table(rows, size, channels, values.astype(np.int64), any_colour)
        datasets[split] = table.dataset()
        counts[split] = len(table)
    if bad:
        notes.append(_skipped_note(bad))
    return Source(
        name=f"image/mask pairs in {root}",
        task="segmentation",
        train=datasets["train"],
        test=datasets.get("test"),
        validation=datasets.get("validation"),
        class_names=class_names,
        num_examples=counts,
        notes=notes,
    )
