"""Local text data: one file per class, class folders (aclImdb), CSV/TSV; encodings."""

import pytest

from i2dl_keras.data import DataError, detect_format, load_source

TC = "text_classification"


def _texts(ds):
    return [(x.numpy().decode("utf-8"), int(y.numpy())) for x, y in ds]


def test_one_file_per_class_neg_pos(tmp_path):
    (tmp_path / "polarity.pos").write_text("a fine film\n\n  great fun  \n")
    (tmp_path / "polarity.neg").write_text("dull\r\nawful stuff\r\n\r\n")
    assert detect_format(str(tmp_path)) == "text_files"
    source = load_source(str(tmp_path), TC)
    assert source.class_names == ["neg", "pos"]
    assert source.num_examples == {"train": 4}
    assert sorted(_texts(source.train)) == [
        ("a fine film", 1),
        ("awful stuff", 0),
        ("dull", 0),
        ("great fun", 1),
    ]
    assert source.notes == []


def test_class_names_from_stems_in_sorted_order(tmp_path):
    for name in ("sports.txt", "arts.txt", "news.txt"):
        (tmp_path / name).write_text(name.split(".")[0] + " line\n")
    source = load_source(str(tmp_path), TC)
    assert source.class_names == ["arts", "news", "sports"]
    assert sorted(_texts(source.train)) == [("arts line", 0), ("news line", 1), ("sports line", 2)]


def test_latin1_fallback_is_lossless_and_noted(tmp_path):
    (tmp_path / "r.pos").write_bytes("un café crème \x85 fin\n".encode("latin-1"))
    (tmp_path / "r.neg").write_bytes(b"plain\n")
    source = load_source(str(tmp_path), TC)
    assert ("un café crème \x85 fin", 1) in _texts(source.train)
    assert len(source.notes) == 1 and "Latin-1" in source.notes[0] and "r.pos" in source.notes[0]


def test_encoding_override(tmp_path):
    (tmp_path / "r.pos").write_bytes("naïve\n".encode("latin-1"))
    (tmp_path / "r.neg").write_bytes(b"plain\n")
    with pytest.raises(DataError, match=r"r\.pos is not valid utf-8"):
        load_source(str(tmp_path), TC, encoding="utf-8")
    source = load_source(str(tmp_path), TC, encoding="cp1252")
    assert ("naïve", 1) in _texts(source.train) and source.notes == []
    with pytest.raises(DataError, match="Unknown text encoding"):
        load_source(str(tmp_path), TC, encoding="klingon-8")


def test_text_folders_acl_imdb_layout(tmp_path):
    for split, counts in (("train", (2, 3)), ("test", (1, 1))):
        for name, count in zip(("neg", "pos"), counts):
            folder = tmp_path / "aclImdb" / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                (folder / f"{i}_7.txt").write_text(f"{name} review {i}<br />two\nlines")
        unsup = tmp_path / "aclImdb" / split / "unsup"
        unsup.mkdir()
        (unsup / "0_0.txt").write_text("unlabelled")
        (tmp_path / "aclImdb" / split / "urls_pos.txt").write_text("http://x")
    root = str(tmp_path / "aclImdb")
    assert detect_format(root) == "text_folders"
    source = load_source(root, TC)
    assert source.class_names == ["neg", "pos"]
    assert source.num_examples == {"train": 5, "test": 2}
    train = _texts(source.train)
    assert ("pos review 2<br />two\nlines", 1) in train
    assert all("unlabelled" not in t for t, _ in train)


def test_csv_with_string_labels(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text('Review,Sentiment,id\n"good, really",positive,1\nbad,negative,2\n,positive,3\n')
    assert detect_format(str(path)) == "csv"
    source = load_source(str(path), TC)
    assert source.class_names == ["negative", "positive"]
    assert _texts(source.train) == [("good, really", 1), ("bad", 0)]
    assert any("skipped 1 row with empty text" in n for n in source.notes)


def test_tsv_with_integer_labels_and_splits(tmp_path):
    (tmp_path / "train.tsv").write_text("label\tsentence\n2\tthree\n0\tone\n")
    (tmp_path / "test.tsv").write_text("label\tsentence\n1\ttwo\n")
    assert detect_format(str(tmp_path)) == "tsv"
    source = load_source(str(tmp_path), TC)
    assert source.class_names == ["0", "1", "2"]
    assert _texts(source.train) == [("three", 2), ("one", 0)]
    assert _texts(source.test) == [("two", 1)]


def test_csv_negative_integer_labels_are_mapped(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\nmeh,-1\nyay,1\n")
    source = load_source(str(path), TC)
    assert source.class_names == ["-1", "1"]
    assert _texts(source.train) == [("meh", 0), ("yay", 1)]
    assert any("mapped the integer labels" in n for n in source.notes)


def test_csv_missing_columns_names_file_and_columns(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("words,stars\nhello,5\n")
    with pytest.raises(DataError) as info:
        load_source(str(path), TC)
    message = str(info.value)
    assert "odd.csv" in message and "'words'" in message and "'stars'" in message


def test_csv_bad_row_names_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\nok,1\ntoo,many,fields\n")
    with pytest.raises(DataError, match="line 3"):
        load_source(str(path), TC, data_format="csv")


def test_single_text_file_is_not_enough(tmp_path):
    (tmp_path / "only.pos").write_text("x\n")
    with pytest.raises(DataError, match="at least two"):
        load_source(str(tmp_path), TC, data_format="text_files")


def test_binary_file_is_not_read_as_text(tmp_path):
    (tmp_path / "a.pos").write_text("fine\n")
    (tmp_path / "b.neg").write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(DataError, match=r"b\.neg looks binary"):
        load_source(str(tmp_path), TC)
