"""Local image data: class folders and image/mask pairs, written as tiny PNGs into tmp_path."""

import numpy as np
import pytest
from PIL import Image

from i2dl_keras.data import DataError, detect_format, load_source

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
