"""The denoising autoencoder's own behaviour: noise, variants, stages, predict's files.

Train, load, predict on every input kind, evaluate and export are the app contract
(`tests/apps/test_api.py`).
"""

import dataclasses
import json
import sys
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras import layers
from i2dl_keras.apps import base, cli, denoise, settings

FAST = [
    "--data",
    "synthetic",
    "--epochs",
    "2",
    "--batch-size",
    "16",
    "--image-size",
    "16",
    "--width",
    "8",
]


def _runs(root):
    return sorted(p for p in (root / "denoise").glob("run-*") if p.is_dir())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    fast = dict(data="synthetic", epochs=2, batch_size=16, image_size=16, width=8)
    return out, denoise.train(output_dir=str(out), **fast)


# --------------------------------------------------------------------------- noise


def _corrupt(images, noise, level, seed=(1, 2)):
    return denoise.corrupt(tf.constant(images), noise, level, tf.constant(seed, tf.int64)).numpy()


def test_corrupt_applies_the_library_corruption_of_each_noise():
    # The statistics of each corruption are tested with the library (tests/layers).
    images = np.random.default_rng(0).random((2, 8, 8, 1)).astype(np.float32)
    seed = tf.constant((3, 4), tf.int64)
    expected = {
        "gaussian": layers.gaussian_corruption(images, 0.3, seed=seed, low=0.0, high=1.0),
        "salt_pepper": layers.salt_pepper_corruption(images, 0.3, seed=seed),
        "masking": layers.masking_corruption(images, 0.3, seed=seed),
    }
    for noise in denoise.NOISES:
        noisy = _corrupt(images, noise, 0.3, (3, 4))
        np.testing.assert_array_equal(noisy, np.asarray(expected[noise]))
        assert noisy.min() >= 0.0 and noisy.max() <= 1.0 and not np.array_equal(noisy, images)
        assert not np.array_equal(noisy, _corrupt(images, noise, 0.3, (3, 5)))
        np.testing.assert_array_equal(_corrupt(images, noise, 0.0), images)


def _batches(batch_size, n=10):
    images = np.random.default_rng(1).random((n, 8, 8, 1)).astype(np.float32)
    return images, tf.data.Dataset.from_tensor_slices((images, np.arange(n))).batch(batch_size)


def test_training_pairs_draw_fresh_noise_each_epoch():
    images, batches = _batches(4)
    pairs = denoise.noisy_training_pairs(batches, "gaussian", 0.2, seed=0)
    first, second = (list(pairs.as_numpy_iterator()) for _ in range(2))
    for (noisy_a, clean_a), (noisy_b, clean_b) in zip(first, second):
        np.testing.assert_array_equal(clean_a, clean_b)
        assert not np.allclose(noisy_a, noisy_b)
    np.testing.assert_array_equal(np.concatenate([c for _, c in first]), images)
    assert int(pairs.cardinality()) == 3, "Keras needs the epoch length"
    # The inputs come on the model's 0-255 scale: without noise, the clean images times 255.
    noiseless = denoise.noisy_training_pairs(batches, "gaussian", 0.0, seed=0)
    for noisy, clean in noiseless.as_numpy_iterator():
        np.testing.assert_array_equal(noisy, clean * np.float32(255))


def test_fixed_pairs_repeat_and_do_not_depend_on_the_batch_size():
    _, by4 = _batches(4)
    _, by3 = _batches(3)
    noisy4 = [
        np.concatenate([n for n, _ in denoise.noisy_fixed_pairs(by4, "salt_pepper", 0.3, 0, 2, 4)])
        for _ in range(2)
    ]
    pairs3 = denoise.noisy_fixed_pairs(by3, "salt_pepper", 0.3, 0, 2, 3)
    noisy3 = np.concatenate([n for n, _ in pairs3])
    np.testing.assert_array_equal(noisy4[0], noisy4[1])
    np.testing.assert_array_equal(noisy4[0], noisy3)
    other_split = denoise.noisy_fixed_pairs(by4, "salt_pepper", 0.3, 0, 1, 4)
    assert not np.array_equal(noisy4[0], np.concatenate([n for n, _ in other_split]))
    assert int(pairs3.cardinality()) == 4


# --------------------------------------------------------------------------- config, models


@pytest.mark.parametrize(
    "values, message",
    [
        ({"image_size": 28, "depth": 3}, "--image-size 28 must be divisible by 2**depth = 8"),
        ({"noise_level": 1.5}, "--noise-level must be in [0, 1] for --noise gaussian"),
        ({"noise": "masking", "noise_level": 1.0}, "--noise-level must be in [0, 1)"),
        ({"train_noise_level": -0.1}, "--train-noise-level must be in [0, 1]"),
        ({"variant": "bottleneck", "image_size": 4, "code_size": 16}, "--code-size 16 must"),
        ({"labels_per_class": 0}, "--labels-per-class must be at least 1"),
        ({"convs_per_stage": 0}, "--convs-per-stage must be at least 1"),
        ({"full_resolution_convs": -1}, "--full-resolution-convs must be 0 or more, got -1"),
    ],
)
def test_config_errors_name_the_flag(values, message):
    with pytest.raises(settings.UsageError) as info:
        denoise.Config(**values).validate()
    assert message in str(info.value)


def test_every_variant_builds_an_image_to_image_model():
    pixels = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 1), dtype=np.uint8)
    for variant in denoise.VARIANTS:
        config = denoise.Config(variant=variant, image_size=16, hidden=32, code_size=8, width=4)
        config.validate()
        model = denoise.build_model(config)
        assert model.output_shape == (None, 16, 16, 1), variant
        # Raw pixels in: the network sees them divided by 255, as the pipeline's clean images.
        network = denoise.network_of(model)
        np.testing.assert_allclose(
            model(pixels).numpy(), network(pixels / np.float32(255)).numpy(), atol=1e-5
        )
        # The default MSE trains a linear output: what the app hands out is clipped to [0, 1].
        y = denoise.denoise_images(model, pixels)
        assert y.shape == pixels.shape and y.min() >= 0.0 and y.max() <= 1.0, variant
        bce = denoise.build_model(dataclasses.replace(config, loss="bce"))
        y = bce(pixels).numpy()
        assert y.min() >= 0.0 and y.max() <= 1.0, variant
        assert network.layers[1].name == "encoder", "no corruption layer: the pipeline corrupts"
    # MSE trains a linear output (a sigmoid stalls under MSE); the app clips what it serves.
    config = denoise.Config(image_size=16, width=4, loss="mse")
    decoder = denoise.network_of(denoise.build_model(config)).get_layer("decoder")
    assert decoder.layers[-1].get_config()["activation"] == "linear"
    bce = denoise.build_model(dataclasses.replace(config, loss="bce"))
    assert denoise.network_of(bce).get_layer("decoder").layers[-1].get_config()["activation"] == (
        "sigmoid"
    )
    # The default on MNIST-sized images: a U-Net-shaped conv autoencoder, two 16-filter 3x3
    # convolutions at full resolution, then two stages of four with 16 and 32 filters,
    # mirrored, the decoder stages concatenating the encoder's feature map of their resolution.
    model = denoise.build_model(denoise.Config())
    assert model.count_params() == 99_777 <= 100_000
    code, *skips = denoise.network_of(model).get_layer("encoder").outputs
    assert tuple(code.shape) == (None, 7, 7, 32)
    assert [tuple(t.shape) for t in skips] == [(None, 14, 14, 16), (None, 28, 28, 16)]
    # Without the full-resolution convolutions the last skip is the image itself.
    model = denoise.build_model(denoise.Config(full_resolution_convs=0))
    assert model.count_params() == 92_977
    encoder = denoise.network_of(model).get_layer("encoder")
    assert tuple(encoder.outputs[-1].shape) == (None, 28, 28, 1)
    # The course's plain conv autoencoder is still one flag set away.
    plain = denoise.Config(
        width=20, kernel_size=5, convs_per_stage=1, skip_connections=False, full_resolution_convs=0
    )
    assert denoise.build_model(plain).count_params() == 81_121


def test_hypermodel_builds_and_trains_at_the_trial_noise_level():
    config = denoise.Config(image_size=16, channels=1)
    hypermodel = denoise.HyperModel(config)
    hp = kt.HyperParameters()
    model = hypermodel.build(hp)
    # Each choice starts at the app's default; the training noise level at --noise-level.
    chosen = hypermodel.config_for(hp)
    assert (chosen.code_size, chosen.width, chosen.depth) == (0, 16, 2)
    assert chosen.train_noise_level == 0.5 and chosen.learning_rate == pytest.approx(5e-4)
    assert model.count_params() == denoise.build_model(chosen).count_params()
    assert hp.values["train_noise_level"] == 0.5 and len(hp.get_config()["space"]) == 5

    class Recorder:
        def fit(self, x, *args, **kwargs):
            self.batch = next(iter(x))
            self.kwargs = kwargs

    images, batches = _batches(4)
    pairs = denoise.noisy_training_pairs(batches, "gaussian", 0.5, seed=0)
    for level in (0.0, 0.5):
        hp = kt.HyperParameters()
        hp.Fixed("train_noise_level", level)
        recorder = Recorder()
        hypermodel.fit(hp, recorder, pairs, epochs=3)
        pixels, clean = (t.numpy() for t in recorder.batch)
        assert recorder.kwargs == {"epochs": 3}
        np.testing.assert_array_equal(clean, images[:4])
        if level == 0.0:
            np.testing.assert_array_equal(pixels, clean * np.float32(255))
        else:
            assert np.abs(pixels / 255 - clean).mean() > 0.2


# --------------------------------------------------------------------------- verbs


def test_train_reports_psnr_and_ssim_of_noisy_and_denoised(trained):
    out, run = trained
    assert (run.path / "denoised_examples.png").is_file()
    assert set(run.metrics) == {"psnr_noisy", "psnr_denoised", "ssim_noisy", "ssim_denoised"}
    # Gaussian noise of deviation 0.5 on these images: about 9.3 dB.
    assert 8.0 < run.metrics["psnr_noisy"] < 11.0, run.metrics
    assert 0.0 < run.metrics["ssim_noisy"] < 1.0 and -1.0 < run.metrics["ssim_denoised"] < 1.0
    assert len(run.history["val_loss"]) == 2
    assert (run.config.noise, run.config.noise_level) == ("gaussian", 0.5)
    assert not list((out / "denoise").glob(".incomplete-*")), "work folder left behind"


def test_evaluate_takes_other_noise(trained):
    _, run = trained
    salt = run.evaluate(noise="salt_pepper", noise_level=0.2)
    assert salt["psnr_noisy"] != pytest.approx(run.metrics["psnr_noisy"], abs=0.1)
    clean = run.evaluate(noise="salt_pepper", noise_level=0.0)
    assert clean["psnr_noisy"] == denoise.PSNR_CAP_DB and clean["ssim_noisy"] == 1.0


def test_evaluate_refuses_flags_that_shape_the_model(trained, capsys):
    _, run = trained
    with pytest.raises(SystemExit) as info:
        cli.main(["denoise", "evaluate", "--model", str(run.path), "--image-size", "28"])
    assert info.value.code == 2
    assert "unrecognized arguments: --image-size" in capsys.readouterr().err
    with pytest.raises(settings.UsageError, match="shape the trained model"):
        run.evaluate(image_size=28)


def _write_png(path, image):
    tf.io.write_file(str(path), tf.io.encode_png(image))


def test_predict_writes_pngs_into_a_new_folder_and_overwrites_nothing(trained, tmp_path, capsys):
    out, run = trained
    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    noisy = rng.integers(0, 256, (20, 20, 1), dtype=np.uint8)
    _write_png(folder / "x.png", noisy)
    _write_png(folder / "sub" / "x.png", noisy[::-1])
    # A file named like an output, beside its input: it is not touched.
    (folder / "x.denoised.png").write_bytes(b"not ours")
    argv = ["denoise", "predict", "--model", str(run.path)]
    assert cli.main([*argv, str(folder / "x.png"), str(folder / "sub")]) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    assert [name for name, _ in lines] == [str(folder / "x.png"), str(folder / "sub" / "x.png")]
    written = [Path(path) for _, path in lines]
    # Two inputs named alike: two files, in one new folder under OUTPUT_DIR/denoise.
    assert [p.name for p in written] == ["x.denoised.png", "x-2.denoised.png"]
    assert written[0].parent == written[1].parent
    assert written[0].parent.parent == out / "denoise"
    assert written[0].parent.name.startswith("predictions-")
    assert (folder / "x.denoised.png").read_bytes() == b"not ours"
    expected = run.predict([folder / "x.png", noisy[::-1]])
    for path, result in zip(written, expected):
        np.testing.assert_array_equal(tf.io.decode_png(path.read_bytes()).numpy(), result["image"])
    # The same command again: another folder, the first one's files as they were.
    before = [p.read_bytes() for p in written]
    assert cli.main([*argv, str(folder / "x.png")]) == 0
    (again,) = [line.split("\t")[1] for line in capsys.readouterr().out.strip().splitlines()]
    assert Path(again).parent != written[0].parent
    assert [p.read_bytes() for p in written] == before
    # The image is the model's output for the decoded pixels, clipped and rounded.
    denoised = denoise.denoise_images(run.model, noisy[None])[0]
    np.testing.assert_allclose(expected[0]["image"] / 255, denoised, atol=0.5 / 255 + 1e-6)
    assert expected[0]["image"].shape == (16, 16, 1)


def test_predict_rejects_bad_inputs(trained, tmp_path, capsys):
    out, run = trained
    folders = set((out / "denoise").glob("predictions-*"))
    bad = tmp_path / "x.png"
    bad.write_text("not an image")
    assert cli.main(["denoise", "predict", "--model", str(run.path), str(bad)]) == 2
    assert "x.png: not a readable image" in capsys.readouterr().err
    missing = tmp_path / "none.png"
    assert cli.main(["denoise", "predict", "--model", str(run.path), str(missing)]) == 2
    assert "none.png: no such file or folder" in capsys.readouterr().err
    assert set((out / "denoise").glob("predictions-*")) == folders, "nothing to write"


def test_export_signatures_take_images_of_any_size(trained):
    out, run = trained
    path = run.export()
    card = " ".join((path.parent / "MODEL_CARD.md").read_text().split())
    assert "removes the one kind of corruption it was trained on" in card
    with pytest.raises(base.export.ExportError, match="never overwritten"):
        run.export(version=int(path.name))
    # The bytes signature resizes each image to the model's size to stack them; the pixel
    # signature leaves the resizing to the model: both give what the model gives.
    endpoints = denoise.serving_endpoints(run.model, run.config)
    image = np.random.default_rng(0).integers(0, 256, (30, 30, 1), dtype=np.uint8)
    expected = denoise.denoise_images(run.model, image[None])
    from_bytes, _ = endpoints["serving_default"]
    served = from_bytes(tf.constant([tf.io.encode_png(image).numpy()]))["denoised"]
    np.testing.assert_allclose(served.numpy(), expected, atol=1e-5)
    from_pixels, _ = endpoints["serve_pixels"]
    served = from_pixels(tf.constant(image[None], tf.float32))["denoised"]
    np.testing.assert_allclose(served.numpy(), expected, atol=1e-5)


def test_tune_tiny_search_then_retrain(tmp_path, capsys):
    argv = [
        "denoise",
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
    out = capsys.readouterr().out
    assert "train_noise_level" in out and "retraining the best" in out
    (run,) = _runs(tmp_path)
    config = json.loads((run / "config.json").read_text())
    assert config["train_noise_level"] is not None and config["noise_level"] == 0.5


def test_a_flat_folder_of_rgb_images_of_any_size_trains(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):
        side = 12 + 4 * (i % 3)
        _write_png(folder / f"p{i}.png", rng.integers(0, 256, (side, side, 3), dtype=np.uint8))
    argv = ["denoise", "train", *FAST, "--epochs", "1", "--channels", "3", "--data", str(folder)]
    assert cli.main([*argv, "--output-dir", str(tmp_path / "out")]) == 0
    (run,) = _runs(tmp_path / "out")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["data"]["source"] == f"unlabelled images in {folder}"
    assert metrics["data"]["class_names"] == []
    assert sum(metrics["data"]["num_examples"].values()) == 24
    assert keras.saving.load_model(run / "model.keras").output_shape == (None, 16, 16, 3)
    # Without classes there is nothing to classify: refused before any training.
    code = cli.main([*argv, "--classify", "--output-dir", str(tmp_path / "out2")])
    assert code == 2 and "no class subfolders" in capsys.readouterr().err
    assert not (tmp_path / "out2").exists()
    # A broken file is named by its own path.
    (folder / "p3.png").write_text("not an image")
    assert cli.main([*argv, "--output-dir", str(tmp_path / "out3")]) == 2
    assert f"Cannot read image {folder / 'p3.png'}" in capsys.readouterr().err


# --------------------------------------------------------------------------- stacked, classify


def _weights(model):
    return {w.path: keras.ops.convert_to_numpy(w).copy() for w in model.weights}


class _StageSnapshots(keras.callbacks.Callback):
    def __init__(self, autoencoder):
        super().__init__()
        self.autoencoder = autoencoder
        self.stages = []

    def on_train_begin(self, logs=None):
        self.before = _weights(self.autoencoder)

    def on_train_end(self, logs=None):
        self.stages.append((self.before, _weights(self.autoencoder)))


def test_stacked_pretraining_trains_one_pair_at_a_time_then_everything():
    config = denoise.Config(
        variant="stacked", image_size=8, hidden=16, code_size=4, depth=3, pretrain_epochs=1
    )
    model = denoise.build_model(config)
    images = np.random.default_rng(0).random((32, 8, 8, 1)).astype(np.float32)
    snapshots = _StageSnapshots(model)
    stages = denoise.pretrain_stacked(model, images, config, callbacks=[snapshots])
    assert [s["trains"] for s in stages] == [
        ["encoder_dense_1", "decoder_dense_1"],
        ["encoder_dense_2", "decoder_dense_2"],
        ["encoder_dense_3", "decoder_dense_3"],
    ]
    for k, (before, after) in enumerate(snapshots.stages, start=1):
        changed = {
            path.split("/")[0] for path in before if not np.array_equal(before[path], after[path])
        }
        assert changed == {f"encoder_dense_{k}", f"decoder_dense_{k}"}, (k, changed)
    # Afterwards nothing is left frozen: fine-tuning updates every weight.
    assert all(layer.trainable for layer in model._flatten_layers())
    assert len(model.trainable_weights) == len(model.weights) == 12
    before = _weights(model)
    model.fit(images * 255, images, epochs=1, batch_size=16, verbose=0)
    after = _weights(model)
    assert all(not np.array_equal(before[p], after[p]) for p in before)


def test_labelled_subset_takes_n_per_class():
    labels = np.array([0] * 5 + [1] * 2 + [2] * 9)
    subset = denoise.labelled_subset(labels, 3, seed=0)
    assert np.bincount(labels[subset]).tolist() == [3, 2, 3]
    np.testing.assert_array_equal(subset, denoise.labelled_subset(labels, 3, seed=0))
    assert not np.array_equal(subset, denoise.labelled_subset(labels, 3, seed=1))
    # The training pipeline reshuffles on every pass; the canonical order does not.
    images = np.random.default_rng(0).random((12, 4, 4, 1)).astype(np.float32)
    shuffled = (
        tf.data.Dataset.from_tensor_slices((images, np.arange(12) % 3))
        .shuffle(12, seed=0, reshuffle_each_iteration=True)
        .batch(5)
    )
    first, second = (denoise.image_arrays(shuffled, canonical=True) for _ in range(2))
    assert not np.array_equal(denoise.image_arrays(shuffled)[0], denoise.image_arrays(shuffled)[0])
    np.testing.assert_array_equal(first[0], second[0])
    assert first[1].tolist() == [0] * 4 + [1] * 4 + [2] * 4


@pytest.fixture
def fast_classifier(monkeypatch):
    """`--classify` with a short budget: every stage runs 2 epochs at a rate of 0.01."""
    recipe = dataclasses.replace(denoise.CLASSIFIER, epochs=2, patience=100, learning_rate=0.01)
    monkeypatch.setattr(denoise, "CLASSIFIER", recipe)
    return recipe


def test_stacked_run_with_classify_reports_both_stages(tmp_path, fast_classifier):
    config = denoise.Config(
        data="synthetic",
        variant="stacked",
        image_size=16,
        hidden=32,
        code_size=8,
        epochs=1,
        pretrain_epochs=1,
        batch_size=16,
        loss="mse",
        classify=True,
        labels_per_class=3,
        output_dir=str(tmp_path),
    )
    run = base.train(denoise, config, echo=print)
    metrics = json.loads((run.path / "metrics.json").read_text())
    # Two pretraining stages of one epoch each, then one epoch of fine-tuning.
    assert metrics["stage_boundaries"] == [1, 2] and metrics["epochs_run"] == 3
    assert metrics["history"]["val_loss"][:2] == [None, None]
    assert metrics["history"]["val_loss"][2] is not None
    stages = json.loads((run.path / "stages.json").read_text())
    pretraining = stages["stacked"]["pretraining"]
    assert [s["trains"] for s in pretraining] == [
        ["encoder_dense_1", "decoder_dense_1"],
        ["encoder_dense_2", "decoder_dense_2"],
    ]
    assert [len(s["loss"]) for s in pretraining] == [1, 1]
    assert metrics["history"]["loss"][:2] == [s["loss"][0] for s in pretraining]
    assert set(stages["stacked"]["test_after_pretraining"]) == set(metrics["test"])
    assert stages["stacked"]["fine_tuning_epochs"] == 1
    # Synthetic data: 4 classes, 3 labelled images each; 40 test images.
    classify = stages["classify"]
    assert classify["train_examples"] == 12 and classify["test_examples"] == 40
    for arm in ("pretrained", "scratch"):
        # Accuracies over the 40 test images: whole multiples of 1/40.
        correct = classify[f"{arm}_accuracy"] * 40
        assert correct == pytest.approx(round(correct), abs=1e-3)
        assert classify[arm]["epochs"] == [2, 2]
    assert classify["gain_points"] == pytest.approx(
        100 * (classify["pretrained_accuracy"] - classify["scratch_accuracy"]), abs=0.01
    )


def _comparison_setup():
    """A tiny synthetic Config for `compare_classifiers`, its datasets and an untrained model."""
    config = denoise.Config(
        data="synthetic",
        image_size=16,
        width=4,
        convs_per_stage=2,
        batch_size=16,
        labels_per_class=3,
        classify=True,
    )
    datasets = denoise.make_datasets(config, "train")
    config = dataclasses.replace(config, train_examples=datasets.num_examples["train"])
    keras.utils.set_random_seed(0)
    return config, datasets, denoise.build_model(config)


def test_classifier_comparison_probes_then_fine_tunes_against_a_fair_scratch_run(
    monkeypatch, fast_classifier
):
    config, datasets, model = _comparison_setup()
    before = [w.copy() for w in model.get_weights()]
    calls = []
    fit_stage = denoise._fit_stage

    def recording(classifier, train, validation, learning_rate, recipe, *args):
        encoder = classifier.get_layer("encoder")
        start = [w.copy() for w in encoder.get_weights()]
        ran = fit_stage(classifier, train, validation, learning_rate, recipe, *args)
        moved = any(not np.array_equal(a, b) for a, b in zip(start, encoder.get_weights()))
        head = classifier.get_layer("classifier_head")
        calls.append((classifier.name, ran, learning_rate, moved, train[0].copy(), head))
        return ran

    monkeypatch.setattr(denoise, "_fit_stage", recording)
    result = denoise.compare_classifiers(model, datasets, config)
    names = [c[0] for c in calls]
    assert names == ["pretrained_classifier"] * 2 + ["scratch_classifier"] * 2
    probe, tune, scratch, scratch_tune = calls
    # The probe trains the head on the frozen encoder, then everything fine-tunes at a tenth
    # of the rate; the baseline trains everything through the same two stages.
    assert probe[1:4] == (2, 0.01, False)
    assert tune[1] == 2 and tune[2] == pytest.approx(0.001) and tune[3]
    assert scratch[1:4] == (2, 0.01, True)
    assert scratch_tune[1] == 2 and scratch_tune[2] == pytest.approx(0.001) and scratch_tune[3]
    # The same labelled images for both arms, 3 per class, and the same head architecture.
    np.testing.assert_array_equal(probe[4], scratch[4])
    assert len(probe[4]) == 3 * len(datasets.class_names) == result["train_examples"]
    assert probe[5].count_params() == scratch[5].count_params()
    assert result["gain_points"] == pytest.approx(
        100 * (result["pretrained_accuracy"] - result["scratch_accuracy"]), abs=0.01
    )
    # The trained autoencoder is left as it was.
    for b, a in zip(before, model.get_weights()):
        np.testing.assert_array_equal(b, a)


def _benchmark_helper():
    """`benchmarks/denoise_classify.py`, the benchmark's comparison over draws and settings."""
    import importlib
    from pathlib import Path

    folder = str(Path(__file__).resolve().parents[2] / "benchmarks")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module("denoise_classify")


def test_benchmark_grid_lets_each_arm_keep_what_its_own_validation_prefers(monkeypatch):
    helper = _benchmark_helper()
    config, datasets, model = _comparison_setup()
    validation_size = len(denoise.image_arrays(datasets.clean.validation)[1])
    # On the validation images the pretrained arm prefers fine-tuning at the full rate with
    # dropout 0.6, the scratch arm a tenth of the rate with 0.3; the test accuracies would
    # prefer other settings, which must not sway the choice. No classifier is trained.
    preferred = {"pretrained": (1.0, 0.6), "scratch": (0.1, 0.3)}
    trained = []

    def fake(arm, autoencoder, cfg, train, validation, test, num_classes, seed, recipe, augment):
        assert len(validation[1]) == validation_size and augment is None
        trained.append((arm, seed, train[0].copy()))
        setting = (recipe.finetune_rate, recipe.dropout)
        return {
            "accuracy": 0.5 + recipe.dropout / 10 + (0.2 if arm == "scratch" else 0.0),
            "validation_accuracy": 0.9 if setting == preferred[arm] else 0.5,
            "probe_accuracy": 0.1,
        }

    monkeypatch.setattr(denoise, "train_classifier", fake)
    result = helper.compare_classifiers(
        model, datasets, config, draws=2, dropouts=(0.3, 0.6), finetune_rates=(1.0, 0.1)
    )
    # Every pair of rate and dropout is a trial, per arm and draw; each draw has its own seed
    # and labelled images, the same for both arms.
    assert [(arm, seed) for arm, seed, _ in trained] == (
        [("pretrained", 0)] * 4 + [("scratch", 0)] * 4 + [("pretrained", 1)] * 4
    ) + [("scratch", 1)] * 4
    np.testing.assert_array_equal(trained[0][2], trained[4][2])
    assert not np.array_equal(trained[0][2], trained[8][2])
    for draw in result["per_draw"]:
        assert (draw["pretrained_finetune_rate"], draw["pretrained_dropout"]) == (1.0, 0.6)
        assert (draw["scratch_finetune_rate"], draw["scratch_dropout"]) == (0.1, 0.3)
        assert [(t["finetune_rate"], t["dropout"]) for t in draw["pretrained_trials"]] == [
            (1.0, 0.3),
            (1.0, 0.6),
            (0.1, 0.3),
            (0.1, 0.6),
        ]
    assert result["pretrained_accuracy"] == pytest.approx(0.56)
    assert result["scratch_accuracy"] == pytest.approx(0.73)
    assert result["gain_points"] == pytest.approx(-17.0) == result["gain_points_min"]
    assert helper.chosen_settings(result, "scratch") == "0.3/0.1 0.3/0.1"


# --------------------------------------------------------------------------- real data


@pytest.mark.slow
def test_real_mnist_gains_at_least_8_db(shared_data, train_with_onednn):
    # Gaussian noise of deviation 0.5 and the MSE loss, the defaults (MSE once collapsed to
    # black outputs here); the BCE model's build is checked above. One epoch suffices (+8.8 dB):
    # the cosine decay runs its whole course over it.
    run = train_with_onednn(
        ["denoise", "train", "--data", str(shared_data / "mnist"), "--epochs", "1"]
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["data"]["num_examples"]["test"] == 2000
    test = metrics["test"]
    assert test["psnr_noisy"] == pytest.approx(9.38, abs=0.05), test
    assert test["psnr_denoised"] - test["psnr_noisy"] >= 8.0, test
    assert test["ssim_denoised"] > test["ssim_noisy"] + 0.3, test
