"""The transfer-learning app: what each stage may change, resuming, weights sources, top-k
outputs (the app contract common to every app is in `test_api.py`)."""

import dataclasses
import json
import warnings

import keras
import keras_tuner as kt
import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras.apps import base, cli, settings, transfer
from i2dl_keras.data import tfds_source
from i2dl_keras.models import backbone_units
from i2dl_keras.optimizers import LayerwiseAdam

# MobileNetV2 at its smallest: 32x32 inputs, width 0.35, random weights.
MOBILENET = dict(
    data="synthetic",
    backbone="mobilenet_v2",
    image_size=32,
    alpha=0.35,
    weights="none",
    batch_size=16,
    patience=10,
)
# The fastest backbone, for the tests about the training loop rather than the network.
SMALL = dict(
    data="synthetic",
    backbone="small_cnn",
    image_size=16,
    weights="none",
    batch_size=16,
    patience=10,
    augment=False,
)
# With unfreeze=2 blocks: MobileNetV2's last 1x1 conv and its last inverted-residual block.
UNFROZEN = {"Conv_1", "block_16_expand", "block_16_depthwise", "block_16_project"}
VGG16_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
SYNTHETIC_CLASSES = ["horizontal", "vertical", "diagonal", "square"]


def _runs(root):
    return sorted(p for p in (root / "transfer").glob("run-*") if p.is_dir())


class WeightRecorder(keras.callbacks.Callback):
    """Copies every weight (by path) and the trainable flags when each `fit` begins and ends."""

    def __init__(self):
        super().__init__()
        self.fits = []

    def _snapshot(self):
        return {v.path: np.array(v.numpy()) for v in self.model.weights}

    def on_train_begin(self, logs=None):
        trainable = {v.path for v in self.model.trainable_weights}
        self.fits.append({"begin": self._snapshot(), "trainable": trainable})

    def on_train_end(self, logs=None):
        self.fits[-1]["end"] = self._snapshot()


def _changed_layers(before, after):
    return {p.split("/")[0] for p in before if not np.array_equal(before[p], after[p])}


@pytest.fixture(scope="module")
def staged():
    """Both stages on MobileNetV2 (augmented batches), recorded fit by fit."""
    config = transfer.Config(
        **MOBILENET, head_epochs=2, epochs=2, unfreeze=2, fine_tune_lr=1e-2, num_classes=4
    )
    datasets = transfer.make_datasets(config, "train")
    model = transfer.build_model(config)
    recorder = WeightRecorder()
    # With the optimizer building that a run's callbacks do first.
    callbacks = [base.BuildOptimizer(), recorder]
    result = transfer.train_stages(
        model, datasets.train, datasets.validation, config, callbacks, report=None
    )
    return model, datasets, recorder, result


def test_stage_one_trains_only_the_head(staged):
    _, _, recorder, _ = staged
    stage1 = recorder.fits[0]
    assert {p.split("/")[0] for p in stage1["trainable"]} == {"head_classifier"}
    assert _changed_layers(stage1["begin"], stage1["end"]) == {"head_classifier"}


def test_stage_two_changes_only_the_unfrozen_layers(staged):
    _, _, recorder, _ = staged
    assert len(recorder.fits) == 2
    stage2 = recorder.fits[1]
    assert {p.split("/")[0] for p in stage2["trainable"]} == UNFROZEN | {"head_classifier"}
    assert _changed_layers(stage2["begin"], stage2["end"]) == UNFROZEN | {"head_classifier"}
    # Stage 2 starts from where stage 1 ended.
    for path, value in recorder.fits[0]["end"].items():
        np.testing.assert_array_equal(stage2["begin"][path], value, err_msg=path)


def test_batchnorm_statistics_stay_fixed(staged):
    model, _, recorder, _ = staged
    first, last = recorder.fits[0]["begin"], recorder.fits[-1]["end"]
    stats = [p for p in first if "moving_mean" in p or "moving_variance" in p]
    assert len(stats) > 50
    for path in stats:
        np.testing.assert_array_equal(first[path], last[path], err_msg=path)
    layers = transfer.backbone_of(model).layers
    bn = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bn and not any(layer.trainable for layer in bn)


def test_fit_result_reports_each_stage(staged):
    model, datasets, _, result = staged
    assert result.stage_boundaries == [2] and len(result.history["val_loss"]) == 4
    assert [s["stage"].split(" (")[0] for s in result.stages] == ["stage 1", "stage 2"]
    assert [s["epochs_run"] for s in result.stages] == [2, 2]
    assert "top 2 blocks = 4 layers" in result.stages[1]["stage"]
    # The last report is the validation metrics of the final model.
    final = model.evaluate(datasets.validation, return_dict=True, verbose=0)
    assert result.stages[1]["validation"] == pytest.approx(final, abs=1e-5)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Both stages on the small CNN backbone (fast), with augmentation, through the Python API."""
    out = tmp_path_factory.mktemp("out")
    return transfer.train(
        **{**SMALL, "augment": True},
        head_epochs=2,
        epochs=2,
        unfreeze=1,
        fine_tune_lr=1e-3,
        output_dir=str(out),
    )


def test_train_records_both_stages(trained):
    run = trained
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert set(run.metrics) == {"accuracy", "loss"}, "top-5 only with 5 or more classes"
    assert metrics["stage_boundaries"] == [2]
    assert len(run.history["val_accuracy"]) == 4
    stages = json.loads((run.path / "stages.json").read_text())
    assert [s["stage"].split(" (")[0] for s in stages] == ["stage 1", "stage 2"]
    # Early stopping restores each stage's best epoch, which the report then measures.
    losses = run.history["val_loss"]
    for stage, epochs in zip(stages, (losses[:2], losses[2:])):
        assert stage["validation"]["loss"] == pytest.approx(min(epochs), abs=1e-4)
    assert run.config.class_names == SYNTHETIC_CLASSES and run.config.num_classes == 4
    assert run.class_names == SYNTHETIC_CLASSES


def test_evaluate_refuses_data_with_other_classes(trained, capsys):
    argv = ["transfer", "evaluate", "--model", str(trained.path), "--classes", "square,diagonal"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"{['square', 'diagonal']}, but the model was trained on {SYNTHETIC_CLASSES}" in err


def test_evaluate_reports_top5_with_five_classes_or_more():
    config = transfer.Config(**SMALL, num_classes=6)
    model = transfer.build_model(config)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (12, 16, 16, 3)).astype("float32")
    labels = np.arange(12) % 6
    metrics = transfer.evaluate_model(
        model, tf.data.Dataset.from_tensor_slices((images, labels)).batch(4), config
    )
    assert list(metrics) == ["accuracy", "top5_accuracy", "loss"]
    probs = model.predict(images, verbose=0)
    top5 = np.argsort(-probs, axis=1)[:, :5]
    assert metrics["top5_accuracy"] == pytest.approx(
        np.mean([y in t for y, t in zip(labels, top5)])
    )
    assert metrics["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == labels))


def test_predict_prints_the_top_classes(trained, tmp_path, capsys):
    run = trained
    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    images = {}
    for name, shape in (("a.png", (20, 20, 3)), ("b.png", (50, 30, 1))):
        images[name] = rng.integers(0, 256, shape, dtype=np.uint8)
        tf.io.write_file(str(tmp_path / "imgs" / name), tf.io.encode_png(images[name]))
    assert cli.main(["transfer", "predict", "--model", str(run.path), str(tmp_path / "imgs")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()[-2:]
    for line, name in zip(lines, ("a.png", "b.png")):
        fields = line.split("\t")
        assert fields[0].endswith(name) and len(fields) == 1 + 2 * 3
        # The model takes the decoded pixels as they are, grey or colour, any size.
        probs = run.model(images[name][None], training=False).numpy()[0]
        best = np.argsort(-probs, kind="stable")[:3]
        assert fields[1::2] == [SYNTHETIC_CLASSES[i] for i in best]
        np.testing.assert_allclose([float(p) for p in fields[2::2]], probs[best], atol=1e-4)


def test_describe_predictions_ranks_the_structured_results(trained):
    results = [
        {"input": name, "probabilities": dict(zip(SYNTHETIC_CLASSES, probs))}
        for name, probs in (("x", [0.1, 0.2, 0.3, 0.4]), ("y", [0.5, 0.0, 0.0, 0.5]))
    ]
    lines = transfer.describe_predictions(trained, results)
    assert lines == [
        "x\tsquare\t0.4000\tdiagonal\t0.3000\tvertical\t0.2000",
        # Ties keep the class-id order.
        "y\thorizontal\t0.5000\tsquare\t0.5000\tvertical\t0.0000",
    ]


def test_predict_takes_grey_and_colour_images_together(trained):
    rng = np.random.default_rng(4)
    shapes = ((20, 20, 3), (24, 24, 1), (28, 28, 3))
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in shapes]
    # One `model.predict` per shape, in this order: colour, grey, colour again. The retraced
    # predict function no longer knows the number of channels when the last one comes.
    results = trained.predict(images)
    for image, result in zip(images, results):
        expected = trained.model(image[None], training=False).numpy()[0]
        got = [result["probabilities"][name] for name in trained.class_names]
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_predict_rejects_a_non_image(trained, tmp_path, capsys):
    bad = tmp_path / "x.jpg"
    bad.write_text("not an image")
    assert cli.main(["transfer", "predict", "--model", str(trained.path), str(bad)]) == 2
    assert "x.jpg: not a readable" in capsys.readouterr().err


def test_export_serves_the_top_classes(trained):
    run = trained
    version = run.export()
    # A client sends PNG bytes of two sizes; the model's own answers on the same pixels.
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (s, s, 3), dtype=np.uint8) for s in (16, 45)]
    pngs = [tf.io.encode_png(image).numpy() for image in images]
    expected = np.concatenate([run.model(image[None], training=False) for image in images])
    loaded = tf.saved_model.load(str(version))
    served = loaded.signatures["serving_default"](image_bytes=tf.constant(pngs))
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-5)
    top = np.argsort(-expected, axis=1, kind="stable")[:, :3]
    np.testing.assert_array_equal(served["top_k_class_ids"].numpy(), top)
    np.testing.assert_allclose(
        served["top_k_probabilities"].numpy(), np.take_along_axis(expected, top, 1), atol=1e-5
    )
    assert [c.decode() for c in served["classes"].numpy()] == [
        SYNTHETIC_CLASSES[i] for i in expected.argmax(-1)
    ]
    # The pixel signature takes float 0-255 pixels of any size; the model resizes them.
    pixels = rng.uniform(0, 255, (2, 40, 24, 3)).astype("float32")
    by_pixels = loaded.signatures["serve_pixels"](pixels=tf.constant(pixels))
    np.testing.assert_allclose(
        by_pixels["probabilities"].numpy(), run.model(pixels, training=False), atol=1e-5
    )


def test_export_tflite_takes_pixels_of_the_model_size(trained):
    path = trained.export("tflite")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        interpreter = tf.lite.Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner("serving_default")
    assert list(runner.get_input_details()["inputs"]["shape"]) == [1, 16, 16, 3]
    pixels = np.random.default_rng(1).uniform(0, 255, (3, 16, 16, 3)).astype("float32")
    got = np.concatenate([runner(inputs=x[None])["output_0"] for x in pixels])
    np.testing.assert_allclose(got, trained.model(pixels, training=False), atol=1e-5)


def _same_weights(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))


def test_weights_file_is_loaded(tmp_path):
    keras.utils.set_random_seed(1)
    written = transfer.build_backbone(transfer.Config(**SMALL))
    written.save_weights(tmp_path / "random.weights.h5")
    keras.utils.set_random_seed(2)
    assert not _same_weights(transfer.build_backbone(transfer.Config(**SMALL)), written)
    config = transfer.Config(**{**SMALL, "weights": str(tmp_path / "random.weights.h5")})
    config.validate()
    assert _same_weights(transfer.build_backbone(config), written)


def test_weights_file_of_another_backbone_is_a_usage_error(tmp_path):
    small = transfer.build_backbone(transfer.Config(**SMALL))
    small.save_weights(tmp_path / "small.weights.h5")
    config = transfer.Config(**{**MOBILENET, "weights": str(tmp_path / "small.weights.h5")})
    with pytest.raises(settings.UsageError, match="--weights .*small.weights.h5: Cannot load"):
        transfer.build_backbone(config)


def test_offline_imagenet_fails_fast_naming_the_file(tmp_path, monkeypatch, capsys):
    # An empty Keras cache, and a download host that does not answer.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(tfds_source, "host_reachable", lambda host, port, timeout=3.0: False)
    argv = ["transfer", "train", "--data", "synthetic", "--backbone", "vgg16"]
    argv += ["--image-size", "32", "--output-dir", str(tmp_path / "out")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("i2dl: error: --weights imagenet: ")
    target = tmp_path / "keras_home" / "models" / VGG16_FILE
    assert f"place it as {target}; or pass the file as --weights FILE" in err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--backbone", "small_cnn", "--weights", "imagenet"], "no ImageNet weights"),
        (["--alpha", "0.6"], "exist for alpha 0.35, 0.5, 0.75, 1.0, 1.3, 1.4. Received: alpha=0.6"),
        (["--weights", "nowhere.weights.h5"], "--weights nowhere.weights.h5: no such file"),
        (["--image-size", "16"], "--image-size must be at least 32"),
        (["--unfreeze", "0", "--head-epochs", "0"], "trains nothing"),
        (["--lr-layer-decay", "1.5"], "--lr-layer-decay must be in (0, 1]"),
        (["--classes", "square"], "--classes square: keep at least two classes"),
        (["--classes", "square,3"], None),
        (["--pretrain-classes", "0,0"], "--pretrain-classes 0,0: names a class twice"),
        (["--color-jitter", "--no-augment"], "--color-jitter changes training images"),
        (
            ["--weights", "none", "--image-size", "32", "--classes", "a,b"],
            "--classes: synthetic",
        ),
    ],
)
def test_bad_settings_are_one_line_errors(flags, message, tmp_path, capsys):
    argv = ["transfer", "train", "--data", "synthetic", *flags, "--output-dir", str(tmp_path)]
    if message is None:
        # "3" is the id of "square": the library finds the duplicate once names are resolved.
        argv += ["--weights", "none", "--image-size", "32"]
        message = "A class is named twice"
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_few_labels_are_tested_on_held_out_examples_of_the_whole_source():
    # scikit-learn's digits have no test split: it is held out before the labels are picked.
    config = transfer.Config(
        **{**SMALL, "data": "builtin"}, classes=["0", "1"], labels_per_class=5, test_fraction=0.2
    )
    datasets = transfer.make_datasets(config, "train")
    counts = datasets.num_examples
    assert counts["train"] + counts["validation"] == 10
    # 20% of the 1,797 digits are held out (359), of which the zeros and ones are kept.
    test_labels = np.concatenate([y.numpy() for _, y in datasets.test])
    assert counts["test"] == len(test_labels) and 60 <= counts["test"] <= 85
    assert set(test_labels.tolist()) == {0, 1}
    assert datasets.class_names == ["0", "1"]


def test_hypermodel_builds_from_default_hyperparameters():
    hypermodel = transfer.HyperModel(transfer.Config(**SMALL, num_classes=3))
    model = hypermodel.build(kt.HyperParameters())
    assert model.output_shape == (None, 3)
    assert not transfer.backbone_of(model).trainable
    # The defaults of the search space: no hidden layer, the smallest head learning rate.
    head = [layer.name for layer in model.get_layer(transfer.CLASSIFIER).layers]
    assert "head_classifier" in head and "head_dense" not in head
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(1e-4)


def test_tune_tiny_search_then_retrain(tmp_path):
    argv = ["transfer", "tune", "--data", "synthetic", "--backbone", "small_cnn"]
    argv += ["--image-size", "16", "--weights", "none", "--batch-size", "16", "--no-augment"]
    argv += ["--head-epochs", "1", "--epochs", "1", "--tuner", "random", "--max-trials", "1"]
    argv += ["--max-epochs", "2", "--output-dir", str(tmp_path)]
    assert cli.main(argv) == 0
    (run,) = _runs(tmp_path)
    assert len(json.loads((run / "stages.json").read_text())) == 2
    # The retrained run uses the trial's hyperparameters, inside the search space.
    config = json.loads((run / "config.json").read_text())
    assert 1 <= config["unfreeze"] <= 6 and 1e-6 <= config["fine_tune_lr"] <= 1e-4
    assert config["head_width"] in (0, 64, 256) and 1e-4 <= config["learning_rate"] <= 1e-2
    (trial,) = (tmp_path / "transfer" / "tuning").glob("random-*/trial_*/trial.json")
    values = json.loads(trial.read_text())["hyperparameters"]["values"]
    assert values["unfreeze"] == config["unfreeze"]
    assert values["fine_tune_lr"] == pytest.approx(config["fine_tune_lr"])


class _Epochs(keras.callbacks.Callback):
    """Records the logs of every epoch run, and interrupts after `stop_after` of them."""

    def __init__(self, stop_after=None):
        super().__init__()
        self.stop_after = stop_after
        self.logs = []

    def on_epoch_end(self, epoch, logs=None):
        self.logs.append(dict(logs))
        if len(self.logs) == self.stop_after:
            raise KeyboardInterrupt


def test_interrupted_fine_tuning_resumes_after_stage_one(tmp_path):
    # With discriminative rates too: their optimizer is saved with the model.
    config = transfer.Config(
        **SMALL, head_epochs=2, epochs=2, unfreeze=2, lr_layer_decay=0.5, output_dir=str(tmp_path)
    )
    first = _Epochs(stop_after=3)
    with pytest.raises(KeyboardInterrupt):
        base.train(transfer, config, echo=lambda s: None, extra_callbacks=[first])
    (work,) = (tmp_path / "transfer").glob(".incomplete-*")
    assert (work / "backup" / "stages" / transfer.STAGE1_RECORD).is_file()

    second = _Epochs()
    run = base.train(transfer, config, echo=lambda s: None, extra_callbacks=[second])
    assert len(second.logs) == 1, "stage 2 trains only its missing epoch"
    metrics = json.loads((run.path / "metrics.json").read_text())
    # Stage 1's two epochs come from its record, then stage 2's epoch run after the interruption.
    assert len(metrics["history"]["loss"]) == 3 and metrics["stage_boundaries"] == [2]
    assert metrics["history"]["loss"][:2] == [log["loss"] for log in first.logs[:2]]
    assert metrics["history"]["loss"][2] == pytest.approx(second.logs[0]["loss"])
    assert not work.exists() and not (run.path / "backup").exists()
    stages = json.loads((run.path / "stages.json").read_text())
    assert [s["stage"].split(" (")[0] for s in stages] == ["stage 1", "stage 2"]
    assert [s["epochs_run"] for s in stages] == [2, 2], "stage 2: one epoch before, one after"
    assert "x0.5 per block down" in stages[1]["stage"]
    loaded = keras.saving.load_model(run.path / "model.keras")
    optimizer = loaded.optimizer
    assert isinstance(optimizer, LayerwiseAdam)
    assert sorted(set(optimizer.multipliers.values())) == [0.5, 1.0]
    # The factors name variables of the model, inside its nested classifier's backbone.
    backbone = {v.path for v in transfer.backbone_of(loaded).trainable_variables}
    assert set(optimizer.multipliers) == backbone


def test_interrupted_head_training_resumes_within_stage_one(tmp_path):
    config = transfer.Config(**SMALL, head_epochs=3, epochs=1, unfreeze=1, output_dir=str(tmp_path))
    first = _Epochs(stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        base.train(transfer, config, echo=lambda s: None, extra_callbacks=[first])
    second = _Epochs()
    run = base.train(transfer, config, echo=lambda s: None, extra_callbacks=[second])
    assert len(second.logs) == 2, "stage 1's last epoch, then stage 2's"
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert metrics["stage_boundaries"] == [3]
    history = metrics["history"]["loss"]
    assert len(history) == 4 and history[:2] == [log["loss"] for log in first.logs]
    assert history[2:] == pytest.approx([log["loss"] for log in second.logs])
    stages = json.loads((run.path / "stages.json").read_text())
    assert [s["epochs_run"] for s in stages] == [3, 1]


def test_pretrain_on_a_source_then_transfer(tmp_path):
    argv = ["transfer", "train", "--data", "synthetic", "--backbone", "small_cnn"]
    argv += ["--image-size", "16", "--weights", "none", "--batch-size", "16", "--no-augment"]
    argv += ["--classes", "square,diagonal", "--labels-per-class", "10"]
    argv += ["--pretrain-on", "synthetic", "--pretrain-classes", "horizontal,vertical"]
    argv += ["--pretrain-epochs", "2", "--head-epochs", "2", "--unfreeze", "0"]
    assert cli.main([*argv, "--output-dir", str(tmp_path)]) == 0
    (run,) = _runs(tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["data"]["class_names"] == ["square", "diagonal"]
    counts = metrics["data"]["num_examples"]
    assert counts["train"] + counts["validation"] == 20
    # With --unfreeze 0 the target model's backbone is exactly the pretrained one...
    model = keras.saving.load_model(run / "model.keras")
    config = transfer.Config(**{**SMALL, "weights": str(run / transfer.PRETRAINED_FILE)})
    pretrained = transfer.build_backbone(config)
    assert _same_weights(transfer.backbone_of(model), pretrained)
    # ...and pretraining changed it from its initial weights.
    keras.utils.set_random_seed(0)
    assert not _same_weights(pretrained, transfer.build_backbone(transfer.Config(**SMALL)))


@pytest.mark.slow
@pytest.mark.parametrize("backbone", sorted(transfer.BACKBONES))
def test_every_backbone_builds_saves_and_loads(backbone, tmp_path):
    config = transfer.Config(**{**MOBILENET, "backbone": backbone}, num_classes=3)
    model = transfer.build_model(config)
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded(images), model(images), atol=1e-5)
    assert len(backbone_units(transfer.backbone_of(model))) >= 2


@pytest.mark.slow
def test_real_mnist_transfer_from_digits_0_4_to_5_9(shared_data, train_with_onednn):
    argv = ["transfer", "train", "--data", str(shared_data / "mnist"), "--backbone", "small_cnn"]
    argv += ["--image-size", "28", "--weights", "none", "--no-flip", "--batch-size", "32"]
    argv += ["--head-pool", "flatten", "--patience", "15"]
    argv += ["--classes", "5,6,7,8,9", "--labels-per-class", "20"]
    argv += ["--pretrain-on", str(shared_data / "mnist"), "--pretrain-classes", "0,1,2,3,4"]
    argv += ["--pretrain-epochs", "3", "--head-epochs", "30", "--epochs", "20"]
    argv += ["--unfreeze", "-1", "--fine-tune-lr", "1e-4", "--learning-rate", "3e-3"]
    # Only 10 validation images: the warm-up keeps early stopping from keeping a half-trained
    # early epoch of the fresh head whose validation loss is lowest by chance.
    argv += ["--min-epochs", "10"]
    run = train_with_onednn(argv)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["data"]["class_names"] == ["5", "6", "7", "8", "9"]
    assert metrics["test"]["accuracy"] >= 0.90, metrics["test"]
    assert (run / transfer.PRETRAINED_FILE).is_file()


def test_color_jitter_changes_colours_within_its_ranges(tmp_path):
    # Photos of one colour, RGB (200, 150, 100): flips, rotations and zooms (reflecting at the
    # borders) leave them uniform, so what changes is the colour jitter alone.
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(20):
            image = np.broadcast_to(np.array([200, 150, 100], np.uint8), (20, 20, 3))
            tf.io.write_file(str(tmp_path / name / f"{i}.png"), tf.io.encode_png(image))
    colours = {}
    for jitter in (False, True):
        settings = {**SMALL, "data": str(tmp_path), "batch_size": 64, "augment": True}
        config = transfer.Config(**settings, color_jitter=jitter)
        x, _ = next(iter(transfer.make_datasets(config, "train").train))
        x = x.numpy()
        assert np.abs(x - x[:, :1, :1]).max() < 0.05  # still one colour each
        colours[jitter] = x[:, 0, 0]
    np.testing.assert_allclose(colours[False], [[200, 150, 100]] * len(colours[False]), atol=0.05)
    r, g, b = colours[True].T
    # Brightness shifts every channel by one d (up to 0.2 * 255 = 51); saturation keeps the
    # largest channel (the value) and the hue, and scales (r - b) / r by 2/3 to 1.5.
    assert np.abs(r - 200).max() <= 51.1 and (r - 200).min() < -15 and (r - 200).max() > 15
    np.testing.assert_allclose((r - g) / (r - b), 0.5, atol=1e-3)
    ratio = (r - b) / 100.0
    assert ratio.min() >= 2 / 3 - 1e-3 and ratio.max() <= 1.5 + 1e-3
    assert ratio.min() < 0.9 and ratio.max() > 1.1


def test_ten_crop_evaluation_averages_the_ten_crops():
    config = transfer.Config(**SMALL, num_classes=6, ten_crop=True)
    model = transfer.build_model(config)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (12, 16, 16, 3)).astype("float32")
    labels = np.arange(12) % 6
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    metrics = transfer.evaluate_model(model, dataset, config)
    assert list(metrics) == ["accuracy", "top5_accuracy", "loss"]
    # Crops of round(0.9 * 16) = 14 pixels: rows and columns start at 0 or 2, the centre at 1;
    # then the same five mirrored.
    crops = [images[:, r : r + 14, c : c + 14] for r, c in ((0, 0), (0, 2), (2, 0), (2, 2), (1, 1))]
    crops += [crop[:, :, ::-1] for crop in crops]
    probs = np.mean([model.predict(crop, verbose=0) for crop in crops], axis=0)
    assert metrics["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == labels), abs=1e-6)
    top5 = np.argsort(-probs, axis=1)[:, :5]
    assert metrics["top5_accuracy"] == pytest.approx(
        np.mean([y in t for y, t in zip(labels, top5)]), abs=1e-6
    )
    assert metrics["loss"] == pytest.approx(
        -np.mean(np.log(probs[np.arange(12), labels])), abs=1e-5
    )
    plain = transfer.evaluate_model(model, dataset, dataclasses.replace(config, ten_crop=False))
    assert abs(plain["loss"] - metrics["loss"]) > 1e-5


def test_evaluate_ten_crop_flag(trained):
    cropped = trained.evaluate(ten_crop=True)
    assert set(cropped) >= {"accuracy", "loss"}
    # The synthetic data has a test split: the run's own metrics are on the same images.
    assert abs(cropped["loss"] - trained.metrics["loss"]) > 1e-5, "--ten-crop did not reach it"
