"""The segmenter's own behaviour: IoU, augmentation, padding, tiling, masks on disk, encoders.

The plain train/load/predict/evaluate/export runs are in the app contract (`test_api.py`).
"""

import dataclasses
import json
import os
import time
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras import dense_prediction
from i2dl_keras.apps import cli, segmentation, settings
from i2dl_keras.data import tfds_source

FAST = [
    "--data",
    "synthetic",
    "--epochs",
    "2",
    "--batch-size",
    "8",
    "--depth",
    "2",
    "--width",
    "4",
    "--channels",
    "1",
    "--crop-size",
    "12",
]


def _runs(root):
    return sorted(p for p in (root / "segmentation").glob("run-*") if p.is_dir())


def _png(path, image):
    tf.io.write_file(str(path), tf.io.encode_png(image))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    argv = ["segmentation", "train", *FAST, "--class-names", "bg,fg", "--output-dir", str(out)]
    assert cli.main(argv) == 0
    (run,) = _runs(out)
    return out, run


def test_train_scores_iou_and_keeps_renamed_classes(trained):
    _, run = trained
    assert (run / "test_predictions.png").is_file()
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["test"]) == {"mean_iou", "iou_per_class", "pixel_accuracy"}
    assert len(metrics["test"]["iou_per_class"]) == 2
    assert metrics["epochs_run"] == 2 and len(metrics["history"]["val_mean_iou"]) == 2
    # The data names its classes; --class-names renamed them, and the model carries the names.
    assert metrics["data"]["class_names"] == ["background", "shape"]
    config = json.loads((run / "config.json").read_text())
    assert config["num_classes"] == 2 and config["class_names"] == ["bg", "fg"]
    assert segmentation.load(run).class_names == ["bg", "fg"]


def test_iou_from_a_hand_computed_confusion_matrix():
    # Rows are true classes. True 0 (7 pixels) is predicted 0 at (0,0), (0,1), (0,2), (1,3) and
    # (1,4), and 1 at (0,3) and (0,4); true 1 (3 pixels) is predicted 1, 0 and 2 once each;
    # class 2 is never true.
    y_true = np.array([[0, 0, 0, 0, 0], [1, 1, 1, 0, 0]])
    y_pred = np.array([[0, 0, 0, 1, 1], [1, 0, 2, 0, 0]])
    expected = np.array([[5, 2, 0], [1, 1, 1], [0, 0, 0]])
    matrix = segmentation.confusion_matrix(y_true, y_pred, 3)
    np.testing.assert_array_equal(matrix, expected)
    metrics = segmentation.metrics_from_confusion(matrix)
    # IoU_0 = 5 / (7 + 6 - 5) = 5/8; IoU_1 = 1 / (3 + 3 - 1) = 1/5; IoU_2 = 0 / (0 + 1 - 0) = 0.
    assert metrics["iou_per_class"] == pytest.approx([5 / 8, 1 / 5, 0.0])
    assert metrics["mean_iou"] == pytest.approx((5 / 8 + 1 / 5 + 0) / 3)
    assert metrics["pixel_accuracy"] == pytest.approx(6 / 10)
    # A class neither true nor predicted has no IoU and stays out of the mean.
    two = segmentation.metrics_from_confusion(np.array([[3, 1, 0], [0, 2, 0], [0, 0, 0]]))
    assert two["iou_per_class"][:2] == pytest.approx([3 / 4, 2 / 3])
    assert two["iou_per_class"][2] is None
    assert two["mean_iou"] == pytest.approx((3 / 4 + 2 / 3) / 2)
    # Keras' MeanIoU agrees on the classes it can score.
    keras_iou = keras.metrics.MeanIoU(3)
    keras_iou.update_state(y_true.ravel(), y_pred.ravel())
    assert float(keras_iou.result()) == pytest.approx(metrics["mean_iou"], abs=1e-6)


def _dihedral_mean(model, images):
    """The mean of the model's probabilities on the 8 flips and transpositions, mapped back."""
    total = 0.0
    for swap in (False, True):
        for cols in (False, True):
            for rows in (False, True):
                view = images.transpose(0, 2, 1, 3) if swap else images
                view = view[:, ::-1] if rows else view
                view = view[:, :, ::-1] if cols else view
                probs = model(np.ascontiguousarray(view), training=False).numpy()
                probs = probs[:, :, ::-1] if cols else probs
                probs = probs[:, ::-1] if rows else probs
                total = total + (probs.transpose(0, 2, 1, 3) if swap else probs)
    return total / 8


def _iou_by_hand(masks, predicted):
    matrix = np.zeros((2, 2), np.int64)
    for t in range(2):
        for p in range(2):
            matrix[t, p] = np.sum((masks == t) & (predicted == p))
    iou = [matrix[k, k] / (matrix[k].sum() + matrix[:, k].sum() - matrix[k, k]) for k in (0, 1)]
    return iou, np.trace(matrix) / matrix.sum()


@pytest.mark.parametrize("tta", [True, False])
def test_evaluate_json_matches_a_confusion_matrix_of_the_predictions(trained, capsys, tta):
    _, run = trained
    flag = "--tta" if tta else "--no-tta"
    assert cli.main(["segmentation", "evaluate", "--model", str(run), "--json", flag]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(metrics) == {"mean_iou", "iou_per_class", "pixel_accuracy"}
    # Recount by hand: the model's argmax on every synthetic test image (with test-time
    # augmentation, of its mean probabilities over the 8 views), against its mask.
    loaded = segmentation.load(run)
    model, config = loaded.model, loaded.config
    assert not config.tta, "test-time augmentation is off by default"
    source = segmentation.i2dl_data.load_source("synthetic", "segmentation", channels=1)
    images, masks = (np.stack(a) for a in zip(*source.test.as_numpy_iterator()))
    images = images.astype("float32")
    probs = _dihedral_mean(model, images) if tta else model(images, training=False).numpy()
    iou, accuracy = _iou_by_hand(masks, probs.argmax(-1))
    assert metrics["iou_per_class"] == pytest.approx(iou, abs=1e-9)
    assert metrics["mean_iou"] == pytest.approx(np.mean(iou), abs=1e-9)
    assert metrics["pixel_accuracy"] == pytest.approx(accuracy, abs=1e-9)
    if not tta:  # the default, as `train` scored the test split
        saved = json.loads((run / "metrics.json").read_text())["test"]
        assert metrics["mean_iou"] == pytest.approx(saved["mean_iou"], abs=1e-9)


def test_predict_writes_masks_and_overlays_of_any_size(trained, tmp_path, capsys):
    out, run = trained
    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    sizes = {"a": (16, 16), "b": (23, 9), "c": (5, 41)}
    for name, (h, w) in sizes.items():
        _png(tmp_path / "imgs" / f"{name}.png", rng.integers(0, 256, (h, w, 1), dtype=np.uint8))
    argv = ["segmentation", "predict", "--model", str(run), str(tmp_path / "imgs")]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()[-3:]
    expected = segmentation.load(run).predict(tmp_path / "imgs")
    for line, (name, (h, w)), result in zip(lines, sorted(sizes.items()), expected):
        path, mask_file, overlay_file, summary = line.split("\t")
        assert path.endswith(f"{name}.png")
        shares = [part.split() for part in summary.split(", ")]
        assert [label for label, _ in shares] == ["bg", "fg"]
        assert float(shares[1][1][:-1]) == pytest.approx(100 * result["mask"].mean(), abs=0.06)
        mask = tf.io.decode_png(tf.io.read_file(mask_file)).numpy()
        assert mask.shape == (h, w, 1), (name, mask.shape)
        # Class names that are not mask values are written as ids spread over 0..255.
        np.testing.assert_array_equal(mask[..., 0], 255 * result["mask"])
        assert os.path.getsize(overlay_file) > 1000
    assert os.path.dirname(mask_file).startswith(str(out / "segmentation" / "predictions-"))


def test_predictions_never_overwrite_earlier_files(trained, tmp_path):
    _, run_dir = trained
    run = segmentation.load(run_dir)
    rng = np.random.default_rng(5)
    written = []
    for folder in ("first", "second"):
        (tmp_path / folder).mkdir()
        _png(tmp_path / folder / "a.png", rng.integers(0, 256, (9, 14, 1), dtype=np.uint8))
        results = run.predict(tmp_path / folder)
        (line,) = segmentation.describe_predictions(run, results)
        mask_file = line.split("\t")[1]
        written.append((mask_file, Path(mask_file).read_bytes()))
    # Two calls on an a.png each: two folders, the first call's mask left as it was written.
    assert os.path.dirname(written[0][0]) != os.path.dirname(written[1][0])
    for mask_file, content in written:
        assert Path(mask_file).read_bytes() == content
    # Arrays have no file to overlay: their masks are written, under names of their own.
    lines = segmentation.describe_predictions(run, run.predict(np.zeros((2, 8, 8, 1), np.uint8)))
    assert [line.split("\t")[2] for line in lines] == ["-", "-"]
    assert len({line.split("\t")[1] for line in lines}) == 2


def test_predict_rejects_a_non_image(trained, tmp_path, capsys):
    _, run = trained
    bad = tmp_path / "x.png"
    bad.write_text("not an image")
    assert cli.main(["segmentation", "predict", "--model", str(run), str(bad)]) == 2
    assert "x.png: not a readable image" in capsys.readouterr().err


def _small_model(**overrides):
    values = dict(
        data="synthetic", depth=2, width=4, channels=1, num_classes=3, tile_size=0, tta=False
    )
    values.update(overrides)
    config = segmentation.Config(**values)
    keras.utils.set_random_seed(3)
    return segmentation.build_model(config), config


def test_arbitrary_input_sizes_pad_and_crop_back():
    model, config = _small_model()
    rng = np.random.default_rng(1)
    for h, w in ((1, 1), (3, 7), (16, 16), (21, 34)):
        pixels = rng.uniform(0, 255, (2, h, w, 1)).astype("float32")
        probs = segmentation.predict_probabilities(model, pixels, config)
        assert probs.shape == (2, h, w, 3)
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    # A size the network takes as it is gives exactly the plain model call.
    pixels = rng.uniform(0, 255, (1, 20, 12, 1)).astype("float32")
    np.testing.assert_allclose(
        segmentation.predict_probabilities(model, pixels, config),
        model(pixels, training=False).numpy(),
        atol=1e-6,
    )
    # With test-time augmentation: the mean over the 8 flips and transpositions.
    tta = dataclasses.replace(config, tta=True)
    np.testing.assert_allclose(
        segmentation.predict_probabilities(model, pixels, tta),
        _dihedral_mean(model, pixels),
        atol=1e-6,
    )
    # Otherwise the padding mirrors the image: the padded 19x11 image is the 20x12 one when
    # that one's last row and column mirror the ones before.
    mirrored = pixels.copy()
    mirrored[:, 19] = mirrored[:, 18]
    mirrored[:, :, 11] = mirrored[:, :, 10]
    padded = dense_prediction.pad_to_multiple(tf.constant(mirrored[:, :19, :11]), 4).numpy()
    np.testing.assert_array_equal(padded, mirrored)
    np.testing.assert_allclose(
        segmentation.predict_probabilities(model, mirrored[:, :19, :11], config),
        model(mirrored, training=False).numpy()[:, :19, :11],
        atol=1e-6,
    )


@pytest.mark.parametrize("tta", [False, True])
def test_tiles_give_the_whole_image_pass(tta):
    model, config = _small_model(tile_size=0, tta=tta)
    rng = np.random.default_rng(2)
    pixels = rng.uniform(0, 255, (2, 100, 130, 1)).astype("float32")
    whole = segmentation.predict_probabilities(model, pixels, config)
    # Overlap 48 keeps every kept pixel at least 24 pixels inside its tile, more than the
    # receptive-field radius of this depth-2 U-Net (22, measured by its gradient): the tiles
    # reproduce the whole pass exactly.
    tiled_config = segmentation.Config(**{**config.__dict__, "tile_size": 80, "tile_overlap": 48})
    rows, _ = dense_prediction.tile_origins(100, 80, 48)
    cols, _ = dense_prediction.tile_origins(132, 80, 48)
    assert len(rows) * len(cols) == 6, "the image must really be cut into tiles"
    tiled = segmentation.predict_probabilities(model, pixels, tiled_config)
    np.testing.assert_allclose(tiled, whole, atol=1e-6)
    # With 20 pixels of margin, less than the radius, the tile borders show, by more than the
    # tolerance above: the check is sharp.
    thin = segmentation.Config(**{**config.__dict__, "tile_size": 80, "tile_overlap": 40})
    assert np.abs(segmentation.predict_probabilities(model, pixels, thin) - whole).max() > 2e-6


def _blob_masks(rng, n, h, w):
    y, x = np.mgrid[0:h, 0:w]
    masks = np.zeros((n, h, w), np.uint8)
    for i in range(n):
        for _ in range(3):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(4, 9)
            masks[i][(y - cy) ** 2 + (x - cx) ** 2 <= r * r] = 2
        masks[i][(np.abs(y - h / 3) < 3) & (x > w / 2)] = 0
    return masks


def _augmented(images, masks, **settings):
    augment = segmentation.joint_augment(segmentation.Config(data="synthetic", **settings))
    return (t.numpy() for t in augment(tf.constant(images), tf.constant(masks)))


def test_augmentation_keeps_masks_aligned_and_creates_no_class():
    rng = np.random.default_rng(0)
    masks = _blob_masks(rng, 16, 40, 48)
    # The image encodes its mask: 100 where the class is 2, 0 elsewhere, and a second channel
    # 30 + 50 * class. Class 1 exists in the data but in none of these masks.
    images = np.stack([masks * 50, 30 + masks * 25], axis=-1).astype(np.uint8)
    out_images, out_masks = _augmented(images, masks, crop_size=32, rotation=20.0, seed=5)
    assert out_images.shape == (16, 32, 32, 2) and out_masks.shape == (16, 32, 32)
    assert out_images.dtype == np.float32 and out_masks.dtype == np.uint8
    assert set(np.unique(out_masks)) <= {0, 2}, "interpolation created a class value"
    # The same transform: the thresholded image is the mask but where the bilinear image and
    # the nearest-neighbour mask may round a boundary pixel differently.
    assert np.mean(np.where(out_images[..., 0] > 50, 2, 0) == out_masks) > 0.98
    # Wherever a pixel's 5x5 neighbourhood in the mask is one class (so its bilinear
    # footprint is too), the transformed image shows exactly that class's intensities.
    windows = np.lib.stride_tricks.sliding_window_view(out_masks, (5, 5), axis=(1, 2))
    uniform = np.all(windows == windows[..., 2:3, 2:3], axis=(-2, -1))
    centre_masks = out_masks[:, 2:-2, 2:-2][uniform].astype(np.float32)
    centre_images = out_images[:, 2:-2, 2:-2][uniform]
    assert uniform.mean() > 0.4
    np.testing.assert_allclose(centre_images[:, 0], 50.0 * centre_masks, atol=1e-3)
    np.testing.assert_allclose(centre_images[:, 1], 30.0 + 25.0 * centre_masks, atol=1e-3)
    # Every example drew its own transform (not all crops the same, not the identity).
    assert len({out_masks[i].tobytes() for i in range(16)}) == 16
    assert sum(not np.array_equal(out_masks[i], masks[i, :32, :32]) for i in range(16)) >= 14
    # The checks above are sharp: masks rotated bilinearly, as images are, get class 1.
    blurred = keras.layers.RandomRotation(20.0 / 360.0, seed=5)(masks[..., None] * 1.0)
    assert np.any(np.round(blurred.numpy()) == 1)
    # Crops and flips move whole pixels: without rotation the image is exactly its mask.
    out_images, out_masks = _augmented(images, masks, crop_size=32, rotation=0.0, seed=5)
    np.testing.assert_array_equal(out_images[..., 0], 50.0 * out_masks)
    np.testing.assert_array_equal(out_images[..., 1], 30.0 + 25.0 * out_masks)
    assert sum(not np.array_equal(out_masks[i], masks[i, :32, :32]) for i in range(16)) >= 12


def _window_offsets(mask, crop):
    """Where `crop` sits in `mask` (rows, columns), for every place it matches."""
    h, w = crop.shape
    return [
        (i, j)
        for i in range(mask.shape[0] - h + 1)
        for j in range(mask.shape[1] - w + 1)
        if np.array_equal(mask[i : i + h, j : j + w], crop)
    ]


def test_crops_fall_at_a_place_of_their_own_per_image():
    # Eight copies of one image: only the crop places can tell them apart.
    mask = np.random.default_rng(1).integers(0, 3, (40, 48), dtype=np.uint8)
    masks = np.repeat(mask[None], 8, axis=0)
    images = (masks[..., None] * 40).astype(np.uint8)
    out_images, out_masks = _augmented(images, masks, crop_size=24, augment=False, seed=3)
    np.testing.assert_array_equal(out_images[..., 0], 40.0 * out_masks)
    places = [_window_offsets(mask, crop) for crop in out_masks]
    assert all(len(p) == 1 for p in places), "every crop is a window of the image"
    assert len({p[0] for p in places}) >= 6, places
    assert (
        segmentation.joint_augment(
            segmentation.Config(data="synthetic", crop_size=0, augment=False)
        )
        is None
    )


def test_augmentation_in_the_training_pipeline():
    config = segmentation.Config(
        data="synthetic", depth=2, channels=1, crop_size=12, batch_size=8, image_size=20
    )
    datasets = segmentation.make_datasets(config, "train")
    images, masks = next(iter(datasets.train))
    assert images.shape == (8, 12, 12, 1) and masks.shape == (8, 12, 12)
    assert set(np.unique(masks.numpy())) <= {0, 1}
    test_images, _ = next(iter(datasets.test))
    assert test_images.shape[1:3] == (20, 20)


def test_images_smaller_than_the_crop_train_whole():
    config = segmentation.Config(data="synthetic", depth=2, crop_size=40, batch_size=8)
    datasets = segmentation.make_datasets(config, "train")
    assert any("smaller than --crop-size 40: training on whole images" in n for n in datasets.notes)
    images, masks = next(iter(datasets.train))
    assert images.shape[1:3] == (16, 16) and masks.shape[1:] == (16, 16)


def test_bad_settings_name_the_flag(tmp_path):
    with pytest.raises(
        settings.UsageError, match="--crop-size must be 0 or a positive multiple of 4"
    ):
        segmentation.Config(data="synthetic", depth=2, crop_size=10).validate()
    with pytest.raises(settings.UsageError, match="--depth must be at least 3"):
        segmentation.Config(model="fcn", depth=2).validate()
    with pytest.raises(settings.UsageError, match="--class-weights must be none, balanced"):
        segmentation.Config(class_weights="heavy").validate()
    with pytest.raises(settings.UsageError, match="2 weights for 3 classes"):
        segmentation.make_loss(segmentation.Config(class_weights="1,2", num_classes=3))
    with pytest.raises(settings.UsageError, match="images of 16x16 are not multiples of 32"):
        segmentation.make_datasets(segmentation.Config(data="synthetic", depth=5), "train")
    with pytest.raises(settings.UsageError, match="--weights imagenet: .* Received: alpha=0.6"):
        segmentation.Config(encoder="mobilenet_v2", encoder_alpha=0.6).validate()
    segmentation.Config(encoder="mobilenet_v2", encoder_alpha=0.6, weights="none").validate()


def test_class_names_must_match_the_data(tmp_path, capsys):
    argv = ["segmentation", "train", *FAST, "--class-names", "a,b,c", "--output-dir", str(tmp_path)]
    assert cli.main(argv) == 2
    assert "--class-names gives 3 names" in capsys.readouterr().err
    assert not _runs(tmp_path)


def test_losses_follow_the_flags():
    ce = segmentation.make_loss(segmentation.Config(loss="ce", class_weights="balanced"))
    assert (ce.dice_weight, ce.crossentropy_weight, ce.class_weights) == (0.0, 1.0, "balanced")
    both = segmentation.make_loss(segmentation.Config(loss="ce+dice", class_weights="3,1"))
    assert (both.dice_weight, both.crossentropy_weight, both.class_weights) == (1.0, 1.0, [3, 1])
    dice = segmentation.make_loss(segmentation.Config(loss="dice"))
    assert (dice.dice_weight, dice.crossentropy_weight) == (1.0, 0.0)


def test_export_serves_png_bytes_of_two_sizes(trained):
    out, run = trained
    # The export itself is checked in a fresh process that imports only TensorFlow, with two
    # PNG sizes (`serving_check_requests`); here its answers are checked against `predict`.
    assert cli.main(["segmentation", "export", "--model", str(run)]) == 0
    serving = out / "segmentation" / "serving" / "1"
    assert (serving / "saved_model.pb").is_file()
    request = segmentation.serving_check_requests(segmentation.Config(depth=2, channels=1))
    shapes = [
        tuple(tf.io.decode_png(b).shape[:2]) for b in request["serving_default"]["image_bytes"]
    ]
    assert len(set(shapes)) == 2, "the fresh-process check must send two sizes"

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, s, dtype=np.uint8) for s in ((16, 16, 1), (27, 10, 1))]
    pngs = [tf.io.encode_png(im).numpy() for im in images]
    expected = [r["mask"] for r in segmentation.load(run).predict(images)]
    signature = tf.saved_model.load(str(serving)).signatures["serving_default"]
    served = {k: v.numpy() for k, v in signature(image_bytes=tf.constant(pngs)).items()}
    assert served["masks"].shape == (2, 27, 16)
    np.testing.assert_array_equal(served["heights"], [16, 27])
    np.testing.assert_array_equal(served["widths"], [16, 10])
    np.testing.assert_array_equal(served["masks"][0, :16, :16], expected[0])
    np.testing.assert_array_equal(served["masks"][1, :27, :10], expected[1])
    assert np.all(served["masks"][0, 16:] == -1) and np.all(served["masks"][1, :, 10:] == -1)


def test_hypermodel_builds_from_default_hyperparameters():
    hypermodel = segmentation.HyperModel(segmentation.Config(depth=2, channels=1, num_classes=3))
    model = hypermodel.build(kt.HyperParameters())
    assert model.output_shape == (None, None, None, 3)
    # The first choice of each hyperparameter: width 8, learning rate 3e-4, cross-entropy alone.
    assert model.get_layer("unet").get_layer("down1_conv2").filters == 16
    assert model.optimizer.learning_rate.numpy() == pytest.approx(3e-4)
    assert (model.loss.crossentropy_weight, model.loss.dice_weight) == (1.0, 0.0)


def test_tune_tiny_search_then_retrain(tmp_path):
    argv = [
        "segmentation",
        "tune",
        *FAST,
        "--epochs",
        "1",
        "--tuner",
        "random",
        "--max-trials",
        "1",
        "--max-epochs",
        "1",
        "--output-dir",
        str(tmp_path),
    ]
    assert cli.main(argv) == 0
    assert len(list((tmp_path / "segmentation" / "tuning").glob("random-*/trial_*"))) == 1
    (run,) = _runs(tmp_path)
    config = json.loads((run / "config.json").read_text())
    assert config["width"] in (8, 16, 32) and 3e-4 <= config["learning_rate"] <= 3e-3
    assert config["loss"] in ("ce", "ce+dice")


def test_fcn_learns_with_dice_and_bilinear_upsampling():
    config = segmentation.Config(
        data="synthetic",
        model="fcn",
        depth=3,
        width=4,
        channels=1,
        loss="ce+dice",
        class_weights="balanced",
        upsampling="bilinear",
        learning_rate=3e-3,
        epochs=1,
        train_examples=8,
    )
    config.validate()
    keras.utils.set_random_seed(0)
    model = segmentation.build_model(config)
    upsample = model.get_layer("fcn8s").get_layer("upsample")
    assert isinstance(upsample, keras.layers.UpSampling2D) and upsample.interpolation == "bilinear"
    source = segmentation.i2dl_data.load_source("synthetic", "segmentation", channels=1)
    images, masks = (np.stack(a)[:16] for a in zip(*source.train.as_numpy_iterator()))
    first = model.train_on_batch(images.astype("float32"), masks, return_dict=True)["loss"]
    for _ in range(5):
        last = model.train_on_batch(images.astype("float32"), masks, return_dict=True)["loss"]
    assert last < first


# --------------------------------------------------------------------------- pretrained encoder


def _encoder_config(**overrides):
    values = dict(
        data="synthetic",
        encoder="mobilenet_v2",
        encoder_alpha=0.35,
        width=4,
        num_classes=2,
        image_size=32,
        tile_size=0,
    )
    values.update(overrides)
    return segmentation.Config(**values)


def test_encoder_with_random_weights_segments_any_size():
    config = _encoder_config(weights="none", image_size=0)
    config.validate()
    model = segmentation.build_model(config)
    assert model.output_shape == (None, None, None, 2)
    core = model.get_layer("mobilenet_v2_unet")
    # --width sets the decoder's full-resolution filters, doubling per level.
    assert [core.get_layer(f"up{i}_conv").filters for i in range(4)] == [4, 8, 16, 32]
    assert core.get_layer("up0_bn").momentum == segmentation.BATCH_NORM_MOMENTUM
    x = np.random.default_rng(0).uniform(0, 255, (1, 45, 21, 3)).astype("float32")
    probs = segmentation.predict_probabilities(model, x, config)
    assert probs.shape == (1, 45, 21, 2)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def encoder_backbone():
    keras.utils.set_random_seed(7)
    return keras.applications.MobileNetV2(
        input_shape=(None, None, 3), include_top=False, weights=None, alpha=0.35
    )


def _assert_encoder_weights(model, backbone):
    encoder = model.get_layer("mobilenet_v2_unet").get_layer("mobilenet_v2_encoder")
    for name in ("Conv1", "block_6_depthwise", "block_16_project"):
        np.testing.assert_array_equal(
            encoder.get_layer(name).get_weights()[0], backbone.get_layer(name).get_weights()[0]
        )


def test_encoder_loads_a_weights_file(tmp_path, encoder_backbone):
    path = tmp_path / "encoder.weights.h5"
    encoder_backbone.save_weights(path)
    config = _encoder_config(weights=str(path))
    config.validate()
    keras.utils.set_random_seed(8)  # different initial weights: only the file can match
    _assert_encoder_weights(segmentation.build_model(config), encoder_backbone)
    with pytest.raises(settings.UsageError, match="--weights .*: no such file"):
        _encoder_config(weights=str(tmp_path / "missing.h5")).validate()
    wrong = _encoder_config(weights=str(path), encoder_alpha=0.5)
    with pytest.raises(settings.UsageError, match="cannot be loaded into MobileNetV2"):
        segmentation.build_model(wrong)


def _offline(monkeypatch):
    """No download host answers."""
    monkeypatch.setattr(tfds_source, "host_reachable", lambda host, port, timeout=3.0: False)


def test_imagenet_weights_offline_fail_fast_naming_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    _offline(monkeypatch)
    started = time.perf_counter()
    argv = [
        "segmentation",
        "train",
        "--data",
        "synthetic",
        "--encoder",
        "mobilenet_v2",
        "--weights",
        "imagenet",
        "--image-size",
        "32",
        "--output-dir",
        str(tmp_path),
    ]
    assert cli.main(argv) == 2
    assert time.perf_counter() - started < 10
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("i2dl: error: --weights imagenet: ")
    fname = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    assert f"place it as {tmp_path / 'keras_home' / 'models' / fname}" in line
    assert "--weights FILE" in line


def test_imagenet_weights_are_taken_from_the_keras_cache(tmp_path, monkeypatch, encoder_backbone):
    # A file in $KERAS_HOME/models, in the format Keras publishes (here of random weights),
    # is used without asking the network, which refuses.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    _offline(monkeypatch)
    (tmp_path / "models").mkdir()
    fname = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
    encoder_backbone.save(tmp_path / "models" / fname)
    config = _encoder_config(weights="imagenet")
    assert segmentation.encoder_weights_file(config) == tmp_path / "models" / fname
    keras.utils.set_random_seed(8)
    _assert_encoder_weights(segmentation.build_model(config), encoder_backbone)


# --------------------------------------------------------------------------- real data


@pytest.mark.slow
def test_membrane_class_iou_reaches_one_half(shared_data, train_with_onednn):
    argv = [
        "segmentation",
        "train",
        "--data",
        str(shared_data / "membrane"),
        "--test-fraction",
        "0.25",
        "--channels",
        "1",
        "--image-size",
        "256",
        "--crop-size",
        "128",
        "--depth",
        "3",
        "--width",
        "8",
        "--batch-size",
        "2",
        "--epochs",
        "12",
        "--learning-rate",
        "6e-3",
    ]
    run = train_with_onednn(argv)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["data"]["num_examples"]["test"] == 6
    assert metrics["data"]["class_names"] == ["0", "255"]
    assert metrics["test"]["iou_per_class"][0] >= 0.5, metrics["test"]


def test_unet_narrows_only_the_full_resolution_level():
    model, _ = _small_model(width=8)
    core = model.get_layer("unet")
    assert core.get_layer("down0_conv2").filters == 4
    assert core.get_layer("down1_conv2").filters == 16
    assert core.get_layer("bottom_conv2").filters == 32
