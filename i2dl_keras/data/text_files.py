"""Local text data: one file per class, one folder per class (aclImdb), or a CSV/TSV table.

Text is read as UTF-8 (a byte-order mark is dropped). A file that is not valid UTF-8 is read as
Latin-1 instead, which maps every byte to a character and so never loses anything, and a note
says which files were; `encoding=` forces one codec for every file. Examples reach `tf.data` as
UTF-8 `tf.string` scalars.
"""

from __future__ import annotations

import csv
import io
import logging
import os

import numpy as np
import tensorflow as tf

from i2dl_keras.data import paths
from i2dl_keras.data.errors import DataError
from i2dl_keras.data.images import is_image_file, plural
from i2dl_keras.data.source import ReadOptions, Source

logger = logging.getLogger(__name__)

TEXT_COLUMNS = ("text", "sentence", "review", "content", "comment", "body", "document", "tweet")
LABEL_COLUMNS = ("label", "labels", "sentiment", "class", "target", "category", "polarity", "y")

# aclImdb keeps unlabelled reviews in `unsup/` beside `neg/` and `pos/`.
_UNLABELLED_FOLDERS = ("unsup", "unsupervised", "unlabeled", "unlabelled")


class _Decoder:
    """Decodes files with the asked encoding, or UTF-8 falling back to Latin-1; remembers which."""

    def __init__(self, encoding: str | None):
        self.encoding = encoding
        self.latin1: list[str] = []

    def __call__(self, path: str) -> str:
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as err:
            raise DataError(f"Cannot read text file {path}: {err.strerror or err}") from None
        if self.encoding is not None:
            try:
                return raw.decode(self.encoding)
            except UnicodeDecodeError as err:
                raise DataError(
                    f"{path} is not valid {self.encoding} (byte {err.start:,}: "
                    f"{raw[err.start : err.start + 1].hex()}); pass the file's real encoding"
                ) from None
        if b"\x00" in raw[:4096]:
            # Latin-1 decodes any bytes at all, so without this check a stray binary file would
            # become "text" silently. (UTF-16 text has NUL bytes too: pass encoding="utf-16".)
            raise DataError(
                f"{path} looks binary (it holds NUL bytes), not like text; remove it, or pass "
                "its encoding (--encoding) if it is UTF-16/32 text"
            )
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            self.latin1.append(path)
            return raw.decode("latin-1")

    def notes(self) -> list[str]:
        if not self.latin1:
            return []
        return [
            f"decoded {plural(len(self.latin1), 'file')} as Latin-1 because "
            f"{'it is' if len(self.latin1) == 1 else 'they are'} not valid UTF-8: "
            f"{paths.short_list(self.latin1)}; pass an encoding (--encoding) to override"
        ]


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
    decode = _Decoder(options.encoding)
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


def _source_from_classes(root, kind, split_examples, notes) -> Source:
    class_names = _sorted_classes(split_examples["train"])
    for split, by_class in split_examples.items():
        extra = set(by_class) - set(class_names)
        if extra:
            raise DataError(
                f"The {split} split under {root} has classes the training split lacks: "
                f"{paths.short_list(sorted(extra))}"
            )
    datasets, counts = {}, {}
    for split, by_class in split_examples.items():
        texts, labels = [], []
        for name, examples in by_class.items():
            texts += examples
            labels += [class_names.index(name)] * len(examples)
        datasets[split] = _dataset(texts, labels)
        counts[split] = len(texts)
    return Source(
        name=f"{kind} in {root}",
        task="text_classification",
        train=datasets["train"],
        test=datasets.get("test"),
        validation=datasets.get("validation"),
        class_names=class_names,
        num_examples=counts,
        notes=list(notes),
    )


def load_text_folders(root: str, options: ReadOptions) -> Source:
    """Reads one folder per class with one file per example (the aclImdb layout)."""
    decode = _Decoder(options.encoding)
    split_examples: dict[str, dict[str, list[str]]] = {}
    for split, folder in paths.split_dirs(root).items():
        classes = [c for c in paths.subfolders(folder) if c.lower() not in _UNLABELLED_FOLDERS]
        if not classes:
            raise DataError(
                f"{folder} has no class subfolders: expected one subfolder per class (e.g. neg/, "
                "pos/), each holding one text file per example"
            )
        split_examples[split] = {}
        for name in classes:
            class_dir = os.path.join(folder, name)
            files = paths.data_files(class_dir)
            if not files:
                raise DataError(f"Class folder {class_dir} holds no text files")
            texts = [decode(os.path.join(class_dir, f)).strip() for f in files]
            split_examples[split][name] = [t for t in texts if t]
            logger.info("read %d files of class %r from %s", len(files), name, class_dir)
    return _source_from_classes(root, "text folders", split_examples, decode.notes())


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


def _read_table(path: str, delimiter: str, decode: _Decoder) -> tuple[list[str], list[str], int]:
    """(texts, raw labels, rows skipped for empty text)."""
    reader = csv.reader(io.StringIO(decode(path), newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path} is empty: expected a header row, then one example per row")
        text_col = _find_column(header, TEXT_COLUMNS, path, "text")
        label_col = _find_column(header, LABEL_COLUMNS, path, "label")
        texts, labels, skipped = [], [], 0
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise DataError(
                    f"{path}, line {reader.line_num}: {len(row)} fields where the header has "
                    f"{len(header)}"
                )
            label = row[label_col].strip()
            if not label:
                raise DataError(f"{path}, line {reader.line_num}: empty label")
            text = row[text_col].strip()
            if not text:
                skipped += 1
                continue
            texts.append(text)
            labels.append(label)
    except csv.Error as err:
        raise DataError(f"{path}, line {reader.line_num}: not valid CSV ({err})") from None
    return texts, labels, skipped


def _as_int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def load_table(path: str, delimiter: str, options: ReadOptions) -> Source:
    """Reads a CSV or TSV file (or `train.csv` + `test.csv`) with a header row."""
    decode = _Decoder(options.encoding)
    extension = ".tsv" if delimiter == "\t" else ".csv"
    tables = csv_files(path, extension)
    raw, notes, skipped = {}, [], 0
    for split, file in tables.items():
        texts, labels, n_skipped = _read_table(file, delimiter, decode)
        if not texts:
            raise DataError(f"{file} holds no examples")
        raw[split] = (texts, labels)
        skipped += n_skipped
        logger.info("read %d rows from %s", len(texts), file)
    if skipped:
        notes.append(f"skipped {plural(skipped, 'row')} with empty text")

    all_labels = [label for _, labels in raw.values() for label in labels]
    as_ints = [_as_int(label) for label in all_labels]
    if all(v is not None for v in as_ints) and min(as_ints) >= 0:
        class_names = [str(i) for i in range(max(as_ints) + 1)]
        to_id = {label: int(label) for label in set(all_labels)}
    else:
        if all(v is not None for v in as_ints):
            values = sorted({int(label) for label in all_labels})
            class_names = [str(v) for v in values]
            to_id = {label: values.index(int(label)) for label in set(all_labels)}
            notes.append(
                "mapped the integer labels "
                + ", ".join(class_names)
                + f" to class ids 0..{len(values) - 1}"
            )
        else:
            train_labels = set(raw["train"][1])
            unknown = set(all_labels) - train_labels
            if unknown:
                raise DataError(
                    f"Labels {paths.short_list(sorted(unknown))} appear outside {tables['train']} "
                    "but never in it"
                )
            class_names = _sorted_classes(train_labels)
            to_id = {name: i for i, name in enumerate(class_names)}
    datasets, counts = {}, {}
    for split, (texts, labels) in raw.items():
        datasets[split] = _dataset(texts, [to_id[label] for label in labels])
        counts[split] = len(texts)
    return Source(
        name=f"{'TSV' if delimiter == chr(9) else 'CSV'} table {path}",
        task="text_classification",
        train=datasets["train"],
        test=datasets.get("test"),
        validation=datasets.get("validation"),
        class_names=class_names,
        num_examples=counts,
        notes=decode.notes() + notes,
    )
