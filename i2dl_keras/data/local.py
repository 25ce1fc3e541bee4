"""Local files and folders: detect the format, check it suits the task, and read it."""

from __future__ import annotations

import os

from i2dl_keras.data import idx, image_files, paths, text_files
from i2dl_keras.data.errors import DataError
from i2dl_keras.data.images import IMAGE_EXTENSIONS, is_image_file
from i2dl_keras.data.source import (
    FORMAT_TASKS,
    FORMATS,
    ReadOptions,
    Source,
    images_as_targets,
)

# What detection looks for, in the words of its error message.
FORMAT_DESCRIPTIONS = {
    "idx": "MNIST IDX files (train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz])",
    "image_folders": "one subfolder of images per class (optionally under train/ and test/)",
    "unlabelled_images": "a folder of images without class subfolders (optionally under train/ "
    "and test/), for autoencoders",
    "image_mask_pairs": "image/ and label/ folders of images and masks with matching names",
    "text_files": "one text file per class with one example per line (e.g. rt-polarity.pos/.neg)",
    "text_folders": "one subfolder per class holding one .txt file per example (aclImdb layout)",
    "csv": "a .csv file with a header naming a text and a label column",
    "tsv": "a .tsv file with a header naming a text and a label column",
}

# How many files per class folder detection looks at.
_PEEK = 20


def _looked_for() -> str:
    return "; ".join(f"{name}: {text}" for name, text in FORMAT_DESCRIPTIONS.items())


def _is_idx_name(name: str) -> bool:
    return any(
        name.startswith(stem.split("-idx")[0]) and "idx" in name for _, stem, _ in idx.IDX_FILES
    )


def _class_folder_kind(folder: str) -> str | None:
    """`"image_folders"`, `"text_folders"` or None, from a peek into the class subfolders."""
    classes = [c for c in paths.subfolders(folder) if c.lower() not in ("unsup",)]
    images = others = 0
    for name in classes:
        files = paths.data_files(os.path.join(folder, name))[:_PEEK]
        images += sum(1 for f in files if is_image_file(f))
        others += sum(1 for f in files if not is_image_file(f))
    if not classes or images + others == 0:
        return None
    return "image_folders" if images >= others else "text_folders"


def detect_format(path: str) -> str:
    """Guesses the format of a local file or folder from its names (not its contents).

    Raises:
        DataError: When nothing recognisable is there; the message lists what was looked for.
    """
    if os.path.isfile(path):
        name = os.path.basename(path).lower()
        if name.endswith(".csv"):
            return "csv"
        if name.endswith((".tsv", ".tab")):
            return "tsv"
        if _is_idx_name(name):
            return "idx"
        raise DataError(
            f"{path} is a single file of no format that stands alone: pass the folder that holds "
            "it (one-file-per-class text, IDX files, image folders) or a .csv/.tsv file"
        )
    if paths.data_files(path) == [] and paths.subfolders(path) == []:
        raise DataError(f"Folder {path} is empty")
    if idx.has_idx_files(path):
        return "idx"
    base = paths.split_dirs(path)["train"]
    if image_files.pair_dirs(base) is not None:
        return "image_mask_pairs"
    kind = _class_folder_kind(base)
    if kind is not None:
        return kind
    lowered = [f.lower() for f in paths.data_files(path)]
    if any(f.endswith(".csv") for f in lowered):
        return "csv"
    if any(f.endswith((".tsv", ".tab")) for f in lowered):
        return "tsv"
    files = paths.data_files(base)
    images = sum(1 for f in files if is_image_file(f))
    plain = len(files) - images
    if images and images >= plain:
        return "unlabelled_images"
    if plain >= 2:
        return "text_files"
    raise DataError(f"No recognisable data format in {path}. Looked for: {_looked_for()}")


def load_local(path: str, task: str, data_format: str | None, options: ReadOptions) -> Source:
    """Reads a local file or folder (format detected unless `data_format` is given)."""
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.exists(path):
        raise DataError(f"No such file or folder: {path}")
    if data_format is not None and data_format not in FORMATS:
        raise DataError(
            f"Unknown data format {data_format!r}: expected one of {', '.join(FORMATS)}"
        )
    fmt = data_format or detect_format(path)
    if fmt == "unlabelled_images" and task == "image_classification":
        base = paths.split_dirs(path)["train"] if os.path.isdir(path) else path
        raise DataError(
            f"{base} holds images but no class subfolders: put each class's images in a "
            f"subfolder named after the class ({', '.join(IMAGE_EXTENSIONS)})"
        )
    if task == "autoencoder" and FORMAT_TASKS[fmt] == "image_classification":
        # Image classification data serves an autoencoder too, its labels dropped.
        return images_as_targets(load_local(path, "image_classification", fmt, options))
    if FORMAT_TASKS[fmt] != task:
        raise DataError(
            f"{path} holds {fmt} data ({FORMAT_DESCRIPTIONS[fmt]}), which serves "
            f"{FORMAT_TASKS[fmt]}, but the task is {task}"
        )
    if fmt == "idx":
        return idx.load_idx(os.path.dirname(path) if os.path.isfile(path) else path, options)
    if fmt in ("csv", "tsv"):
        return text_files.load_table(path, "\t" if fmt == "tsv" else ",", options)
    if not os.path.isdir(path):
        raise DataError(f"Format {fmt} reads a folder, but {path} is a file")
    loaders = {
        "image_folders": image_files.load_image_folders,
        "unlabelled_images": image_files.load_unlabelled_images,
        "image_mask_pairs": image_files.load_image_mask_pairs,
        "text_files": text_files.load_text_files,
        "text_folders": text_files.load_text_folders,
    }
    return loaders[fmt](path, options)
