"""Local text data: one file per class, one folder per class (aclImdb), or a CSV/TSV table.

Text is read as UTF-8 (a byte-order mark is dropped). A file that is not valid UTF-8 is read as
Latin-1 instead, which maps every byte to a character and so never loses anything, and a note
says which files were; `encoding=` forces one codec for every file. Examples reach `tf.data` as
UTF-8 `tf.string` scalars, stripped of surrounding white space; empty ones are left out.

Class folders and tables stream: loading checks every file or row once and keeps only file
names, or row offsets and labels, in a `FileTable`, and the `tf.data` pipeline reads the texts
as it needs them (see `text_stream`), so memory does not grow with the size of the data.
One-file-per-class text (a few files of one example per line) is read into memory.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import tensorflow as tf

from i2dl_keras.data import paths, text_stream
from i2dl_keras.data.errors import DataError
from i2dl_keras.data.images import is_image_file, plural
from i2dl_keras.data.source import FileTable, ReadOptions, Source
from i2dl_keras.data.text_stream import Decoder

logger = logging.getLogger(__name__)

TEXT_COLUMNS = ("text", "sentence", "review", "content", "comment", "body", "document", "tweet")
LABEL_COLUMNS = ("label", "labels", "sentiment", "class", "target", "category", "polarity", "y")

# aclImdb keeps unlabelled reviews in `unsup/` beside `neg/` and `pos/`.
_UNLABELLED_FOLDERS = ("unsup", "unsupervised", "unlabeled", "unlabelled")


def _lines(text: str) -> list[str]:
    # Split on newlines only: str.splitlines() also splits on \x85, \x0c and \u2028, which
    # occur inside sentences of Latin-1 text.
    return [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]


def _dataset(texts: list[str], labels: list[int]) -> tf.data.Dataset:
    encoded = np.array([t.encode("utf-8") for t in texts], dtype=object)
    return tf.data.Dataset.from_tensor_slices(
        (tf.constant(encoded, dtype=tf.string), np.asarray(labels, dtype=np.int64))
    )


def _class_names_from_files(folder: str, files: list[str]) -> list[str]:
    """Class per file: the suffixes if they tell files apart (`rt-polarity.pos`), else stems."""
    suffixes = [os.path.splitext(f)[1][1:] for f in files]
    if all(suffixes) and len(set(suffixes)) == len(files):
        return suffixes
    stems = [os.path.splitext(f)[0] for f in files]
    if len(set(stems)) == len(files):
        return stems
    raise DataError(
        f"Cannot tell the classes of the text files in {folder} apart: neither their suffixes "
        f"nor their names without suffix are distinct ({paths.short_list(files, 6)})"
    )


def _sorted_classes(names) -> list[str]:
    # Sorted order gives the usual ids for the usual pairs: neg -> 0, pos -> 1 and
    # negative -> 0, positive -> 1.
    return sorted(set(names))


def load_text_files(root: str, options: ReadOptions) -> Source:
    """Reads one file per class, one example per line (e.g. `rt-polarity.pos`, `.neg`)."""
    decode = Decoder(options.encoding)
    split_examples: dict[str, dict[str, list[str]]] = {}
    for split, folder in paths.split_dirs(root).items():
        files = [f for f in paths.data_files(folder) if not is_image_file(f)]
        if len(files) < 2:
            raise DataError(
                f"{folder} holds {len(files)} text file(s): one-file-per-class text needs at "
                "least two files, one per class, one example per line"
            )
        names = _class_names_from_files(folder, files)
        split_examples[split] = {}
        for name, file in zip(names, files):
            path = os.path.join(folder, file)
            lines = _lines(decode(path))
            if not lines:
                raise DataError(f"Text file {path} holds no examples (only blank lines)")
            split_examples[split][name] = lines
            logger.info("read %d lines of class %r from %s", len(lines), name, path)
    return _source_from_classes(root, "text files", split_examples, decode.notes())


def _checked_classes(root: str, split_classes: dict[str, dict]) -> list[str]:
    """The training split's classes, sorted; other splits must not add any."""
    class_names = _sorted_classes(split_classes["train"])
    for split, by_class in split_classes.items():
        extra = set(by_class) - set(class_names)
        if extra:
            raise DataError(
                f"The {split} split under {root} has classes the training split lacks: "
                f"{paths.short_list(sorted(extra))}"
            )
    return class_names


def _text_source(name, class_names, datasets, counts, notes) -> Source:
    return Source(
        name=name,
        task="text_classification",
        train=datasets["train"],
        test=datasets.get("test"),
        validation=datasets.get("validation"),
        class_names=class_names,
        num_examples=counts,
        notes=list(notes),
    )


def _source_from_classes(root, kind, split_examples, notes) -> Source:
    class_names = _checked_classes(root, split_examples)
    datasets, counts = {}, {}
    for split, by_class in split_examples.items():
        texts, labels = [], []
        for name, examples in by_class.items():
            texts += examples
            labels += [class_names.index(name)] * len(examples)
        datasets[split] = _dataset(texts, labels)
        counts[split] = len(texts)
    return _text_source(f"{kind} in {root}", class_names, datasets, counts, notes)


def _file_table(rows: list[tuple[str, int, int]], encoding: str | None) -> FileTable:
    """A split of class folders, `(path, decoding mode, label)` per file, read as `(text, y)`.

    The table holds the modes only when they differ from file to file.
    """
    columns = {
        # File names as bytes, so that names that are not valid UTF-8 reach the file system.
        "path": np.array([os.fsencode(path) for path, _, _ in rows], dtype=object),
        "label": np.array([label for _, _, label in rows], dtype=np.int64),
    }
    modes = sorted({mode for _, mode, _ in rows}) or [text_stream.MODE_UTF8]
    if len(modes) > 1:
        columns["mode"] = np.array([mode for _, mode, _ in rows], dtype=np.int32)

    def read(row):
        raw = tf.io.read_file(row["path"])
        mode = row.get("mode", modes[0])
        return text_stream.decode_text(raw, mode, modes, encoding), row["label"]

    return FileTable(columns, read)


def load_text_folders(root: str, options: ReadOptions) -> Source:
    """Lists one folder per class with one file per example (the aclImdb layout), streamed.

    Every file is read and decoded once here, to name undecodable files and leave out empty
    ones; the splits are `FileTable`s of the remaining files, read again in the pipeline.
    """
    decode = Decoder(options.encoding)
    split_rows: dict[str, dict[str, list[tuple[str, int]]]] = {}
    for split, folder in paths.split_dirs(root).items():
        classes = [c for c in paths.subfolders(folder) if c.lower() not in _UNLABELLED_FOLDERS]
        if not classes:
            raise DataError(
                f"{folder} has no class subfolders: expected one subfolder per class (e.g. neg/, "
                "pos/), each holding one text file per example"
            )
        split_rows[split] = {}
        for name in classes:
            class_dir = os.path.join(folder, name)
            files = paths.data_files(class_dir)
            if not files:
                raise DataError(f"Class folder {class_dir} holds no text files")
            kept = []
            for file in files:
                path = os.path.join(class_dir, file)
                if decode(path).strip():
                    kept.append((path, decode.last_mode()))
            split_rows[split][name] = kept
            logger.info("checked %d files of class %r in %s", len(files), name, class_dir)
    class_names = _checked_classes(root, split_rows)
    datasets, counts = {}, {}
    for split, by_class in split_rows.items():
        rows = [
            (path, mode, class_names.index(name))
            for name, kept in by_class.items()
            for path, mode in kept
        ]
        datasets[split] = _file_table(rows, options.encoding).dataset()
        counts[split] = len(rows)
    return _text_source(f"text folders in {root}", class_names, datasets, counts, decode.notes())


def csv_files(path: str, extension: str) -> dict[str, str]:
    """The table file per split: `path` itself, or `train.csv`/`test.csv`/... or the only one."""
    if os.path.isfile(path):
        return {"train": path}
    accepted = (extension, ".tab") if extension == ".tsv" else (extension,)
    tables = [f for f in paths.data_files(path) if f.lower().endswith(accepted)]
    by_stem = {os.path.splitext(f)[0].lower(): f for f in tables}
    found = {}
    for split, names in paths.SPLIT_NAMES.items():
        for name in names:
            if name in by_stem:
                found[split] = os.path.join(path, by_stem[name])
                break
    if "train" in found:
        return found
    if len(tables) == 1:
        return {"train": os.path.join(path, tables[0])}
    if not tables:
        raise DataError(f"No {extension} file in {path}")
    raise DataError(
        f"{path} holds {len(tables)} {extension} files ({paths.short_list(tables)}): name them "
        f"train{extension} / test{extension}, or pass one file"
    )


def _find_column(header: list[str], wanted, path: str, what: str) -> int:
    lowered = [h.strip().lower() for h in header]
    for name in wanted:
        if name in lowered:
            return lowered.index(name)
    raise DataError(
        f"{path} has no {what} column: looked for {', '.join(wanted)}; the header has "
        f"{', '.join(repr(h) for h in header) or 'no columns'}"
    )


def _columns(header: list[str], path: str) -> tuple[int, int]:
    return (
        _find_column(header, TEXT_COLUMNS, path, "text"),
        _find_column(header, LABEL_COLUMNS, path, "label"),
    )


def _as_int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _class_ids(indexes: dict[str, text_stream.TableIndex], train_file: str):
    """Class names, a lookup of class id by label code per split, and notes."""
    all_labels = {label for index in indexes.values() for label in index.labels}
    as_ints = [_as_int(label) for label in all_labels]
    notes = []
    if all(v is not None for v in as_ints) and min(as_ints) >= 0:
        class_names = [str(i) for i in range(max(as_ints) + 1)]
        to_id = {label: int(label) for label in all_labels}
    elif all(v is not None for v in as_ints):
        values = sorted({int(label) for label in all_labels})
        class_names = [str(v) for v in values]
        to_id = {label: values.index(int(label)) for label in all_labels}
        notes.append(
            "mapped the integer labels "
            + ", ".join(class_names)
            + f" to class ids 0..{len(values) - 1}"
        )
    else:
        train_labels = set(indexes["train"].labels)
        unknown = all_labels - train_labels
        if unknown:
            raise DataError(
                f"Labels {paths.short_list(sorted(unknown))} appear outside {train_file} "
                "but never in it"
            )
        class_names = _sorted_classes(train_labels)
        to_id = {name: i for i, name in enumerate(class_names)}
    lookups = {
        split: np.array([to_id[label] for label in index.labels], dtype=np.int64)
        for split, index in indexes.items()
    }
    return class_names, lookups, notes


def _table_split(index: text_stream.TableIndex, lookup: np.ndarray, delimiter: str):
    """The split's dataset: a `FileTable` of row offsets, or the texts when kept in memory."""
    labels = lookup[np.frombuffer(index.codes, dtype=np.int64)]
    if index.texts is not None:
        return _dataset(index.texts, labels)
    read_text = text_stream.row_reader(index, delimiter)
    columns = {"row": np.arange(len(index), dtype=np.int64), "label": labels}

    def read(row):
        return read_text(row["row"]), row["label"]

    return FileTable(columns, read).dataset()


def load_table(path: str, delimiter: str, options: ReadOptions) -> Source:
    """Indexes a CSV or TSV file (or `train.csv` + `test.csv`) with a header row, streamed.

    Every row is parsed once here, so that a malformed row is named with its line; the splits
    keep each example's byte offset, length and label, and the pipeline reads and parses the
    rows again as it needs them (`text_stream.index_table`).
    """
    extension = ".tsv" if delimiter == "\t" else ".csv"
    tables = csv_files(path, extension)
    indexes, skipped = {}, 0
    for split, file in tables.items():
        index = text_stream.index_table(file, delimiter, options.encoding, _columns)
        if not len(index):
            raise DataError(f"{file} holds no examples")
        indexes[split] = index
        skipped += index.skipped
        logger.info("indexed %d rows of %s", len(index), file)
    notes = text_stream.latin1_note([index.path for index in indexes.values() if index.latin1])
    if skipped:
        notes.append(f"skipped {plural(skipped, 'row')} with empty text")
    class_names, lookups, label_notes = _class_ids(indexes, tables["train"])
    datasets = {
        split: _table_split(index, lookups[split], delimiter) for split, index in indexes.items()
    }
    return _text_source(
        f"{'TSV' if delimiter == chr(9) else 'CSV'} table {path}",
        class_names,
        datasets,
        {split: len(index) for split, index in indexes.items()},
        notes + label_notes,
    )
