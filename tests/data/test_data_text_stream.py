"""Streamed text: class folders and CSV/TSV tables read lazily, element for element as in memory."""

import codecs
import csv
import io
import random
import sys
import tracemalloc

import keras
import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras.data import (
    DataError,
    Source,
    adapt_vocabulary,
    load_source,
    make_pipeline,
    text_stream,
    train_val_test,
)
from i2dl_keras.data.images import natural_key
from i2dl_keras.data.source import file_table

TC = "text_classification"


def _elements(ds):
    return [(x.numpy(), int(y.numpy())) for x, y in ds]


def _in_memory(source: Source, elements: dict[str, list]) -> Source:
    """`source` with its splits replaced by in-memory datasets of `elements`."""

    def dataset(pairs):
        texts = np.array([t for t, _ in pairs], dtype=object)
        labels = np.array([y for _, y in pairs], dtype=np.int64)
        return tf.data.Dataset.from_tensor_slices((tf.constant(texts, tf.string), labels))

    return Source(
        name=source.name,
        task=TC,
        train=dataset(elements["train"]),
        test=dataset(elements["test"]) if "test" in elements else None,
        class_names=source.class_names,
        num_examples=dict(source.num_examples),
    )


def _assert_same_splits(streamed: Source, expected: dict[str, list]):
    """Every carved split of the streamed source equals that of the in-memory elements."""
    fractions = dict(validation_fraction=0.25, test_fraction=0.3, seed=5)
    ours = train_val_test(streamed, **fractions)
    theirs = train_val_test(_in_memory(streamed, expected), **fractions)
    for mine, reference in zip(ours[:3], theirs[:3]):
        assert file_table(mine) is not None  # the split cut the file list
        assert _elements(mine) == _elements(reference)
    assert ours[3] == theirs[3]


def _decoded(raw: bytes) -> str:
    """What a text file holds, the reference: UTF-8 without its BOM, else Latin-1, stripped."""
    try:
        return raw.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        return raw.decode("latin-1").strip()


def _write_folders(root, rng):
    contents = {
        "neg": [
            b"dull<br /><br />and long\r\n",
            "\ufeff  a BOM, then a caf\u00e9 \u2028\n".encode(),
            "na\u00efve \x85 Latin-1 text\xa0".encode("latin-1"),
            b" \n\t \r\n",  # white space only: left out
            "\u3000wide space\u3000\u00a0".encode(),
        ],
        "pos": [
            "fine \u2014 \U0001f600 emoji".encode(),
            b"\xef\xbb\xbf\xef\xbb\xbftwo marks",
            b"x",
            b"tab\tinside\x1c",
        ],
    }
    for name, files in contents.items():
        (root / name).mkdir(parents=True)
        for i, raw in enumerate(files):
            (root / name / f"{i * 7}_{rng.randint(1, 10)}.txt").write_bytes(raw)
    (root / "unsup").mkdir()
    (root / "unsup" / "0_0.txt").write_text("no label")
    expected = []
    for label, name in enumerate(("neg", "pos")):
        for path in sorted((root / name).iterdir(), key=lambda p: natural_key(p.name)):
            text = _decoded(path.read_bytes())
            if text:
                expected.append((text.encode(), label))
    return expected


def test_folder_streams_the_same_elements_order_and_splits(tmp_path):
    expected = _write_folders(tmp_path / "reviews", random.Random(0))
    source = load_source(str(tmp_path / "reviews"), TC)
    table = file_table(source.train)
    assert table is not None and set(table.columns) == {"path", "mode", "label"}
    assert source.class_names == ["neg", "pos"] and source.num_examples == {"train": 8}
    assert _elements(source.train) == expected
    assert len(source.notes) == 1 and "Latin-1" in source.notes[0] and "neg/14_" in source.notes[0]
    _assert_same_splits(source, {"train": expected})


@pytest.mark.parametrize("encoding", ["cp1252", "utf-8", "latin-1"])
def test_folder_with_a_forced_encoding(tmp_path, encoding):
    mark = "\ufeff" if encoding == "utf-8" else ""
    for name, text in (("neg", f" {mark}dull\u2026 "), ("pos", "\u201cgood\u201d\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "1.txt").write_bytes(text.encode("utf-8" if mark else "cp1252"))
    source = load_source(str(tmp_path), TC, encoding=encoding, data_format="text_folders")
    expected = [
        ((tmp_path / name / "1.txt").read_bytes().decode(encoding).strip().encode(), label)
        for label, name in enumerate(("neg", "pos"))
    ]
    assert _elements(source.train) == expected and source.notes == []


def test_folder_names_the_bad_file(tmp_path):
    for name in ("neg", "pos"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "1.txt").write_text("fine")
    (tmp_path / "pos" / "2.txt").write_bytes(b"PK\x03\x04\x00\x00binary")
    with pytest.raises(DataError, match=r"pos/2\.txt looks binary"):
        load_source(str(tmp_path), TC)
    (tmp_path / "pos" / "2.txt").write_bytes("caf\u00e9".encode("latin-1"))
    with pytest.raises(DataError, match=r"pos/2\.txt is not valid utf-8 \(byte 3: e9\)"):
        load_source(str(tmp_path), TC, encoding="utf-8")


def _table_text(rows, delimiter=",", terminator="\r\n"):
    buffer = io.StringIO(newline="")
    # The writer quotes fields holding a character of its line terminator, but a reader ends
    # lines at either of "\r" and "\n": quote every field when "\r" alone would go unquoted.
    quoting = csv.QUOTE_ALL if terminator == "\n" else csv.QUOTE_MINIMAL
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=terminator, quoting=quoting)
    writer.writerows(rows)
    return buffer.getvalue()


def _reference_table(raw: bytes, encoding: str, delimiter=","):
    """The examples of a table as the `csv` module reads the decoded file (no header checks)."""
    reader = csv.reader(io.StringIO(raw.decode(encoding), newline=""), delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader)]
    text, label = header.index("review"), header.index("sentiment")
    rows = [row for row in reader if row and any(c.strip() for c in row)]
    return [(row[text].strip(), row[label].strip()) for row in rows if row[text].strip()]


TABLE_ROWS = [
    ["id", "Review", "Sentiment"],
    ["1", 'plain "quoted" words', "pos"],
    ["2", "two\r\nlines, and a comma", "neg"],
    ["3", "   ", "pos"],  # empty text: skipped
    [],
    ["4", '""', "neg"],
    ["5", "  caf\u00e9 \u00a0", "neg"],
    ["6", "lone\rcarriage return", "pos"],
]


@pytest.mark.parametrize("terminator", ["\r\n", "\n", "\r"])
def test_csv_streams_the_same_elements_order_and_splits(tmp_path, terminator):
    rows = TABLE_ROWS[:1] + TABLE_ROWS[1:] * 3
    raw = ("\ufeff" + _table_text(rows, terminator=terminator)).encode()
    (tmp_path / "t.csv").write_bytes(raw)
    source = load_source(str(tmp_path / "t.csv"), TC)
    table = file_table(source.train)
    assert table is not None and set(table.columns) == {"row", "label"}
    reference = _reference_table(raw, "utf-8-sig")
    expected = [(t.encode(), ["neg", "pos"].index(y)) for t, y in reference]
    assert len(expected) == 15 and source.num_examples == {"train": 15}
    assert _elements(source.train) == expected
    assert source.notes == ["skipped 3 rows with empty text"]
    _assert_same_splits(source, {"train": expected})


def test_tsv_latin1_and_test_split_stream(tmp_path):
    rows = [["sentiment", "review"]] + [[str(i % 3), f"r\u00e9sum\u00e9 {i}\t"] for i in range(9)]
    train = _table_text(rows, "\t").encode("latin-1")
    test = _table_text([["sentiment", "review"], ["2", "\u00a0fin\u00a0"]], "\t").encode("latin-1")
    (tmp_path / "train.tsv").write_bytes(train)
    (tmp_path / "test.tsv").write_bytes(test)
    source = load_source(str(tmp_path), TC)
    assert source.class_names == ["0", "1", "2"]
    expected = {
        split: [(t.encode(), int(y)) for t, y in _reference_table(raw, "latin-1", "\t")]
        for split, raw in (("train", train), ("test", test))
    }
    assert _elements(source.train) == expected["train"]
    assert _elements(source.test) == expected["test"] == [(b"fin", 2)]
    assert "Latin-1" in source.notes[0] and "train.tsv" in source.notes[0]
    assert "test.tsv" in source.notes[0]
    _assert_same_splits(source, expected)


def test_utf16_table_is_read_in_memory_with_the_same_elements(tmp_path):
    raw = _table_text(TABLE_ROWS, "\t").encode("utf-16")
    (tmp_path / "t.tsv").write_bytes(raw)
    source = load_source(str(tmp_path / "t.tsv"), TC, encoding="utf-16")
    assert file_table(source.train) is None
    expected = [
        (t.encode(), ["neg", "pos"].index(y)) for t, y in _reference_table(raw, "utf-16", "\t")
    ]
    assert _elements(source.train) == expected


def test_csv_bad_row_far_down_names_file_and_line(tmp_path):
    rows = [["text", "label"]] + [[f"row {i}", "1"] for i in range(2000)]
    text = _table_text(rows, terminator="\n") + '"a quoted\nfield",0\nbroken,row,0\n'
    (tmp_path / "big.csv").write_text(text)
    with pytest.raises(DataError, match=r"big\.csv, line 2004: 3 fields where the header has 2"):
        load_source(str(tmp_path / "big.csv"), TC)


def test_forced_encoding_error_wins_over_a_bad_row_before_it(tmp_path):
    # The file is decoded before its rows are parsed, so its undecodable byte is the error.
    (tmp_path / "t.csv").write_bytes(b"text,label\nok,1\nbad,row,1\ncaf\xe9,0\n")
    with pytest.raises(DataError, match=r"t\.csv is not valid utf-8 \(byte 29: e9\)"):
        load_source(str(tmp_path / "t.csv"), TC, encoding="utf-8")
    # Without an encoding the file is Latin-1, in which the bad row is the error.
    with pytest.raises(DataError, match=r"t\.csv, line 3: 3 fields"):
        load_source(str(tmp_path / "t.csv"), TC)


def test_streamed_csv_shuffles_and_adapts_a_vocabulary(tmp_path):
    rows = [["label", "text"]] + [[str(i % 2), f"word{i % 7} w{i}"] for i in range(60)]
    (tmp_path / "t.csv").write_text(_table_text(rows))
    source = load_source(str(tmp_path / "t.csv"), TC)
    in_order = _elements(source.train)
    shuffled = [
        (x, int(y))
        for xs, ys in make_pipeline(source.train, 8, training=True, seed=1)
        for x, y in zip(xs.numpy(), ys.numpy())
    ]
    assert sorted(shuffled) == sorted(in_order) and shuffled != in_order
    streamed = keras.layers.TextVectorization(max_tokens=20)
    reference = keras.layers.TextVectorization(max_tokens=20)
    vocabulary = adapt_vocabulary(streamed, source.train.map(lambda text, label: text).batch(16))
    assert vocabulary == adapt_vocabulary(reference, [t.decode() for t, _ in in_order])


def test_strip_in_the_graph_matches_python():
    rng = random.Random(0)
    space = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    alphabet = space + list("ab\u00e9\ufeff\U0001f600\x00")
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 9))) for _ in range(3000)]
    raw = tf.constant([t.encode() for t in texts])
    for mode, reference in (
        (text_stream.MODE_UTF8, lambda t: t.strip()),
        (text_stream.MODE_UTF8_SIG, lambda t: t.encode().decode("utf-8-sig").strip()),
    ):
        got = tf.map_fn(
            lambda x, mode=mode: text_stream.decode_text(x, mode, [mode], None), raw
        ).numpy()
        assert [g.decode() for g in got] == [reference(t) for t in texts]


def test_which_encodings_decode_line_by_line():
    for encoding in ("utf-8", "utf-8-sig", "latin-1", "cp1252", "ascii", "shift_jis"):
        assert text_stream.decodes_by_line(encoding), encoding
    for encoding in ("utf-16", "utf-32-le", "utf-7", "iso2022_jp", "cp037"):
        assert not text_stream.decodes_by_line(encoding), encoding
    assert codecs.lookup("latin-1").name == "iso8859-1"  # the name `check_options` passes on


def _peak_python_memory(load, warm_up):
    """`(load(), peak bytes Python allocated in it)`, after `warm_up()` paid one-time costs."""
    warm_up()
    tracemalloc.start()
    try:
        result = load()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_large_folder_is_listed_not_held(tmp_path):
    body = "".join(chr(97 + i % 26) for i in range(1500))
    for root, count in (("tiny", 1), ("large", 2500)):
        for name in ("neg", "pos"):
            (tmp_path / root / name).mkdir(parents=True)
            for i in range(count):
                (tmp_path / root / name / f"{i}.txt").write_text(f"{i} {body}")
    source, peak = _peak_python_memory(
        lambda: load_source(str(tmp_path / "large"), TC),
        lambda: list(load_source(str(tmp_path / "tiny"), TC).train),
    )
    table = file_table(source.train)
    assert len(table) == 5000 and set(table.columns) == {"path", "label"}
    # The texts total 7.5 MB; loading keeps the file names and never all the texts at once.
    assert peak < 3_000_000, peak
    assert _elements(source.train.skip(4999)) == [(f"2499 {body}".encode(), 1)]


def test_a_large_table_is_indexed_not_held(tmp_path):
    body = "".join(chr(97 + i % 26) for i in range(500))
    for name, count in (("tiny.csv", 2), ("big.csv", 20_000)):
        with open(tmp_path / name, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows([f"{i} {body}", i % 2] for i in range(count))
    source, peak = _peak_python_memory(
        lambda: load_source(str(tmp_path / "big.csv"), TC),
        lambda: list(load_source(str(tmp_path / "tiny.csv"), TC).train),
    )
    table = file_table(source.train)
    assert len(table) == 20_000 and set(table.columns) == {"row", "label"}
    # The texts total 10 MB; the index holds four integers per row.
    assert peak < 3_000_000, peak
    assert _elements(source.train.skip(19_999)) == [(f"19999 {body}".encode(), 1)]
