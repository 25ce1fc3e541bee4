"""Local image data: class folders, unlabelled folders and image/mask pairs, in tmp_path."""

import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from i2dl_keras.data import (
    DataError,
    detect_format,
    images,
    load_source,
    make_pipeline,
    split,
    train_val_test,
)

IC = "image_classification"


def _grey(value, h=6, w=6):
    return np.full((h, w), value, dtype=np.uint8)


def _elements(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def test_image_folders_classes_labels_and_shapes(tmp_path, image_folders):
    root = image_folders(
        tmp_path / "shapes", {"b_cls": [_grey(10), _grey(20)], "a_cls": [_grey(200)] * 3}
    )
    assert detect_format(str(root)) == "image_folders"
    source = load_source(str(root), IC)
    assert source.task == IC
    assert source.class_names == ["a_cls", "b_cls"]
    assert source.test is None
    assert source.num_examples == {"train": 5}
    items = _elements(source.train)
    assert all(x.shape == (6, 6, 1) and x.dtype == np.uint8 for x, _ in items)
    # a_cls (id 0) holds the bright images, b_cls (id 1) the dark ones, in file order.
    assert [(int(x[0, 0, 0]), int(y)) for x, y in items] == [
        (200, 0),
        (200, 0),
        (200, 0),
        (10, 1),
        (20, 1),
    ]
    assert source.train.element_spec[1].dtype.name == "int64"


def test_image_folders_train_test_splits(tmp_path, image_folders):
    image_folders(tmp_path / "d" / "train", {"x": [_grey(1)] * 2, "y": [_grey(2)] * 3})
    image_folders(tmp_path / "d" / "test", {"x": [_grey(1)], "y": [_grey(2)]})
    source = load_source(str(tmp_path / "d"), IC)
    assert source.num_examples == {"train": 5, "test": 2}
    assert [int(y) for _, y in _elements(source.test)] == [0, 1]


def test_test_split_with_unknown_class_is_an_error(tmp_path, image_folders):
    image_folders(tmp_path / "d" / "train", {"x": [_grey(1)]})
    image_folders(tmp_path / "d" / "test", {"x": [_grey(1)], "zebra": [_grey(2)]})
    with pytest.raises(DataError, match="zebra"):
        load_source(str(tmp_path / "d"), IC)


def test_mixed_sizes_resized_to_most_common_with_note(tmp_path, image_folders):
    root = image_folders(
        tmp_path / "d", {"a": [_grey(5, 6, 6), _grey(5, 6, 6)], "b": [_grey(9, 8, 4)]}
    )
    source = load_source(str(root), IC)
    assert source.train.element_spec[0].shape == (6, 6, 1)
    assert any("resized 1 of 3" in n and "6x6" in n for n in source.notes), source.notes


def test_image_size_resizes_and_channels_forces_rgb(tmp_path, image_folders):
    root = image_folders(tmp_path / "d", {"a": [_grey(50, 6, 6)], "b": [_grey(90, 6, 6)]})
    source = load_source(str(root), IC, image_size=(3, 4), channels=3)
    x, _ = _elements(source.train)[0]
    assert x.shape == (3, 4, 3)
    np.testing.assert_array_equal(x, np.full((3, 4, 3), 50, np.uint8))


def test_colour_images_stay_rgb_and_greyscale_joins_them(tmp_path, write_png):
    colour = np.zeros((6, 6, 3), np.uint8)
    colour[..., 0] = 255
    write_png(tmp_path / "d" / "red" / "0.png", colour)
    write_png(tmp_path / "d" / "grey" / "0.png", _grey(100))
    source = load_source(str(tmp_path / "d"), IC)
    images = {int(y): x for x, y in _elements(source.train)}
    assert images[1].shape == (6, 6, 3)
    np.testing.assert_array_equal(images[1][0, 0], [255, 0, 0])
    np.testing.assert_array_equal(images[0][0, 0], [100, 100, 100])
    assert any("greyscale" in n for n in source.notes)
    grey = load_source(str(tmp_path / "d"), IC, channels=1)
    red = {int(y): x for x, y in _elements(grey.train)}[1]
    assert red.shape == (6, 6, 1) and int(red[0, 0, 0]) == 76  # 0.299 * 255, rounded


def test_corrupt_image_is_named_or_skipped_with_note(tmp_path, image_folders):
    root = image_folders(tmp_path / "d", {"a": [_grey(1), _grey(2)], "b": [_grey(3)]})
    bad = root / "b" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(DataError, match="broken.png") as info:
        load_source(str(root), IC)
    assert "skip-bad-files" in str(info.value)
    source = load_source(str(root), IC, skip_bad_files=True)
    assert source.num_examples == {"train": 3}
    assert any("skipped 1 unreadable file" in n and "broken.png" in n for n in source.notes)


def test_truncated_png_is_caught(tmp_path, image_folders):
    root = image_folders(tmp_path / "d", {"a": [_grey(1)], "b": [_grey(3)]})
    noisy = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    full = tmp_path / "full.png"
    Image.fromarray(noisy).save(full)
    (root / "a" / "cut.png").write_bytes(full.read_bytes()[:300])
    with pytest.raises(DataError, match="cut.png"):
        load_source(str(root), IC)


def test_non_images_are_ignored_with_note(tmp_path, image_folders):
    root = image_folders(tmp_path / "d", {"a": [_grey(1)], "b": [_grey(3)]})
    (root / "a" / "notes.txt").write_text("hello")
    source = load_source(str(root), IC, data_format="image_folders")
    assert source.num_examples == {"train": 2}
    assert any("notes.txt" in n for n in source.notes)


def test_empty_class_folder_is_an_error(tmp_path, image_folders):
    root = image_folders(tmp_path / "d", {"a": [_grey(1)]})
    (root / "empty_class").mkdir()
    with pytest.raises(DataError, match="empty_class"):
        load_source(str(root), IC, data_format="image_folders")


def test_images_without_class_folders(tmp_path, write_png):
    write_png(tmp_path / "d" / "0.png", _grey(1))
    with pytest.raises(DataError, match="class subfolders"):
        load_source(str(tmp_path / "d"), IC)


def _pairs(root, write_png, masks, sizes=None):
    for i, mask in enumerate(masks):
        h, w = mask.shape
        write_png(root / "image" / f"{i}.png", np.full((h, w), 10 * i + 5))
        write_png(root / "label" / f"{i}.png", mask)
    return root


def test_mask_values_map_to_sorted_class_ids(tmp_path, write_png):
    m0 = np.array([[0, 255, 255], [0, 0, 128]], np.uint8)
    m1 = np.array([[255, 255, 255], [0, 0, 0]], np.uint8)
    root = _pairs(tmp_path / "seg", write_png, [m0, m1])
    assert detect_format(str(root)) == "image_mask_pairs"
    source = load_source(str(root), "segmentation")
    assert source.class_names == ["0", "128", "255"]
    (x0, y0), (x1, y1) = _elements(source.train)
    assert x0.shape == (2, 3, 1) and y0.shape == (2, 3) and y0.dtype == np.uint8
    np.testing.assert_array_equal(y0, [[0, 2, 2], [0, 0, 1]])
    np.testing.assert_array_equal(y1, [[2, 2, 2], [0, 0, 0]])
    assert int(x1[0, 0, 0]) == 15


def test_mask_resize_is_nearest_neighbour(tmp_path, write_png):
    mask = np.zeros((8, 8), np.uint8)
    mask[:, 4:] = 255
    mask[2:4, 1:3] = 100
    root = _pairs(tmp_path / "seg", write_png, [mask])
    source = load_source(str(root), "segmentation", image_size=(5, 3))
    (x, y) = _elements(source.train)[0]
    assert x.shape == (5, 3, 1) and y.shape == (5, 3)
    assert set(np.unique(y)) <= {0, 1, 2}
    assert source.class_names == ["0", "100", "255"]
    assert any("resized 1 of 1" in n for n in source.notes)


def test_colour_masks_are_named_by_colour(tmp_path, write_png):
    mask = np.zeros((4, 4, 3), np.uint8)
    mask[:2, :, 0] = 255  # red
    mask[2:, :, 2] = 255  # blue
    write_png(tmp_path / "s" / "images" / "a.png", np.full((4, 4, 3), 9))
    write_png(tmp_path / "s" / "masks" / "a.png", mask)
    source = load_source(str(tmp_path / "s"), "segmentation")
    assert source.class_names == ["#0000ff", "#ff0000"]
    _, y = _elements(source.train)[0]
    np.testing.assert_array_equal(y[:, 0], [1, 1, 0, 0])


def test_unmatched_pairs_are_listed(tmp_path, write_png):
    root = _pairs(tmp_path / "seg", write_png, [np.zeros((3, 3))] * 2)
    write_png(root / "image" / "orphan.png", np.zeros((3, 3)))
    write_png(root / "label" / "widow.png", np.zeros((3, 3)))
    with pytest.raises(DataError) as info:
        load_source(str(root), "segmentation")
    assert "orphan.png" in str(info.value) and "widow.png" in str(info.value)


def test_mask_of_other_size_is_an_error(tmp_path, write_png):
    write_png(tmp_path / "s" / "image" / "a.png", np.zeros((4, 4)))
    write_png(tmp_path / "s" / "label" / "a.png", np.zeros((4, 5)))
    with pytest.raises(DataError, match="a.png.*must match"):
        load_source(str(tmp_path / "s"), "segmentation")


def test_corrupt_mask_skipped_with_its_pair(tmp_path, write_png):
    root = _pairs(tmp_path / "seg", write_png, [np.zeros((3, 3))] * 3)
    (root / "label" / "1.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="mask .*1.png"):
        load_source(str(root), "segmentation")
    source = load_source(str(root), "segmentation", skip_bad_files=True)
    assert source.num_examples == {"train": 2}


def test_format_must_suit_the_task(tmp_path, image_folders):
    root = image_folders(tmp_path / "d", {"a": [_grey(1)]})
    with pytest.raises(DataError, match="image_folders.*text_classification"):
        load_source(str(root), "text_classification")


# --------------------------------------------------------------------------- unlabelled images

AE = "autoencoder"


def test_a_flat_folder_of_images_is_unlabelled_images(tmp_path, write_png):
    for i, value in enumerate((10, 20, 30)):
        write_png(tmp_path / "d" / f"{i}.png", _grey(value))
    (tmp_path / "d" / "notes.txt").write_text("hello")
    root = tmp_path / "d"
    assert detect_format(str(root)) == "unlabelled_images"
    source = load_source(str(root), AE)
    assert source.task == AE and source.class_names == []
    assert source.num_examples == {"train": 3} and source.test is None
    assert source.name == f"unlabelled images in {root}"
    assert any("notes.txt" in n for n in source.notes), source.notes
    # Each image, in file order, is its own target.
    items = _elements(source.train)
    assert [int(x[0, 0, 0]) for x, _ in items] == [10, 20, 30]
    for x, y in items:
        assert x.shape == (6, 6, 1) and x.dtype == np.uint8
        np.testing.assert_array_equal(x, y)


def test_unlabelled_images_of_mixed_sizes_and_colours_with_splits(tmp_path, write_png):
    write_png(tmp_path / "d" / "train" / "a.png", _grey(50, 6, 6))
    write_png(tmp_path / "d" / "train" / "b.png", np.full((9, 4, 3), 90, np.uint8))
    write_png(tmp_path / "d" / "test" / "c.png", _grey(70, 6, 6))
    source = load_source(str(tmp_path / "d"), AE, image_size=(4, 5), channels=3)
    assert source.num_examples == {"train": 2, "test": 1}
    (x, _), (rgb, _) = _elements(source.train)
    assert x.shape == rgb.shape == (4, 5, 3)
    np.testing.assert_array_equal(x, np.full((4, 5, 3), 50, np.uint8))
    assert int(_elements(source.test)[0][0][0, 0, 0]) == 70


def test_unlabelled_images_name_bad_files_or_skip_them(tmp_path, write_png):
    write_png(tmp_path / "d" / "0.png", _grey(1))
    write_png(tmp_path / "d" / "1.png", _grey(2))
    (tmp_path / "d" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(DataError, match=f"{tmp_path / 'd' / 'broken.png'}"):
        load_source(str(tmp_path / "d"), AE)
    source = load_source(str(tmp_path / "d"), AE, skip_bad_files=True)
    assert source.num_examples == {"train": 2}


def test_unlabelled_images_serve_the_autoencoder_only(tmp_path, write_png, image_folders):
    write_png(tmp_path / "flat" / "0.png", _grey(1))
    for task in ("segmentation", "text_classification"):
        with pytest.raises(DataError, match=f"unlabelled_images.*the task is {task}"):
            load_source(str(tmp_path / "flat"), task)
    # Class folders serve the autoencoder too, their labels dropped.
    root = image_folders(tmp_path / "classes", {"a": [_grey(5)], "b": [_grey(9)]})
    source = load_source(str(root), AE)
    assert source.task == AE and source.class_names == []
    assert [int(x[0, 0, 0]) for x, _ in _elements(source.train)] == [5, 9]
    # Forcing the format reads only the images at the top level: none here.
    with pytest.raises(DataError, match="holds no images"):
        load_source(str(root), AE, data_format="unlabelled_images")


# --------------------------------------------------------------------------- formats and decoders


def _noise(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _write_every_format(folder):
    """One 10x12 image per way of storing one, named after it; returns name -> decoder."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb, grey = _noise((10, 12, 3), 1), _noise((10, 12), 2)
    smooth = np.kron(_noise((5, 6, 3), 3), np.ones((2, 2, 1), np.uint8))  # JPEG-friendly
    Image.fromarray(grey).save(folder / "grey.png")
    Image.fromarray(rgb).save(folder / "rgb.png")
    Image.fromarray(_noise((10, 12, 4), 4), "RGBA").save(folder / "rgba.png")
    Image.fromarray(_noise((10, 12, 2), 5), "LA").save(folder / "la.png")
    Image.fromarray(rgb).quantize(16).save(folder / "palette.png")
    deep = (_noise((10, 12), 6).astype(np.uint16) * 257).astype(np.uint16)
    Image.fromarray(deep).save(folder / "deep.png")  # 16-bit grey
    Image.fromarray(smooth).save(folder / "photo.jpg", quality=90)
    Image.fromarray(grey).save(folder / "grey.jpg", quality=90)
    Image.fromarray(rgb).quantize(32).save(folder / "anim.gif", transparency=0)
    Image.fromarray(rgb).save(folder / "pic.bmp")
    Image.fromarray(rgb).save(folder / "pic.webp", lossless=True)
    Image.fromarray(rgb).save(folder / "pic.tif")
    return {
        "grey.png": "png1",
        "rgb.png": "png3",
        "rgba.png": "png4",
        "la.png": "png4",
        "palette.png": "pillow",
        "deep.png": "pillow",
        "photo.jpg": "jpeg3",
        "grey.jpg": "jpeg1",
        "anim.gif": "gif",
        "pic.bmp": "bmp",
        "pic.webp": "pillow",
        "pic.tif": "pillow",
    }


def test_every_format_decodes_to_the_pixels_pillow_gives(tmp_path):
    decoders = _write_every_format(tmp_path / "d" / "mixed")
    _write_every_format(tmp_path / "d" / "other")
    folder = tmp_path / "d" / "mixed"
    names = sorted(decoders, key=images.natural_key)
    for name, decoder in decoders.items():
        assert images.IMAGE_DECODERS[images.probe(str(folder / name)).decoder] == decoder, name
    for channels in (3, 1):
        source = load_source(str(tmp_path / "d"), IC, channels=channels)
        assert source.num_examples == {"train": 2 * len(names)}
        items = _elements(source.train)[: len(names)]
        for name, (x, y) in zip(names, items):
            expected = images.pillow_pixels((folder / name).read_bytes(), channels)
            assert x.shape == (10, 12, channels) and int(y) == 0, name
            np.testing.assert_array_equal(x, expected, err_msg=name)


def test_alpha_16_bit_and_luma_by_hand(tmp_path, write_png):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[...] = (200, 100, 50, 128)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    Image.fromarray(np.full((4, 4), 32768, np.uint16)).save(tmp_path / "deep.png")
    colour = load_source(str(tmp_path), AE, channels=3)
    alpha, deep = [x for x, _ in _elements(colour.train)]
    # Composited on black: round(200 * 128 / 255) = 100, round(100 * 128 / 255) = 50, ...
    np.testing.assert_array_equal(alpha[0, 0], [100, 50, 25])
    # 16-bit values scale to 0..255: round(32768 / 65535 * 255) = 128.
    np.testing.assert_array_equal(deep[0, 0], [128, 128, 128])
    grey = load_source(str(tmp_path), AE, channels=1)
    # 0.299 * 100 + 0.587 * 50 + 0.114 * 25 = 62.1
    assert int(_elements(grey.train)[0][0][0, 0, 0]) == 62


def test_resize_is_antialiased_bilinear_like_pillow(tmp_path, write_png):
    big = _noise((20, 16), 7)
    write_png(tmp_path / "d" / "0.png", big)
    source = load_source(str(tmp_path / "d"), AE, image_size=(7, 9))
    x = _elements(source.train)[0][0]
    expected = np.asarray(Image.fromarray(big).resize((9, 7), Image.Resampling.BILINEAR))
    assert x.shape == (7, 9, 1)
    assert np.abs(x[..., 0].astype(int) - expected).max() <= 1


def test_truncated_jpeg_and_gif_are_named_or_skipped(tmp_path, image_folders):
    root = image_folders(tmp_path / "d", {"a": [_grey(1)], "b": [_grey(3)]})
    full = tmp_path / "full.jpg"
    Image.fromarray(_noise((32, 32, 3))).save(full, quality=90)
    (root / "a" / "cut.jpg").write_bytes(full.read_bytes()[:-200])
    with pytest.raises(DataError, match="cut.jpg"):
        load_source(str(root), IC)
    (root / "a" / "cut.jpg").unlink()
    Image.fromarray(_noise((32, 32, 3))).quantize(64).save(tmp_path / "full.gif")
    (root / "b" / "cut.gif").write_bytes((tmp_path / "full.gif").read_bytes()[:-100])
    with pytest.raises(DataError, match="cut.gif"):
        load_source(str(root), IC)
    source = load_source(str(root), IC, skip_bad_files=True)
    assert source.num_examples == {"train": 2}
    assert any("cut.gif" in n for n in source.notes), source.notes


def test_jpeg_with_data_after_its_end_is_not_called_corrupt(tmp_path, image_folders):
    root = image_folders(tmp_path / "d", {"a": [_grey(1)], "b": [_grey(3)]})
    grey = np.full((6, 6), 120, np.uint8)
    Image.fromarray(grey).save(tmp_path / "x.jpg", quality=95)
    (root / "b" / "padded.jpg").write_bytes((tmp_path / "x.jpg").read_bytes() + b"\0" * 5000)
    source = load_source(str(root), IC)
    assert source.num_examples == {"train": 3}
    x, y = _elements(source.train)[2]
    assert int(y) == 1 and abs(int(x[0, 0, 0]) - 120) <= 1


# --------------------------------------------------------------------------- memory


def _count_pillow_decodes(monkeypatch):
    calls = []
    decode = images.pillow_pixels

    def counting(contents, channels):
        calls.append(1)
        return decode(contents, channels)

    monkeypatch.setattr(images, "pillow_pixels", counting)
    return calls


def _palette_folders(root, per_class):
    """Palette PNGs (decoded by Pillow inside the pipeline, so each decode can be counted)."""
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(_noise((4, 4, 3), i)).quantize(4).save(root / label / f"{i}.png")
    return root


def test_the_source_holds_file_names_not_pixels(tmp_path, image_folders):
    root = image_folders(tmp_path / "d", {"a": [_grey(10), _grey(20)], "b": [_grey(30)]})
    source = load_source(str(root), IC)
    Image.fromarray(_grey(99)).save(root / "a" / "1.png")  # changed after loading
    assert [int(x[0, 0, 0]) for x, _ in _elements(source.train)] == [10, 99, 30]


def test_iterating_decodes_a_bounded_number_ahead(tmp_path, monkeypatch):
    calls = _count_pillow_decodes(monkeypatch)
    source = load_source(str(_palette_folders(tmp_path / "d", 150)), IC)
    assert calls == []  # loading decodes nothing
    iterator = iter(source.train)
    next(iterator)
    assert 1 <= len(calls) <= 60, len(calls)
    for _ in iterator:
        pass
    assert len(calls) == 300  # every file once, none twice


def test_pipeline_streams_files_unless_cached(tmp_path, monkeypatch):
    calls = _count_pillow_decodes(monkeypatch)
    source = load_source(str(_palette_folders(tmp_path / "d", 10)), IC)

    def labels_of_two_epochs(**kwargs):
        batches = make_pipeline(source.train, 4, training=True, seed=3, **kwargs)
        return [[int(v) for _, y in batches for v in y.numpy()] for _ in range(2)]

    first, second = labels_of_two_epochs()
    assert len(calls) == 40  # read again every epoch
    assert sorted(first) == sorted(second) == [0] * 10 + [1] * 10
    assert first != second and first != sorted(first)  # file names reshuffled every epoch
    calls.clear()
    labels_of_two_epochs(cache="memory")
    assert len(calls) == 20


def test_splits_of_a_folder_cut_its_file_list(tmp_path, monkeypatch):
    calls = _count_pillow_decodes(monkeypatch)
    source = load_source(str(_palette_folders(tmp_path / "d", 10)), IC)
    rest, held = split(source.train, 0.25, seed=4)
    assert int(rest.cardinality()) == 15 and int(held.cardinality()) == 5
    held_items = _elements(held)
    assert len(calls) == 5  # only the held-out files were read
    # The same examples as the split of an ordinary dataset of the same elements.
    plain = source.train.map(lambda x, y: (x, y))
    expected = _elements(split(plain, 0.25, seed=4)[1])
    for (x, y), (ex, ey) in zip(held_items, expected, strict=True):
        np.testing.assert_array_equal(x, ex)
        assert int(y) == int(ey)
    train, validation, test, _ = train_val_test(source, seed=0)
    counts = [int(ds.cardinality()) for ds in (train, validation, test)]
    assert counts == [14, 2, 4]


def test_class_folders_serve_the_autoencoder_without_decoding_up_front(tmp_path, monkeypatch):
    calls = _count_pillow_decodes(monkeypatch)
    source = load_source(str(_palette_folders(tmp_path / "d", 3)), AE)
    assert calls == [] and source.num_examples == {"train": 6}
    for x, y in _elements(source.train):
        np.testing.assert_array_equal(x, y)
    assert len(calls) == 6


# --------------------------------------------------------------------------- masks


def test_palette_masks_keep_their_indices(tmp_path, write_png):
    indices = np.array([[0, 1, 1], [255, 0, 1]], np.uint8)
    mask = Image.fromarray(indices, "P")
    palette = [0] * 768
    palette[3:6] = [200, 30, 30]  # index 1 drawn red, as VOC masks are
    palette[765:768] = [224, 224, 192]
    mask.putpalette(palette)
    write_png(tmp_path / "s" / "image" / "a.png", np.zeros((2, 3)))
    (tmp_path / "s" / "label").mkdir()
    mask.save(tmp_path / "s" / "label" / "a.png")
    source = load_source(str(tmp_path / "s"), "segmentation")
    assert source.class_names == ["0", "1", "255"]
    np.testing.assert_array_equal(_elements(source.train)[0][1], [[0, 1, 1], [2, 0, 1]])


def test_grey_masks_beside_colour_ones_are_named_as_colours(tmp_path, write_png):
    grey = np.array([[0, 255], [255, 0]], np.uint8)
    colour = np.zeros((2, 2, 3), np.uint8)
    colour[0] = (255, 0, 0)
    for name, mask in (("a", grey), ("b", colour)):
        write_png(tmp_path / "s" / "image" / f"{name}.png", np.zeros((2, 2)))
        write_png(tmp_path / "s" / "label" / f"{name}.png", mask)
    source = load_source(str(tmp_path / "s"), "segmentation")
    assert source.class_names == ["#000000", "#ff0000", "#ffffff"]
    (_, a), (_, b) = _elements(source.train)
    np.testing.assert_array_equal(a, [[0, 2], [2, 0]])
    np.testing.assert_array_equal(b, [[1, 1], [0, 0]])


def _png_with_bad_pixel_data(path, shape):
    """A PNG whose chunks have valid checksums but whose compressed pixels are garbage."""
    Image.fromarray(np.zeros(shape, np.uint8)).save(path)
    data = path.read_bytes()
    start = data.index(b"IDAT") - 4
    length = int.from_bytes(data[start : start + 4], "big")
    garbage = bytes(range(7, 7 + length))
    chunk = b"IDAT" + garbage
    patched = struct.pack(">I", length) + chunk + struct.pack(">I", zlib.crc32(chunk))
    path.write_bytes(data[:start] + patched + data[start + 12 + length :])


def test_mask_that_fails_to_decode_is_named_or_skipped(tmp_path, write_png):
    root = _pairs(tmp_path / "seg", write_png, [np.zeros((3, 3))] * 3)
    _png_with_bad_pixel_data(root / "label" / "1.png", (3, 3))
    images.probe(str(root / "label" / "1.png"))  # passes the check pass
    with pytest.raises(DataError, match="mask .*1.png"):
        load_source(str(root), "segmentation")
    source = load_source(str(root), "segmentation", skip_bad_files=True)
    assert source.num_examples == {"train": 2}
    assert any("1.png" in n for n in source.notes), source.notes


def test_file_that_fails_to_decode_in_the_pipeline_is_named(tmp_path, image_folders):
    root = image_folders(tmp_path / "d", {"a": [_grey(1)], "b": [_grey(3)]})
    bad = root / "b" / "scrambled.tif"
    Image.fromarray(_noise((6, 6))).save(bad, compression="tiff_adobe_deflate")
    with Image.open(bad) as image:
        start, length = image.tag_v2[273][0], image.tag_v2[279][0]
    data = bytearray(bad.read_bytes())
    data[start : start + length] = b"\xff" * length  # the header stays whole
    bad.write_bytes(bytes(data))
    source = load_source(str(root), IC)
    assert source.num_examples == {"train": 3}
    with pytest.raises(tf.errors.InvalidArgumentError, match="scrambled.tif"):
        _elements(source.train)
