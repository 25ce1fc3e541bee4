"""The digit recognizer end to end: every verb on synthetic data, resume, tuning, export."""

import dataclasses
import json
import os
import textwrap

import keras
import keras_tuner as kt
import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras.apps import base, cli, digits

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
    "--no-augment",
]


def _runs(root):
    return sorted(p for p in (root / "digits").glob("run-*") if p.is_dir())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    assert cli.main(["digits", "train", *FAST, "--output-dir", str(out)]) == 0
    (run,) = _runs(out)
    return out, run


def test_train_writes_a_complete_run_folder(trained):
    out, run = trained
    for name in (
        "model.keras",
        "config.json",
        "metrics.json",
        "training_curves.png",
        "confusion_matrix.png",
        "misclassified.png",
    ):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["test"]) == {"accuracy", "loss"}
    assert metrics["epochs_run"] == 2 and len(metrics["history"]["val_loss"]) == 2
    config = json.loads((run / "config.json").read_text())
    assert config["data"] == "synthetic" and config["image_size"] == 16
    assert config["num_classes"] == len(metrics["data"]["class_names"])
    # The class names are the data's, kept in the run's config for predict and evaluate.
    assert config["class_names"] == metrics["data"]["class_names"]
    assert not list((out / "digits").glob(".incomplete-*")), "work folder left behind"


def test_second_train_never_overwrites(trained, tmp_path):
    out, run = trained
    before = (run / "model.keras").read_bytes()
    assert cli.main(["digits", "train", *FAST, "--output-dir", str(out)]) == 0
    assert len(_runs(out)) == 2
    assert (run / "model.keras").read_bytes() == before


def test_evaluate_json_is_the_last_line(trained, capsys):
    _, run = trained
    assert cli.main(["digits", "evaluate", "--model", str(run), "--json"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    metrics = json.loads(last)
    assert set(metrics) == {"accuracy", "loss"}
    saved = json.loads((run / "metrics.json").read_text())["test"]
    # synthetic has a test split of its own, so evaluate sees exactly the test set train saw.
    assert metrics["accuracy"] == pytest.approx(saved["accuracy"], abs=1e-6)


def test_predict_prints_label_and_probability(trained, tmp_path, capsys):
    _, run = trained
    image = np.zeros((20, 20, 1), np.uint8)
    image[4:16, 9:11] = 255
    (tmp_path / "imgs").mkdir()
    tf.io.write_file(str(tmp_path / "imgs" / "a.png"), tf.io.encode_png(image))
    tf.io.write_file(str(tmp_path / "imgs" / "b.png"), tf.io.encode_png(255 - image))
    assert (
        cli.main(["digits", "predict", "--model", str(run / "model.keras"), str(tmp_path / "imgs")])
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()[-2:]
    names = json.loads((run / "config.json").read_text())["class_names"]
    for line in lines:
        path, label, prob = line.split("\t")
        assert path.endswith(".png") and label in names
        assert 0.0 < float(prob) <= 1.0


def test_predict_rejects_a_non_image(trained, tmp_path, capsys):
    _, run = trained
    bad = tmp_path / "x.png"
    bad.write_text("not an image")
    assert cli.main(["digits", "predict", "--model", str(run), str(bad)]) == 2
    assert "x.png: not a readable" in capsys.readouterr().err


def test_export_serves_png_bytes_in_a_fresh_process(trained, tmp_path, fresh_python):
    out, run = trained
    assert cli.main(["digits", "export", "--model", str(run)]) == 0
    assert cli.main(["digits", "export", "--model", str(run)]) == 0
    serving = out / "digits" / "serving"
    assert sorted(p.name for p in serving.iterdir() if p.name.isdigit()) == ["1", "2"]
    code = cli.main(["digits", "export", "--model", str(run), "--version", "1"])
    assert code == 2, "an existing version must not be overwritten"

    # A client process that knows nothing of i2dl_keras sends PNG bytes of two sizes.
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (s, s, 1), dtype=np.uint8) for s in (16, 30)]
    pngs = [tf.io.encode_png(im).numpy() for im in images]
    # The SavedModel gives what the Keras model gives on the decoded pixels of each image.
    model = keras.saving.load_model(run / "model.keras")
    expected = np.stack([model.predict(im[None], verbose=0)[0] for im in images])
    np.save(tmp_path / "pngs.npy", np.array(pngs, dtype=object), allow_pickle=True)
    # The first lines of the export's own check script (i2dl_keras/export.py): both fork from
    # one template process that ran them (tests/conftest.py).
    script = textwrap.dedent(f"""
        import base64, json, sys
        import numpy as np
        import tensorflow as tf
        pngs = np.load({str(tmp_path / "pngs.npy")!r}, allow_pickle=True)
        sig = tf.saved_model.load({str(serving / "2")!r}).signatures["serving_default"]
        out = sig(image_bytes=tf.constant(list(pngs)))
        assert "i2dl_keras" not in sys.modules
        np.save({str(tmp_path / "served.npy")!r}, out["probabilities"].numpy())
        np.save({str(tmp_path / "classes.npy")!r}, out["classes"].numpy())
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = fresh_python(
        ["-c", script], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "served.npy"), expected, atol=1e-5)
    names = json.loads((run / "config.json").read_text())["class_names"]
    classes = [c.decode() for c in np.load(tmp_path / "classes.npy", allow_pickle=True)]
    assert classes == [names[i] for i in expected.argmax(-1)]


class _StopAfter(keras.callbacks.Callback):
    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise KeyboardInterrupt


def test_interrupted_training_resumes(tmp_path):
    config = digits.Config(
        data="synthetic",
        epochs=4,
        batch_size=16,
        image_size=16,
        width=8,
        augment=False,
        patience=10,
        output_dir=str(tmp_path),
    )
    built_at_start, in_graph = [], []
    look = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: built_at_start.append(look.model.optimizer.built)
    )

    def creator(next_creator, **kwargs):
        if not tf.executing_eagerly():
            in_graph.append(kwargs.get("name"))
        return next_creator(**kwargs)

    with pytest.raises(KeyboardInterrupt), tf.variable_creator_scope(creator):
        base.train(digits, config, echo=lambda s: None, extra_callbacks=[look, _StopAfter(2)])
    # The optimizer was built before the first step was traced: Keras would create its
    # variables in that trace, which then runs twice. Only the compiled metrics' are created
    # there still.
    assert built_at_start == [True]
    assert set(in_graph) <= {"total", "count"}, in_graph
    assert not _runs(tmp_path)
    (work,) = (tmp_path / "digits").glob(".incomplete-*")
    assert any((work / "backup").iterdir())

    said, trained = [], []
    counter = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: trained.append(epoch))
    run = base.train(digits, config, echo=said.append, extra_callbacks=[counter]).path
    assert any("resuming" in s for s in said)
    assert trained == [2, 3], "the resumed run trains only the two missing epochs"
    metrics = json.loads((run / "metrics.json").read_text())
    # The history covers the epochs before the interruption too.
    assert metrics["epochs_run"] == 4 and len(metrics["history"]["val_loss"]) == 4
    assert not work.exists()


def test_hypermodel_builds_from_default_hyperparameters():
    hypermodel = digits.HyperModel(digits.Config(image_size=16))
    model = hypermodel.build(kt.HyperParameters())
    assert model.output_shape == (None, 10)
    # The default hyperparameters are the first of each choice (width 16, dropout 0).
    assert model.count_params() < digits.build_model(digits.Config(image_size=16)).count_params()


def test_tune_tiny_search_then_retrain(tmp_path, capsys):
    argv = [
        "digits",
        "tune",
        *FAST,
        "--epochs",
        "1",
        "--tuner",
        "random",
        "--max-trials",
        "2",
        "--max-epochs",
        "1",
        "--output-dir",
        str(tmp_path),
    ]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "trial" in out and "score" in out and "retraining the best" in out
    assert len(_runs(tmp_path)) == 1
    # Rerunning resumes the finished search instead of starting new trials.
    assert cli.main(argv) == 0
    trials = list((tmp_path / "digits" / "tuning").glob("random-*/trial_*"))
    assert len(trials) == 2


def test_lenet5_variant_trains(tmp_path):
    config = digits.Config(
        data="synthetic",
        epochs=1,
        batch_size=16,
        image_size=32,
        model="lenet5",
        augment=True,
        output_dir=str(tmp_path),
    )
    run = base.train(digits, config, echo=lambda s: None)
    assert json.loads((run.path / "config.json").read_text())["model"] == "lenet5"
    assert run.model.get_layer("lenet5").output_shape == (None, len(run.class_names))


@pytest.mark.slow
def test_real_mnist_reaches_98_percent(shared_data, train_with_onednn):
    # 7 epochs: 98.75% (the default's 99.2% takes longer).
    run = train_with_onednn(
        ["digits", "train", "--data", str(shared_data / "mnist"), "--epochs", "7"]
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["data"]["num_examples"]["test"] == 2000
    assert metrics["test"]["accuracy"] >= 0.98, metrics["test"]


def test_predict_writes_a_table_and_never_replaces_one(trained, tmp_path, capsys):
    import csv

    _, run = trained
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(5):
        tf.io.write_file(
            str(folder / f"{i}.png"), tf.io.encode_png(np.full((20, 20, 1), 40 * i, np.uint8))
        )
    table = tmp_path / "preds.csv"
    argv = ["digits", "predict", "--model", str(run), str(folder), "--output", str(table)]
    assert cli.main([*argv, "--batch-size", "2"]) == 0
    names = json.loads((run / "config.json").read_text())["class_names"]
    with table.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["input"] for r in rows] == [str(folder / f"{i}.png") for i in range(5)]
    for row in rows:
        assert row["label"] in names
        probabilities = [float(row[f"p_{n}"]) for n in names]
        assert names[int(np.argmax(probabilities))] == row["label"]
    before = table.read_bytes()
    assert cli.main(argv) == 2
    assert "exists; predict never replaces a file" in capsys.readouterr().err
    assert table.read_bytes() == before
    lines = tmp_path / "preds.jsonl"
    assert cli.main([*argv[:-1], str(lines)]) == 0
    first = json.loads(lines.read_text().splitlines()[0])
    assert first["label"] == rows[0]["label"] and set(first["probabilities"]) == set(names)


def _uniform_image_folder(root, pixel, channels, per_class=10, size=20):
    """Two classes of `per_class` PNGs, every pixel `pixel` (a grey level or an RGB triple)."""
    image = np.broadcast_to(np.asarray(pixel, np.uint8), (size, size, channels))
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            tf.io.write_file(str(root / name / f"{i}.png"), tf.io.encode_png(image))
    return root


def test_color_jitter_reaches_the_training_batches(tmp_path):
    data = _uniform_image_folder(tmp_path / "grey", 100, 1)
    centres = {}
    for jitter in (False, True):
        config = digits.Config(data=str(data), image_size=16, batch_size=32, color_jitter=jitter)
        x, _ = next(iter(digits.make_datasets(config, "train").train))
        # The warps keep the centre inside the image, so without jitter it stays at 100.
        centres[jitter] = x.numpy()[:, 7:9, 7:9, 0]
    np.testing.assert_allclose(centres[False], 100.0, atol=1e-3)
    jittered = centres[True]
    assert jittered.min() >= 0.0 and jittered.max() <= 255.0
    # One brightness and contrast change per image: the centre moves, by a different amount
    # in each image.
    assert np.abs(jittered - 100.0).max() > 10.0 and jittered[:, 0, 0].std() > 5.0


def test_color_jitter_needs_augment(tmp_path, capsys):
    argv = ["digits", "train", *FAST, "--color-jitter", "--output-dir", str(tmp_path)]
    assert cli.main(argv) == 2
    assert "--color-jitter changes training images: it needs --augment" in capsys.readouterr().err


def test_five_crop_evaluation_averages_the_five_crops():
    config = digits.Config(image_size=16, width=8, num_classes=3, class_names=["a", "b", "c"])
    model = digits.build_model(config)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (6, 16, 16, 1)).astype("float32")
    labels = np.arange(6) % 3
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    plain = digits.evaluate_model(model, dataset, config)
    cropped = digits.evaluate_model(model, dataset, dataclasses.replace(config, five_crop=True))
    # Crops of round(0.9 * 16) = 14 pixels: rows and columns start at 0 or 2, the centre at 1;
    # no mirror images for digits.
    starts = ((0, 0), (0, 2), (2, 0), (2, 2), (1, 1))
    probs = np.mean(
        [model.predict(images[:, r : r + 14, c : c + 14], verbose=0) for r, c in starts], axis=0
    )
    assert cropped["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == labels), abs=1e-6)
    loss = -np.mean(np.log(probs[np.arange(6), labels]))
    assert cropped["loss"] == pytest.approx(loss, abs=1e-5)
    assert abs(cropped["loss"] - plain["loss"]) > 1e-5


def test_evaluate_five_crop_flag(trained, capsys):
    _, run = trained
    assert cli.main(["digits", "evaluate", "--model", str(run), "--five-crop", "--json"]) == 0
    cropped = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    saved = json.loads((run / "metrics.json").read_text())["test"]
    assert set(cropped) == {"accuracy", "loss"}
    assert abs(cropped["loss"] - saved["loss"]) > 1e-5, "--five-crop did not reach evaluate"
