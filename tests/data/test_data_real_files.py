"""The real data in ../shared/data: MNIST IDX files, rt-polarity sentences, membrane pairs."""

import numpy as np

from i2dl_keras.data import load_source


def test_mnist_idx(shared_data):
    source = load_source(str(shared_data / "mnist"), "image_classification")
    assert source.name.startswith("MNIST IDX files")
    assert source.num_examples == {"train": 6000, "test": 2000}
    assert source.class_names == [str(i) for i in range(10)]
    x, y = next(iter(source.train))
    assert x.shape == (28, 28, 1) and x.dtype.name == "uint8"
    assert int(y) == 7  # the first digit of the official MNIST test set
    assert int(next(iter(source.test))[1]) == 9
    assert int(x.numpy().max()) == 255 and int(x.numpy().min()) == 0


def _raw_lines(path):
    return [line.strip() for line in path.read_bytes().split(b"\n") if line.strip()]


def test_rt_polarity_counts_and_lossless_text(shared_data):
    folder = shared_data / "rt-polarity"
    source = load_source(str(folder), "text_classification")
    assert source.class_names == ["neg", "pos"]
    assert source.num_examples == {"train": 8000}
    texts, labels = next(source.train.batch(8000).as_numpy_iterator())
    assert (labels == 0).sum() == 4000 and (labels == 1).sum() == 4000
    stored = {t.decode("utf-8") for t in texts}
    # A sentence with a non-ASCII character comes through unchanged.
    line = next(raw for raw in _raw_lines(folder / "rt-polarity.pos") if b"clich\xc3\xa9s" in raw)
    assert line.decode("utf-8") in stored
    # These copies are valid UTF-8 (they hold "\u2013" and "\u2026", which Latin-1 lacks), so no
    # Latin-1 note; reading them as Latin-1 on request is lossless too, byte for byte.
    assert not any("Latin-1" in n for n in source.notes)
    latin = load_source(str(folder), "text_classification", encoding="latin-1")
    xs, ys = next(latin.train.batch(8000).as_numpy_iterator())
    pos = list(xs[ys == 1])
    assert [x.decode("utf-8").encode("latin-1") for x in pos] == _raw_lines(
        folder / "rt-polarity.pos"
    )


def test_membrane_pairs(shared_data):
    source = load_source(str(shared_data / "membrane"), "segmentation", image_size=(64, 64))
    assert source.task == "segmentation"
    assert source.num_examples == {"train": 24}
    assert source.class_names == ["0", "255"]
    images, masks = next(iter(source.train.batch(24)))
    assert images.shape == (24, 64, 64, 1) and masks.shape == (24, 64, 64)
    assert set(np.unique(masks.numpy())) == {0, 1}
    membrane = float(np.mean(masks.numpy() == 0))
    assert 0.15 < membrane < 0.30, membrane  # about 22% of pixels are membrane
