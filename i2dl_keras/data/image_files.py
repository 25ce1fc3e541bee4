"""Local image data: one folder per class, a folder of unlabelled images, or mask pairs.

Decoding happens eagerly in Python with Pillow (see `i2dl_keras.data.images`), so every error
names its file, and the arrays then feed `tf.data.Dataset.from_tensor_slices`.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import tensorflow as tf

from i2dl_keras.data import images as image_utils
from i2dl_keras.data import paths
from i2dl_keras.data.errors import DataError
from i2dl_keras.data.source import ReadOptions, Source

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


def _decode_or_none(fn, path, options: ReadOptions, bad: list[str], what: str = "image"):
    """Runs a decode; a file Pillow verified but cannot decode (truncated) is bad too."""
    try:
        return fn()
    except image_utils.READ_ERRORS as err:
        if not options.skip_bad_files:
            raise DataError(
                image_utils.bad_file_message(path, image_utils.read_error_reason(err), what)
            ) from None
        bad.append(path)
        return None


def _choose_channels(headers, channels: int | None) -> tuple[int, list[str]]:
    if channels is not None:
        return channels, []
    gray = sum(1 for h in headers if h.gray)
    if gray == len(headers):
        return 1, []
    if gray:
        return 3, [f"converted {gray:,} greyscale images to RGB to match the colour ones"]
    return 3, []


def _decode_splits(
    root: str, split_paths: dict[str, list[str]], options: ReadOptions, notes: list[str]
) -> dict[str, tuple[np.ndarray, list[int]]]:
    """Probes, then decodes every split's images to one size and channel count.

    Returns split -> (the stacked `uint8` images, the indices of the files they came from in
    that split's list); unreadable files are skipped (with a note) or raise, as `options` say.
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
    decoded = {}
    logger.info("decoding %d images to %dx%dx%d", len(good), size[0], size[1], channels)
    for split, split_files in split_paths.items():
        arrays, kept = [], []
        for i, path in enumerate(split_files):
            if header_of[path] is None:
                continue
            array = _decode_or_none(
                lambda p=path: image_utils.decode_image(p, size, channels), path, options, bad
            )
            if array is not None:
                arrays.append(array)
                kept.append(i)
        if not arrays:
            raise DataError(f"No readable images in the {split} split under {root}")
        decoded[split] = (np.stack(arrays), kept)
    if bad:
        notes.append(_skipped_note(bad))
    return decoded


def _ignored_note(ignored: list[str]) -> list[str]:
    if not ignored:
        return []
    return [
        f"ignored {image_utils.plural(len(ignored), 'file')} that are not images: "
        f"{paths.short_list(ignored)}"
    ]


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
    decoded = _decode_splits(
        root, {split: [p for p, _ in items] for split, items in split_files.items()}, options, notes
    )
    label_of = {name: i for i, name in enumerate(class_names)}
    datasets, counts = {}, {}
    for split, (arrays, kept) in decoded.items():
        labels = [label_of[split_files[split][i][1]] for i in kept]
        datasets[split] = tf.data.Dataset.from_tensor_slices(
            (arrays, np.asarray(labels, dtype=np.int64))
        )
        counts[split] = len(arrays)
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
    decoded = _decode_splits(root, split_files, options, notes)
    datasets = {
        split: tf.data.Dataset.from_tensor_slices(arrays).map(lambda image: (image, image))
        for split, (arrays, _) in decoded.items()
    }
    return Source(
        name=f"unlabelled images in {root}",
        task="autoencoder",
        train=datasets["train"],
        test=datasets.get("test"),
        validation=datasets.get("validation"),
        num_examples={split: len(arrays) for split, (arrays, _) in decoded.items()},
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


def load_image_mask_pairs(root: str, options: ReadOptions) -> Source:
    """Reads `root/image/*` + `root/label/*` (or per split under `train/`, `test/`)."""
    notes: list[str] = []
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
        kept[image_path] = ih
    if not kept:
        raise DataError(f"None of the {len(all_pairs):,} image/mask pairs under {root} is readable")
    headers = list(kept.values())
    size, size_notes = image_utils.target_size(
        [h.size for h in headers], options.image_size, what="images and masks"
    )
    channels, channel_notes = _choose_channels(headers, options.channels)
    notes += size_notes + channel_notes

    logger.info("decoding %d pairs to %dx%d", len(kept), size[0], size[1])
    decoded: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    colour = []
    for split, pairs in split_pairs.items():
        images, masks = [], []
        for image_path, mask_path in pairs:
            if image_path not in kept:
                continue
            image = _decode_or_none(
                lambda p=image_path: image_utils.decode_image(p, size, channels),
                image_path,
                options,
                bad,
            )
            mask = _decode_or_none(
                lambda p=mask_path: image_utils.decode_mask(p, size),
                mask_path,
                options,
                bad,
                "mask",
            )
            if image is None or mask is None:
                continue
            images.append(image)
            masks.append(mask[0])
            colour.append(mask[1])
        if not images:
            raise DataError(f"No readable image/mask pairs in the {split} split under {root}")
        decoded[split] = (images, masks)

    any_colour = any(colour)
    flat_masks = [m for _, masks in decoded.values() for m in masks]
    if any_colour:
        flags = iter(colour)
        flat_masks = [m if next(flags) else image_utils.pack_grey(m) for m in flat_masks]
    id_masks, class_names, mask_notes = image_utils.masks_to_ids(flat_masks, any_colour)
    notes += mask_notes
    datasets, counts, start = {}, {}, 0
    for split, (images, masks) in decoded.items():
        ids = id_masks[start : start + len(masks)]
        start += len(masks)
        datasets[split] = tf.data.Dataset.from_tensor_slices((np.stack(images), np.stack(ids)))
        counts[split] = len(images)
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
