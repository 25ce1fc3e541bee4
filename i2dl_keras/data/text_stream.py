"""Reading local text lazily (internal): decoding inside `tf.data`, table rows by byte offset.

The streamed text formats of `text_files` make one check pass at load time and keep no text:

* Each file of a class folder is read and decoded once (`Decoder`), so that an unreadable or
  binary file is named before training, an empty one is left out, and the decoding each file
  needs (UTF-8, or Latin-1 when it is not valid UTF-8) is known. The pipeline reads the file
  again with `tf.io.read_file` and decodes it with TensorFlow ops (`decode_text`) to the string
  the check pass saw; an encoding other than UTF-8, ASCII or Latin-1 is decoded by Python's codec
  inside the pipeline.
* A CSV/TSV file is parsed once by Python's `csv` module, line by line (`index_table`); each row
  that holds an example is kept as its byte offset, byte length and a code of its label. The
  pipeline reads a row with one `os.pread` and parses it again with the same module
  (`row_reader`), so both see the same fields. That needs an encoding in which every line can be
  decoded alone (`decodes_by_line`: UTF-8, Latin-1 and other ASCII-compatible encodings without
  shift states); a table in any other encoding (UTF-16, UTF-32, ...) is read into memory whole.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import os
import re
import sys
from array import array
from collections.abc import Callable, Iterator

import numpy as np
import tensorflow as tf

from i2dl_keras.data import paths
from i2dl_keras.data.errors import DataError
from i2dl_keras.data.images import plural

# How the pipeline turns a file's bytes into UTF-8 text, by index.
MODE_UTF8 = 0  # valid UTF-8 (or ASCII) taken as it is
MODE_UTF8_SIG = 1  # valid UTF-8 whose leading byte-order mark, if any, is dropped
MODE_LATIN1 = 2  # every byte is the code point of its value
MODE_CODEC = 3  # any other encoding: Python's codec, inside the pipeline

# Encodings (as `codecs.lookup` names them) that the pipeline decodes with TensorFlow ops.
_GRAPH_MODES = {
    "utf-8": MODE_UTF8,
    "ascii": MODE_UTF8,
    "utf-8-sig": MODE_UTF8_SIG,
    "iso8859-1": MODE_LATIN1,
}

# Encodings whose decoder carries a shift state from one line into the next.
_STATEFUL_CODECS = ("iso2022", "utf-7", "hz")

# How much of a file's start the binary check looks at.
_BINARY_PEEK = 4096


def latin1_note(files: list[str]) -> list[str]:
    """The note naming the files decoded as Latin-1, or none."""
    if not files:
        return []
    return [
        f"decoded {plural(len(files), 'file')} as Latin-1 because "
        f"{'it is' if len(files) == 1 else 'they are'} not valid UTF-8: "
        f"{paths.short_list(files)}; pass an encoding (--encoding) to override"
    ]


def _cannot_read(path: str, err: OSError) -> DataError:
    return DataError(f"Cannot read text file {path}: {err.strerror or err}")


def _binary_error(path: str) -> DataError:
    # Latin-1 decodes any bytes at all, so without this check a stray binary file would become
    # "text" silently. (UTF-16 text has NUL bytes too: pass encoding="utf-16".)
    return DataError(
        f"{path} looks binary (it holds NUL bytes), not like text; remove it, or pass "
        "its encoding (--encoding) if it is UTF-16/32 text"
    )


def _undecodable(path: str, encoding: str, offset: int, byte: bytes) -> DataError:
    return DataError(
        f"{path} is not valid {encoding} (byte {offset:,}: {byte.hex()}); pass the file's "
        "real encoding"
    )


class Decoder:
    """Decodes files with the asked encoding, or UTF-8 falling back to Latin-1; remembers which."""

    def __init__(self, encoding: str | None):
        self.encoding = encoding
        self.latin1: list[str] = []
        self.last_was_latin1 = False

    def __call__(self, path: str) -> str:
        self.last_was_latin1 = False
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as err:
            raise _cannot_read(path, err) from None
        if self.encoding is not None:
            try:
                return raw.decode(self.encoding)
            except UnicodeDecodeError as err:
                start = err.start
                if self.encoding == "utf-8-sig" and raw.startswith(codecs.BOM_UTF8):
                    start += len(codecs.BOM_UTF8)  # the codec counts after the mark
                raise _undecodable(path, self.encoding, start, raw[start : start + 1]) from None
        if b"\x00" in raw[:_BINARY_PEEK]:
            raise _binary_error(path)
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            self.latin1.append(path)
            self.last_was_latin1 = True
            return raw.decode("latin-1")

    def last_mode(self) -> int:
        """How the pipeline decodes the file this decoder read last."""
        if self.encoding is None:
            return MODE_LATIN1 if self.last_was_latin1 else MODE_UTF8_SIG
        return _GRAPH_MODES.get(self.encoding, MODE_CODEC)

    def notes(self) -> list[str]:
        return latin1_note(self.latin1)


@functools.cache
def _strip_patterns() -> tuple[str, str]:
    """RE2 patterns that strip what `str.strip()` strips: without, then with a leading BOM."""
    space = "".join(f"\\x{{{c:x}}}" for c in range(sys.maxunicode + 1) if chr(c).isspace())
    strip = f"^[{space}]+|[{space}]+$"
    return strip, f"^\\x{{feff}}?[{space}]+|^\\x{{feff}}|[{space}]+$"


def _latin1_to_utf8(raw: tf.Tensor) -> tf.Tensor:
    code_points = tf.cast(tf.io.decode_raw(raw, tf.uint8), tf.int32)
    return tf.strings.unicode_encode(code_points, "UTF-8")


def decode_text(raw: tf.Tensor, mode: tf.Tensor, modes: list[int], encoding: str | None):
    """A file's bytes as stripped UTF-8 text, as `Decoder` and `str.strip()` give it.

    Args:
        raw: The file's bytes, a `tf.string` scalar.
        mode: How to decode it (`MODE_*`), an integer scalar.
        modes: Every mode `mode` can take; one mode builds one branch.
        encoding: The encoding of `MODE_CODEC`.

    Returns:
        The text, a UTF-8 `tf.string` scalar.
    """
    strip, strip_bom = _strip_patterns()

    def codec_text(data) -> bytes:
        data = data.item() if isinstance(data, np.ndarray) else data
        return data.decode(encoding).strip().encode("utf-8")

    def by_codec():
        text = tf.numpy_function(codec_text, [raw], tf.string, stateful=False)
        return tf.ensure_shape(text, [])

    branches = {
        MODE_UTF8: lambda: tf.strings.regex_replace(raw, strip, ""),
        MODE_UTF8_SIG: lambda: tf.strings.regex_replace(raw, strip_bom, ""),
        MODE_LATIN1: lambda: tf.strings.regex_replace(_latin1_to_utf8(raw), strip, ""),
        MODE_CODEC: by_codec,
    }
    if len(modes) == 1:
        return branches[modes[0]]()
    position = tf.argmax(tf.equal(tf.constant(modes, tf.int32), tf.cast(mode, tf.int32)))
    return tf.switch_case(tf.cast(position, tf.int32), [branches[m] for m in modes])


def decodes_by_line(encoding: str) -> bool:
    """Whether every line of a file in `encoding` decodes on its own, apart from the others.

    True when the encoding is ASCII-compatible, so that a line break is the bytes `\\r` and
    `\\n` (which no multibyte character of such an encoding holds), and no shift state carries
    over from one line to the next. A leading byte-order mark (`utf-8-sig`) belongs to the
    first line only.
    """
    name = codecs.lookup(encoding).name
    rest = "utf-8" if name == "utf-8-sig" else name
    try:
        ascii_compatible = "\r\n\"',\t".encode(rest) == b"\r\n\"',\t"
    except (LookupError, UnicodeError):
        return False
    return ascii_compatible and not rest.startswith(_STATEFUL_CODECS)


class _Undecodable(Exception):
    """A line's bytes are not valid in the encoding (internal)."""

    def __init__(self, offset: int, byte: bytes):
        super().__init__(offset)
        self.offset = offset
        self.byte = byte


# Splits a line that ends in `\n` after each `\r` that is not part of `\r\n`.
_LONE_CR = re.compile(rb"(?<=\r)(?!\n)")


class _FileLines:
    """A binary file's lines, decoded one by one, with the byte offset where the last one ends.

    Lines end at `\\r\\n`, `\\r` or `\\n`, as `open(..., newline="")` ends them, so the `csv`
    module sees the lines it would see reading the decoded file.
    """

    def __init__(self, f, first: str, rest: str):
        self.f, self.first, self.rest = f, first, rest
        self.position = 0

    def __iter__(self) -> Iterator[str]:
        encoding = self.first
        for chunk in self.f:
            pieces = _LONE_CR.split(chunk) if b"\r" in chunk else (chunk,)
            for line in pieces:
                if not line:
                    continue
                try:
                    text = line.decode(encoding)
                except UnicodeDecodeError as err:
                    start = err.start
                    if encoding == "utf-8-sig" and line.startswith(codecs.BOM_UTF8):
                        start += len(codecs.BOM_UTF8)  # the codec counts after the mark
                    raise _Undecodable(self.position + start, line[start : start + 1]) from None
                encoding = self.rest
                self.position += len(line)
                yield text


class _TextLines:
    """The lines of text already decoded (the in-memory path): no byte offsets."""

    position = 0

    def __init__(self, text: str):
        self.text = text

    def __iter__(self) -> Iterator[str]:
        return iter(io.StringIO(self.text, newline=""))


class TableIndex:
    """Where a table file's examples are: their rows' byte ranges and label codes.

    Attributes:
        path: The file.
        encoding: The encoding of its data rows, `None` when `texts` holds them.
        text_column: The index of the text field in a row.
        offsets, lengths: Byte offset and length of each kept row (`array("q")`).
        codes: Label code of each kept row (`array("q")`): the index of its label in `labels`.
        labels: Raw label -> code, in order of first appearance.
        texts: The stripped texts, for a file that could not be indexed by byte offset.
        skipped: Rows skipped because their text is empty.
        latin1: Whether the file was decoded as Latin-1 because it is not valid UTF-8.
    """

    def __init__(self, path: str, encoding: str | None, in_memory: bool = False):
        self.path, self.encoding = path, encoding
        self.text_column = 0
        self.offsets, self.lengths, self.codes = array("q"), array("q"), array("q")
        self.labels: dict[str, int] = {}
        self.texts: list[str] | None = [] if in_memory else None
        self.skipped = 0
        self.latin1 = False

    def __len__(self) -> int:
        return len(self.codes)

    def keep(self, text: str, label: str, start: int, end: int) -> None:
        self.codes.append(self.labels.setdefault(label, len(self.labels)))
        if self.texts is not None:
            self.texts.append(text)
        else:
            self.offsets.append(start)
            self.lengths.append(end - start)


def _scan(
    index: TableIndex,
    lines,
    delimiter: str,
    find_columns: Callable[[list[str], str], tuple[int, int]],
) -> TableIndex:
    """Parses every row of `lines` into `index`, raising for malformed ones."""
    path = index.path
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path} is empty: expected a header row, then one example per row")
        text_col, label_col = find_columns(header, path)
        index.text_column = text_col
        start = lines.position
        for row in reader:
            end = lines.position
            if not row or all(not cell.strip() for cell in row):
                start = end
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
            if text:
                index.keep(text, label, start, end)
            else:
                index.skipped += 1
            start = end
    except csv.Error as err:
        raise DataError(f"{path}, line {reader.line_num}: not valid CSV ({err})") from None
    return index


def _open(path: str):
    try:
        return open(path, "rb")
    except OSError as err:
        raise _cannot_read(path, err) from None


def _first_undecodable(path: str, first: str, rest: str) -> _Undecodable | None:
    """Where the file first fails to decode, or None."""
    with _open(path) as f:
        try:
            for _ in _FileLines(f, first, rest):
                pass
        except _Undecodable as err:
            return err
        except OSError as err:
            raise _cannot_read(path, err) from None
    return None


def _scan_file(path, delimiter, find_columns, first, rest) -> TableIndex:
    index = TableIndex(path, rest)
    with _open(path) as f:
        try:
            return _scan(index, _FileLines(f, first, rest), delimiter, find_columns)
        except OSError as err:
            raise _cannot_read(path, err) from None


def index_table(
    path: str,
    delimiter: str,
    encoding: str | None,
    find_columns: Callable[[list[str], str], tuple[int, int]],
) -> TableIndex:
    """Parses a CSV/TSV file once, keeping where each example's row lies, not its text.

    Decoding follows `Decoder`: without `encoding`, UTF-8 (a leading byte-order mark dropped),
    or Latin-1 for the whole file when any of it is not valid UTF-8, and a file with NUL bytes
    near its start is refused as binary. An encoding in which lines cannot be decoded apart
    (`decodes_by_line`) keeps the texts in `TableIndex.texts` instead of byte offsets.

    Args:
        path: The table file.
        delimiter: `","` or `"\\t"`.
        encoding: The file's encoding, or `None` for UTF-8 with the Latin-1 fallback.
        find_columns: `(header, path) -> (text column, label column)`, raising `DataError`.

    Returns:
        The `TableIndex`.

    Raises:
        DataError: For an unreadable, binary, undecodable, empty or malformed file; a row's
            error names the file and line.
    """
    if encoding is not None and not decodes_by_line(encoding):
        index = TableIndex(path, None, in_memory=True)
        return _scan(index, _TextLines(Decoder(encoding)(path)), delimiter, find_columns)
    if encoding is not None:
        rest = "utf-8" if encoding == "utf-8-sig" else encoding
        try:
            return _scan_file(path, delimiter, find_columns, encoding, rest)
        except _Undecodable as err:
            bad = err
        except DataError:
            # The whole file is decoded before any row is parsed: a byte that is not valid
            # further on is the error to report.
            bad = _first_undecodable(path, encoding, rest)
            if bad is None:
                raise
        raise _undecodable(path, encoding, bad.offset, bad.byte)
    with _open(path) as f:
        try:
            head = f.read(_BINARY_PEEK)
        except OSError as err:
            raise _cannot_read(path, err) from None
    if b"\x00" in head:
        raise _binary_error(path)
    try:
        return _scan_file(path, delimiter, find_columns, "utf-8-sig", "utf-8")
    except _Undecodable:
        pass
    except DataError:
        # The whole file decides between UTF-8 and Latin-1: an error found before an invalid
        # byte further on is an error of the Latin-1 reading, which may have none.
        if _first_undecodable(path, "utf-8-sig", "utf-8") is None:
            raise
    index = _scan_file(path, delimiter, find_columns, "latin-1", "latin-1")
    index.latin1 = True
    return index


def row_reader(index: TableIndex, delimiter: str) -> Callable[[tf.Tensor], tf.Tensor]:
    """`row -> text`: reads and parses the `row`-th indexed example inside `tf.data`.

    The row's bytes are read with `os.pread` and parsed by the `csv` module exactly as the index
    pass parsed them; the result is the stripped text field as a UTF-8 `tf.string` scalar. The
    byte offsets stay in NumPy arrays here, so that a shuffle buffer of rows holds one integer
    per row.
    """
    path, encoding, column = index.path, index.encoding, index.text_column
    offsets = np.frombuffer(index.offsets, dtype=np.int64)
    lengths = np.frombuffer(index.lengths, dtype=np.int64)

    def read_text(row) -> bytes:
        row = int(row)
        fd = os.open(path, os.O_RDONLY)
        try:
            raw = os.pread(fd, int(lengths[row]), int(offsets[row]))
        finally:
            os.close(fd)
        fields = next(
            csv.reader(io.StringIO(raw.decode(encoding), newline=""), delimiter=delimiter)
        )
        return fields[column].strip().encode("utf-8")

    def read(row: tf.Tensor) -> tf.Tensor:
        text = tf.numpy_function(read_text, [row], tf.string, stateful=False)
        return tf.ensure_shape(text, [])

    return read
