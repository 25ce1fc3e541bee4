"""Listing folders for the local loaders (internal): splits, class folders, plain files."""

from __future__ import annotations

import os

from i2dl_keras.data.errors import DataError
from i2dl_keras.data.images import natural_key

# Folder names recognised as splits, first match wins.
SPLIT_NAMES = {
    "train": ("train", "training"),
    "validation": ("validation", "val", "valid"),
    "test": ("test", "testing"),
}

# Files that sit beside data without being data.
_NOT_DATA = ("readme", "license", "licence", "citation", "notice")


def entries(folder: str) -> list[str]:
    """Non-hidden names in `folder`, in natural order."""
    try:
        names = os.listdir(folder)
    except OSError as err:
        raise DataError(f"Cannot list folder {folder}: {err.strerror or err}") from None
    # Hidden files and the __MACOSX folder that zip archives from macOS carry are never data.
    return sorted((n for n in names if not n.startswith(".") and n != "__MACOSX"), key=natural_key)


def subfolders(folder: str) -> list[str]:
    return [n for n in entries(folder) if os.path.isdir(os.path.join(folder, n))]


def data_files(folder: str) -> list[str]:
    """Plain files in `folder` that may hold data (not README, LICENSE, ...)."""
    return [
        n
        for n in entries(folder)
        if os.path.isfile(os.path.join(folder, n)) and not n.lower().startswith(_NOT_DATA)
    ]


def find_child(folder: str, names) -> str | None:
    """The first child folder of `folder` whose name (case-insensitive) is one of `names`."""
    children = {n.lower(): n for n in subfolders(folder)}
    for name in names:
        if name in children:
            return os.path.join(folder, children[name])
    return None


def split_dirs(root: str) -> dict[str, str]:
    """`{"train": root/train, "test": root/test, ...}` when `root/train` exists, else root."""
    train = find_child(root, SPLIT_NAMES["train"])
    if train is None:
        return {"train": root}
    found = {"train": train}
    for split in ("validation", "test"):
        folder = find_child(root, SPLIT_NAMES[split])
        if folder is not None:
            found[split] = folder
    return found


def short_list(names, limit: int = 3) -> str:
    """`a, b, c and 7 more` for messages."""
    names = [str(n) for n in names]
    head = ", ".join(names[:limit])
    more = len(names) - limit
    return f"{head} and {more:,} more" if more > 0 else head
