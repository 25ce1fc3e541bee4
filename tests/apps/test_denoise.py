"""The denoising autoencoder end to end: noise statistics, every verb, variants, export."""

import dataclasses
import json
import os
import re
import subprocess
import sys
import textwrap

import keras
import keras_tuner as kt
import numpy as np
import pytest
import tensorflow as tf

from apps import base, cli, denoise
from i2dl_keras.metrics import psnr

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


def _last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    assert cli.main(["denoise", "train", *FAST, "--output-dir", str(out)]) == 0
    (run,) = _runs(out)
    return out, run


# --------------------------------------------------------------------------- noise


def _corrupt(images, noise, level, seed=(1, 2)):
    return denoise.corrupt(tf.constant(images), noise, level, tf.constant(seed, tf.int64)).numpy()


def test_gaussian_noise_has_the_asked_deviation_and_is_clipped():
    grey = np.full((16, 32, 32, 1), 0.5, np.float32)
    noisy = _corrupt(grey, "gaussian", 0.1)
    diff = noisy - grey
    # 16,384 draws: the sample mean is within 4 standard errors (0.1 / 128) of 0.
    assert abs(diff.mean()) < 0.004
    assert diff.std() == pytest.approx(0.1, rel=0.03)
    # Strong noise on black pixels: clipped to [0, 1], so about half the pixels stay at 0.
    noisy = _corrupt(np.zeros_like(grey), "gaussian", 0.5)
    assert noisy.min() == 0.0 and noisy.max() <= 1.0
    assert np.mean(noisy == 0.0) == pytest.approx(0.5, abs=0.02)
    # E[clip(0.5 Z, 0, 1)] = 0.5 (phi(0) - phi(2)) + P(Z > 2) = 0.19523 (phi: normal density);
    # the sample mean of 16,384 draws is within 0.006 (3 standard errors).
    assert noisy.mean() == pytest.approx(0.19523, abs=0.006)


@pytest.mark.parametrize("level", [0.1, 0.3])
def test_salt_pepper_hits_the_asked_fraction_with_fair_coins(level):
    grey = np.full((16, 32, 32, 1), 0.5, np.float32)
    noisy = _corrupt(grey, "salt_pepper", level)
    assert set(np.unique(noisy)) <= {0.0, 0.5, 1.0}
    hit = noisy != 0.5
    assert hit.mean() == pytest.approx(level, abs=0.015)
    assert np.mean(noisy[hit] == 1.0) == pytest.approx(0.5, abs=0.03)


def test_masking_zeroes_the_asked_fraction_and_keeps_the_rest():
    images = np.random.default_rng(0).uniform(0.2, 1.0, (16, 32, 32, 1)).astype(np.float32)
    noisy = _corrupt(images, "masking", 0.25)
    zeroed = noisy == 0.0
    assert zeroed.mean() == pytest.approx(0.25, abs=0.015)
    np.testing.assert_array_equal(noisy[~zeroed], images[~zeroed])


def test_noise_is_a_function_of_the_seed():
    images = np.full((2, 8, 8, 1), 0.5, np.float32)
    for noise in denoise.NOISES:
        a = _corrupt(images, noise, 0.3, (3, 4))
        np.testing.assert_array_equal(a, _corrupt(images, noise, 0.3, (3, 4)))
        assert not np.array_equal(a, _corrupt(images, noise, 0.3, (3, 5)))
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
        ({"classify_draws": 0}, "--classify-draws must be at least 1"),
        ({"convs_per_stage": 0}, "--convs-per-stage must be at least 1"),
        ({"classify_dropout": 1.0}, "--classify-dropout must be in [0, 1)"),
        ({"classify_dropouts": "0.5,1"}, "--classify-dropouts must be distinct rates in [0, 1)"),
        ({"classify_dropouts": "0.5,0.5"}, "--classify-dropouts must be distinct rates"),
        ({"classify_dropouts": "half"}, "got 'half'"),
        ({"classify_finetune_rates": "0.1,0"}, "--classify-finetune-rates must be one or more"),
        ({"classify_finetune_rates": "1.5"}, "distinct fractions in (0, 1]"),
        ({"classify_finetune_rates": ""}, "--classify-finetune-rates must be one or more"),
        ({"full_resolution_convs": -1}, "--full-resolution-convs must be 0 or more, got -1"),
    ],
)
def test_config_errors_name_the_flag(values, message):
    with pytest.raises(base.UsageError) as info:
        denoise.Config(**values).validate()
    assert message in str(info.value)


def test_every_variant_builds_an_image_to_image_model():
    x = np.random.default_rng(0).random((2, 16, 16, 1)).astype(np.float32)
    for variant in denoise.VARIANTS:
        config = denoise.Config(variant=variant, image_size=16, hidden=32, code_size=8, width=4)
        config.validate()
        model = denoise.build_model(config)
        assert model.output_shape == (None, 16, 16, 1), variant
        # The default MSE trains a linear output: what the app hands out is clipped to [0, 1].
        y = denoise.denoise_images(model, x)
        assert y.shape == x.shape and y.min() >= 0.0 and y.max() <= 1.0, variant
        bce = denoise.build_model(dataclasses.replace(config, loss="bce"))
        y = bce(x).numpy()
        assert y.min() >= 0.0 and y.max() <= 1.0, variant
        assert model.layers[1].name == "encoder", "no corruption layer: the pipeline corrupts"
    # MSE trains a linear output (a sigmoid stalls under MSE); the app clips what it serves.
    config = denoise.Config(image_size=16, width=4, loss="mse")
    decoder = denoise.build_model(config).get_layer("decoder")
    assert decoder.layers[-1].get_config()["activation"] == "linear"
    bce = denoise.build_model(dataclasses.replace(config, loss="bce")).get_layer("decoder")
    assert bce.layers[-1].get_config()["activation"] == "sigmoid"
    # The default on MNIST-sized images: a U-Net-shaped conv autoencoder, two 16-filter 3x3
    # convolutions at full resolution, then two stages of four with 16 and 32 filters,
    # mirrored, the decoder stages concatenating the encoder's feature map of their resolution.
    model = denoise.build_model(denoise.Config())
    assert model.count_params() == 99_777 <= 100_000
    code, *skips = model.get_layer("encoder").outputs
    assert tuple(code.shape) == (None, 7, 7, 32)
    assert [tuple(t.shape) for t in skips] == [(None, 14, 14, 16), (None, 28, 28, 16)]
    # Without the full-resolution convolutions the last skip is the image itself.
    model = denoise.build_model(denoise.Config(full_resolution_convs=0))
    assert model.count_params() == 92_977
    assert tuple(model.get_layer("encoder").outputs[-1].shape) == (None, 28, 28, 1)
    # The course's plain conv autoencoder is still one flag set away.
    plain = denoise.Config(
        width=20, kernel_size=5, convs_per_stage=1, skip_connections=False, full_resolution_convs=0
    )
    assert denoise.build_model(plain).count_params() == 81_121


def test_hypermodel_builds_and_trains_at_the_trial_noise_level():
    config = denoise.Config(image_size=16, channels=1)
    hypermodel = denoise.HyperModel(config)
    model = hypermodel.build(kt.HyperParameters())
    assert model.output_shape == (None, 16, 16, 1) and model.optimizer is not None

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
        noisy, clean = (t.numpy() for t in recorder.batch)
        assert recorder.kwargs == {"epochs": 3}
        np.testing.assert_array_equal(clean, images[:4])
        if level == 0.0:
            np.testing.assert_array_equal(noisy, clean)
        else:
            assert np.abs(noisy - clean).mean() > 0.2


# --------------------------------------------------------------------------- verbs


def test_train_writes_a_complete_run_folder(trained):
    out, run = trained
    for name in (
        "model.keras",
        "config.json",
        "metrics.json",
        "training_curves.png",
        "denoised_examples.png",
    ):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    test = metrics["test"]
    assert set(test) == {"psnr_noisy", "psnr_denoised", "ssim_noisy", "ssim_denoised"}
    # Gaussian noise of deviation 0.5 on these images: about 9.3 dB.
    assert 8.0 < test["psnr_noisy"] < 11.0, test
    assert 0.0 < test["ssim_noisy"] < 1.0 and -1.0 < test["ssim_denoised"] < 1.0
    assert metrics["epochs_run"] == 2 and len(metrics["history"]["val_loss"]) == 2
    config = json.loads((run / "config.json").read_text())
    assert config["noise"] == "gaussian" and config["noise_level"] == 0.5
    assert config["image_size"] == 16 and config["variant"] == "conv"
    assert not list((out / "denoise").glob(".incomplete-*")), "work folder left behind"


def test_evaluate_json_matches_training_and_takes_other_noise(trained, capsys):
    _, run = trained
    assert cli.main(["denoise", "evaluate", "--model", str(run), "--json"]) == 0
    metrics = _last_json(capsys)
    saved = json.loads((run / "metrics.json").read_text())["test"]
    # synthetic has its own test split: the same images, with the same fixed noise.
    for key, value in saved.items():
        assert metrics[key] == pytest.approx(value, abs=1e-6), key

    argv = ["denoise", "evaluate", "--model", str(run), "--json", "--noise", "salt_pepper"]
    assert cli.main([*argv, "--noise-level", "0.2"]) == 0
    salt = _last_json(capsys)
    assert salt["psnr_noisy"] != pytest.approx(metrics["psnr_noisy"], abs=0.1)
    assert cli.main([*argv, "--noise-level", "0"]) == 0
    clean = _last_json(capsys)
    assert clean["psnr_noisy"] == denoise.PSNR_CAP_DB and clean["ssim_noisy"] == 1.0


def test_evaluate_refuses_flags_that_shape_the_model(trained, capsys):
    _, run = trained
    with pytest.raises(SystemExit) as info:
        cli.main(["denoise", "evaluate", "--model", str(run), "--image-size", "28"])
    assert info.value.code == 2
    assert "unrecognized arguments: --image-size" in capsys.readouterr().err


def _write_png(path, image):
    tf.io.write_file(str(path), tf.io.encode_png(image))


def test_predict_writes_denoised_pngs_beside_the_inputs(trained, tmp_path, capsys):
    _, run = trained
    rng = np.random.default_rng(0)
    clean = np.where(np.indices((20, 20)).sum(0)[..., None] % 4 < 2, 200, 30).astype(np.uint8)
    noisy = np.clip(clean + rng.normal(0, 80, clean.shape), 0, 255).astype(np.uint8)
    folder = tmp_path / "imgs"
    folder.mkdir()
    _write_png(folder / "a.png", noisy)
    _write_png(tmp_path / "clean.png", clean)
    before = (folder / "a.png").read_bytes()
    pair = f"{folder / 'a.png'}={tmp_path / 'clean.png'}"
    assert cli.main(["denoise", "predict", "--model", str(run), pair]) == 0
    path, denoised_file, figure, score = (
        capsys.readouterr().out.strip().splitlines()[-1].split("\t")
    )
    assert path == str(folder / "a.png") and (folder / "a.png").read_bytes() == before
    assert denoised_file == str(folder / "a.denoised.png")
    assert figure == str(folder / "a.denoised-comparison.png") and (folder / figure).is_file()
    denoised = tf.io.decode_png((folder / "a.denoised.png").read_bytes()).numpy()
    assert denoised.shape == (16, 16, 1)
    model = keras.saving.load_model(run / "model.keras")
    expected = denoise.denoise_images(
        model, denoise.decode_pixels(tf.constant(before), 16, 1)[None]
    )[0]
    np.testing.assert_allclose(denoised / 255.0, expected, atol=0.5 / 255 + 1e-6)
    reference = denoise.decode_pixels(tf.constant(tf.io.encode_png(clean).numpy()), 16, 1)
    noisy_pixels = denoise.decode_pixels(tf.constant(before), 16, 1).numpy()
    words = score.split()
    assert words[0] == "PSNR" and words[2] == "->" and words[4] == "dB", score
    assert float(words[1]) == pytest.approx(float(psnr(noisy_pixels, reference)), abs=0.006)
    assert float(words[3]) == pytest.approx(float(psnr(expected, reference)), abs=0.006)

    # A folder: the outputs written beside its images are not read back as inputs.
    assert cli.main(["denoise", "predict", "--model", str(run), str(folder)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len([line for line in lines if line.startswith(str(folder))]) == 1


def test_predict_rejects_bad_inputs(trained, tmp_path, capsys):
    _, run = trained
    bad = tmp_path / "x.png"
    bad.write_text("not an image")
    assert cli.main(["denoise", "predict", "--model", str(run), str(bad)]) == 2
    assert "x.png: not a readable" in capsys.readouterr().err
    _write_png(tmp_path / "b.png", np.zeros((8, 8, 1), np.uint8))
    _write_png(tmp_path / "b.denoised.png", np.zeros((8, 8, 1), np.uint8))
    argv = ["denoise", "predict", "--model", str(run), str(tmp_path / "b.png")]
    assert cli.main([*argv, str(tmp_path / "b.denoised.png")]) == 2
    assert "is also an input" in capsys.readouterr().err
    assert cli.main([*argv[:-1], f"{tmp_path / 'b.png'}={tmp_path / 'none.png'}"]) == 2
    assert "none.png is not a file" in capsys.readouterr().err


def test_export_serves_png_bytes_in_a_fresh_process(trained, tmp_path):
    out, run = trained
    assert cli.main(["denoise", "export", "--model", str(run)]) == 0
    serving = out / "denoise" / "serving"
    assert sorted(p.name for p in serving.iterdir() if p.is_dir() and p.name.isdigit()) == ["1"]
    card = " ".join((serving / "MODEL_CARD.md").read_text().split())
    assert "removes the one kind of corruption it was trained on" in card
    assert cli.main(["denoise", "export", "--model", str(run), "--version", "1"]) == 2

    # A client that knows nothing of i2dl_keras sends PNG bytes of two sizes, and floats.
    rng = np.random.default_rng(0)
    pngs = [
        tf.io.encode_png(rng.integers(0, 256, (s, s, 1), dtype=np.uint8)).numpy() for s in (16, 30)
    ]
    pixels = rng.random((2, 16, 16, 1), dtype=np.float32)
    model = keras.saving.load_model(run / "model.keras")
    from_bytes = denoise.denoise_images(
        model, np.stack([denoise.decode_pixels(tf.constant(p), 16, 1) for p in pngs])
    )
    np.save(tmp_path / "pngs.npy", np.array(pngs, dtype=object), allow_pickle=True)
    np.save(tmp_path / "pixels.npy", pixels)
    files = {name: str(tmp_path / f"{name}.npy") for name in ("pngs", "pixels", "a", "b")}
    script = textwrap.dedent(f"""
        import sys, numpy as np, tensorflow as tf
        files = {files!r}
        loaded = tf.saved_model.load({str(serving / "1")!r})
        pngs = list(np.load(files["pngs"], allow_pickle=True))
        a = loaded.signatures["serving_default"](image_bytes=tf.constant(pngs))
        b = loaded.signatures["serve_pixels"](pixels=tf.constant(np.load(files["pixels"])))
        assert "i2dl_keras" not in sys.modules
        np.save(files["a"], a["denoised"].numpy())
        np.save(files["b"], b["denoised"].numpy())
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "a.npy"), from_bytes, atol=1e-5)
    np.testing.assert_allclose(
        np.load(tmp_path / "b.npy"), denoise.denoise_images(model, pixels), atol=1e-5
    )


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
    out = capsys.readouterr().out
    assert f"unlabelled images in {folder}" in out and "no class subfolders" in out
    (run,) = _runs(tmp_path / "out")
    metrics = json.loads((run / "metrics.json").read_text())
    assert sum(metrics["data"]["num_examples"].values()) == 24
    assert str(folder) in " ".join(metrics["data"]["notes"])
    assert keras.saving.load_model(run / "model.keras").output_shape == (None, 16, 16, 3)
    # Without classes there is nothing to classify: refused before any training.
    code = cli.main([*argv, "--classify", "--output-dir", str(tmp_path / "out2")])
    assert code == 2 and "--classify needs labelled data" in capsys.readouterr().err
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
    model.fit(images, images, epochs=1, batch_size=16, verbose=0)
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
    first, second = (denoise._arrays(shuffled, canonical=True) for _ in range(2))
    assert not np.array_equal(denoise._arrays(shuffled)[0], denoise._arrays(shuffled)[0])
    np.testing.assert_array_equal(first[0], second[0])
    assert first[1].tolist() == [0] * 4 + [1] * 4 + [2] * 4


def test_stacked_run_with_classify_reports_both_stages(tmp_path, capsys):
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
        classify_epochs=1,
        classify_dropouts="0.3,0.5",
        classify_finetune_rates="0.1,1",
        output_dir=str(tmp_path),
    )
    run = base.train(denoise, config, echo=print)
    out = capsys.readouterr().out
    chosen = re.search(
        r"chosen by validation accuracy, per draw: pretrained (.*); from scratch (.*)", out
    )
    settings = {f"{dropout}/{rate}" for dropout in ("0.3", "0.5") for rate in ("0.1", "1")}
    assert chosen and all(v in settings for g in chosen.groups() for v in g.split())
    assert "pretraining stage 2 trained encoder_dense_2 and decoder_dense_2 only" in out
    assert "pretrained encoder" in out and "from scratch" in out
    metrics = json.loads((run / "metrics.json").read_text())
    # Two pretraining stages of one epoch each, then one epoch of fine-tuning.
    assert metrics["stage_boundaries"] == [1, 2] and metrics["epochs_run"] == 3
    assert metrics["history"]["val_loss"][:2] == [None, None]
    assert metrics["history"]["val_loss"][2] is not None
    stages = json.loads((run / "stages.json").read_text())
    pretraining = stages["stacked"]["pretraining"]
    assert [len(s["loss"]) for s in pretraining] == [1, 1]
    assert set(stages["stacked"]["test_after_pretraining"]) == set(metrics["test"])
    classify = stages["classify"]
    assert classify["train_examples"] == 12 and classify["test_examples"] == 40
    for key in ("pretrained_accuracy", "scratch_accuracy"):
        assert 0.0 <= classify[key] <= 1.0


def _comparison_setup(**overrides):
    """A tiny synthetic Config for `compare_classifiers`, its datasets and an untrained model."""
    config = denoise.Config(
        data="synthetic",
        image_size=16,
        width=4,
        convs_per_stage=2,
        batch_size=16,
        labels_per_class=3,
        classify_draws=2,
        **overrides,
    )
    datasets = denoise.make_datasets(config, "train")
    config = dataclasses.replace(config, train_examples=datasets.num_examples["train"])
    keras.utils.set_random_seed(0)
    return config, datasets, denoise.build_model(config)


def test_classifier_comparison_probes_then_fine_tunes_against_a_fair_scratch_run(
    tmp_path, monkeypatch
):
    config, datasets, model = _comparison_setup(
        classify_epochs=2,
        classify_patience=100,  # no early stop: every stage runs its whole budget
        classify_learning_rate=0.01,
    )
    before = [w.copy() for w in model.get_weights()]
    calls = []
    train = denoise._train_classifier

    def recording(classifier, x, y, validation, epochs, learning_rate, config):
        encoder = classifier.get_layer("encoder")
        start = [w.copy() for w in encoder.get_weights()]
        ran = train(classifier, x, y, validation, epochs, learning_rate, config)
        moved = any(not np.array_equal(a, b) for a, b in zip(start, encoder.get_weights()))
        head = classifier.get_layer("classifier_head")
        calls.append((classifier.name, epochs, ran, learning_rate, moved, x.copy(), head))
        return ran

    monkeypatch.setattr(denoise, "_train_classifier", recording)
    result = denoise.compare_classifiers(model, datasets, config)
    names = [c[0] for c in calls]
    assert names == ["pretrained_classifier"] * 2 + ["scratch_classifier"] * 2 + names[:4]
    for draw in range(2):
        probe, tune, scratch, scratch_tune = calls[4 * draw : 4 * draw + 4]
        # The probe trains the head on the frozen encoder, then everything fine-tunes at a tenth
        # of the rate; the baseline trains everything through the same two stages.
        assert probe[1:5] == (2, 2, 0.01, False)
        assert tune[1:3] == (2, 2) and tune[3] == pytest.approx(0.001) and tune[4]
        assert scratch[1:5] == (2, 2, 0.01, True)
        assert scratch_tune[1:3] == (2, 2) and scratch_tune[3] == pytest.approx(0.001)
        assert scratch_tune[4]
        # The same labelled images for both arms, and the same head architecture.
        np.testing.assert_array_equal(probe[5], scratch[5])
        assert probe[6].count_params() == scratch[6].count_params()
    assert len(calls[0][5]) == 3 * len(datasets.class_names)
    assert not np.array_equal(calls[0][5], calls[4][5]), "each draw picks other images"
    assert result["draws"] == 2 and len(result["per_draw"]) == 2
    gains = [100 * (d["pretrained_accuracy"] - d["scratch_accuracy"]) for d in result["per_draw"]]
    assert result["gain_points"] == pytest.approx(np.mean(gains), abs=0.01)
    # The trained autoencoder is left as it was.
    for b, a in zip(before, model.get_weights()):
        np.testing.assert_array_equal(b, a)


def test_each_arm_keeps_the_head_dropout_its_own_validation_accuracy_prefers(monkeypatch):
    config, datasets, model = _comparison_setup(classify_epochs=1, classify_dropouts="0.2, 0.6,0.4")
    assert denoise.parse_dropouts(config.classify_dropouts) == [0.2, 0.6, 0.4]
    assert denoise.parse_dropouts("") == []
    validation_size = len(denoise._arrays(datasets.labelled.validation)[1])
    # Scores that depend on the arm, the head's dropout and which images are scored: on the
    # validation images the pretrained arm prefers 0.6 and the scratch arm 0.4 (its 0.2 ties
    # with 0.4 on the first draw, while fewer than 12 stages have trained: the rate listed first
    # wins); on the test images both prefer 0.2, which must not sway the choice.
    preferred = {"pretrained_classifier": 0.6, "scratch_classifier": 0.4}
    trained = []

    def score(classifier, x, y):
        rate = next(
            layer.rate for layer in classifier.layers if isinstance(layer, keras.layers.Dropout)
        )
        if len(y) != validation_size:
            return 1.0 - rate
        if classifier.name == "scratch_classifier" and rate == 0.2 and len(trained) < 12:
            return 0.9
        return 0.9 if rate == preferred[classifier.name] else 0.5

    train = denoise._train_classifier

    def recording(classifier, *args):
        trained.append(classifier.name)
        return train(classifier, *args)

    monkeypatch.setattr(denoise, "_accuracy", score)
    monkeypatch.setattr(denoise, "_train_classifier", recording)
    result = denoise.compare_classifiers(model, datasets, config)
    # Two stages per arm, rate and draw.
    assert trained == (["pretrained_classifier"] * 6 + ["scratch_classifier"] * 6) * 2
    assert result["dropouts"] == [0.2, 0.6, 0.4]
    first, second = result["per_draw"]
    assert [first["pretrained_dropout"], second["pretrained_dropout"]] == [0.6, 0.6]
    assert [first["scratch_dropout"], second["scratch_dropout"]] == [0.2, 0.4]
    for draw in (first, second):
        for arm in ("pretrained", "scratch"):
            trials = draw[f"{arm}_trials"]
            assert [t["dropout"] for t in trials] == [0.2, 0.6, 0.4]
            chosen = next(t for t in trials if t["dropout"] == draw[f"{arm}_dropout"])
            assert (
                draw[f"{arm}_accuracy"]
                == chosen["accuracy"]
                == pytest.approx(1 - chosen["dropout"])
            )
            assert draw[f"{arm}_validation_accuracy"] == 0.9
    assert result["pretrained_accuracy"] == pytest.approx(0.4)
    assert result["scratch_accuracy"] == pytest.approx((0.8 + 0.6) / 2)
    assert result["gain_points"] == pytest.approx(100 * (0.4 - 0.7))


def test_each_arm_keeps_the_fine_tuning_rate_its_own_validation_accuracy_prefers(monkeypatch):
    config, datasets, model = _comparison_setup(
        classify_epochs=1,
        classify_learning_rate=0.01,
        classify_dropouts="0.3,0.6",
        classify_finetune_rates="1, 0.1",
    )
    assert denoise.parse_finetune_rates(config.classify_finetune_rates) == [1.0, 0.1]
    validation_size = len(denoise._arrays(datasets.labelled.validation)[1])
    # On the validation images the pretrained arm prefers fine-tuning at the full rate with
    # dropout 0.6, the scratch arm a tenth of the rate with 0.3; on the test images both would
    # prefer the other rate, which must not sway the choice.
    preferred = {"pretrained_classifier": (0.01, 0.6), "scratch_classifier": (0.001, 0.3)}
    stages = []

    def setting(classifier):
        rate = float(keras.ops.convert_to_numpy(classifier.optimizer.learning_rate))
        dropout = next(
            layer.rate for layer in classifier.layers if isinstance(layer, keras.layers.Dropout)
        )
        return round(rate, 6), dropout

    def score(classifier, x, y):
        rate, dropout = setting(classifier)
        if len(y) != validation_size:
            return 0.9 if rate != preferred[classifier.name][0] else 0.1
        return 0.8 if (rate, dropout) == preferred[classifier.name] else 0.4

    train = denoise._train_classifier

    def recording(classifier, *args):
        ran = train(classifier, *args)
        stages.append((classifier.name, setting(classifier)))
        return ran

    monkeypatch.setattr(denoise, "_accuracy", score)
    monkeypatch.setattr(denoise, "_train_classifier", recording)
    result = denoise.compare_classifiers(model, datasets, config)
    assert result["finetune_rates"] == [1.0, 0.1] and result["dropouts"] == [0.3, 0.6]
    # Every pair is a trial of two stages: the probe at the full rate, then the fine-tuning
    # at its fraction of it; dropouts vary fastest.
    pairs = [(0.01, 0.3), (0.01, 0.6), (0.001, 0.3), (0.001, 0.6)]
    for arm in ("pretrained_classifier", "scratch_classifier"):
        ran = [s for name, s in stages[:16] if name == arm]
        assert ran[0::2] == [(0.01, d) for _, d in pairs]
        assert ran[1::2] == pairs
    for draw in result["per_draw"]:
        assert (draw["pretrained_finetune_rate"], draw["pretrained_dropout"]) == (1.0, 0.6)
        assert (draw["scratch_finetune_rate"], draw["scratch_dropout"]) == (0.1, 0.3)
        trials = draw["pretrained_trials"]
        assert [(t["finetune_rate"], t["dropout"]) for t in trials] == [
            (1.0, 0.3),
            (1.0, 0.6),
            (0.1, 0.3),
            (0.1, 0.6),
        ]
    assert result["pretrained_accuracy"] == pytest.approx(0.1)
    assert result["scratch_accuracy"] == pytest.approx(0.1)


def test_choosing_a_dropout_without_validation_images_is_refused():
    config = denoise.Config(data="synthetic", image_size=16, width=4, classify_dropouts="0.5,0.7")
    datasets = denoise.make_datasets(config, "train")
    datasets.labelled.validation = None
    with pytest.raises(base.UsageError, match="--classify-dropouts '0.5,0.7' .*: choosing among"):
        denoise.compare_classifiers(denoise.build_model(config), datasets, config)


# --------------------------------------------------------------------------- real data


@pytest.mark.slow
@pytest.mark.parametrize("loss, epochs", [("bce", 8), ("mse", 4)])
def test_real_mnist_gains_at_least_8_db(shared_data, tmp_path, loss, epochs):
    # Gaussian noise of deviation 0.5, the default; MSE once collapsed to black outputs here.
    argv = ["denoise", "train", "--data", str(shared_data / "mnist"), "--loss", loss]
    assert cli.main([*argv, "--epochs", str(epochs), "--output-dir", str(tmp_path)]) == 0
    (run,) = _runs(tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["data"]["num_examples"]["test"] == 2000
    test = metrics["test"]
    assert test["psnr_noisy"] == pytest.approx(9.38, abs=0.05), test
    assert test["psnr_denoised"] - test["psnr_noisy"] >= 8.0, test
    assert test["ssim_denoised"] > test["ssim_noisy"] + 0.3, test
