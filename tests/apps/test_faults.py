"""Faults a user can cause: each gives a one-line error or is survived, never a silent wrong
result, a lost file or a traceback. The shared mechanisms of `apps/base.py`, shown on digits."""

import json
import os
import shutil

import keras
import numpy as np
import pytest

from i2dl_keras.apps import base, cli, digits, settings

TINY = dict(data="synthetic", epochs=2, batch_size=16, image_size=16, width=4, augment=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return digits.train(output_dir=str(tmp_path_factory.mktemp("out")), **TINY)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_settings_are_usage_errors(value, capsys, tmp_path):
    argv = ["digits", "train", f"--learning-rate={value}", "--output-dir", str(tmp_path)]
    assert cli.main(argv) == 2
    assert "--learning-rate must be a finite number" in capsys.readouterr().err
    with pytest.raises(settings.UsageError, match="--dropout must be a finite number"):
        digits.train(dropout=float(value), output_dir=str(tmp_path))


def test_a_diverging_run_stops_and_keeps_nothing(tmp_path):
    with pytest.raises(base.TrainingDiverged, match="the loss became nan"):
        digits.train(learning_rate=1e30, output_dir=str(tmp_path), **TINY)
    assert not list((tmp_path / "digits").iterdir())


def test_predict_and_export_refuse_non_finite_outputs(trained, tmp_path):
    broken = digits.load(trained.path, output_dir=tmp_path)
    weights = broken.model.get_weights()
    broken.model.set_weights([np.full_like(w, np.nan) for w in weights])
    with pytest.raises(settings.UsageError, match="not finite"):
        broken.predict(np.zeros((1, 16, 16, 1), np.uint8))
    with pytest.raises(base.export.ExportError, match="not finite"):
        broken.export()
    assert not (tmp_path / "digits" / "serving" / "1").exists()


def test_evaluate_refuses_data_with_other_classes(trained):
    # The synthetic data has 4 named classes; the builtin digits have 10.
    with pytest.raises(settings.UsageError, match=r"has the classes \['0', '1'"):
        trained.evaluate(data="builtin")


def test_evaluate_refuses_same_count_other_names(trained, tmp_path):
    names = trained.data_class_names
    for i, name in enumerate(reversed(names)):  # same count, other names
        folder = tmp_path / "data" / f"x{name}"
        folder.mkdir(parents=True)
        pixels = np.full((16, 16), 40 * i, np.uint8)
        keras.utils.save_img(folder / "a.png", pixels[..., None], scale=False)
        keras.utils.save_img(folder / "b.png", pixels[..., None], scale=False)
    with pytest.raises(settings.UsageError, match="but the model was trained on"):
        trained.evaluate(data=str(tmp_path / "data"))


def test_load_refuses_another_apps_run(trained):
    from i2dl_keras.apps import sentiment

    with pytest.raises(settings.UsageError, match="is a run of the digits app"):
        base.load(sentiment, trained.path)


def test_damaged_files_are_named(trained, tmp_path, capsys):
    run = tmp_path / "digits" / "run-x"
    shutil.copytree(trained.path, run)
    (run / "config.json").write_text('{"image_size": "big"}')
    assert cli.main(["digits", "evaluate", "--model", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert "config.json: image_size expects int, got 'big'" in err and len(err.splitlines()) == 1
    (run / "config.json").write_text("{not json")
    assert cli.main(["digits", "evaluate", "--model", str(run)]) == 2
    assert "config.json: not valid JSON" in capsys.readouterr().err
    (run / "model.keras").write_bytes((trained.path / "model.keras").read_bytes()[:100])
    (run / "config.json").write_text("{}")
    assert cli.main(["digits", "evaluate", "--model", str(run)]) == 2
    err = capsys.readouterr().err
    assert "model.keras: not a readable .keras model (the file is damaged" in err


def test_export_writes_where_the_run_lies_not_where_its_config_says(trained, tmp_path):
    run = tmp_path / "here" / "digits" / "run-x"
    shutil.copytree(trained.path, run)
    config = json.loads((run / "config.json").read_text())
    config["output_dir"] = str(tmp_path / "elsewhere")
    (run / "config.json").write_text(json.dumps(config))
    assert cli.main(["digits", "export", "--model", str(run)]) == 0
    assert (tmp_path / "here" / "digits" / "serving" / "1").is_dir()
    assert not (tmp_path / "elsewhere").exists()
    argv = ["digits", "export", "--model", str(run), "--output-dir", str(tmp_path / "o")]
    assert cli.main(argv) == 0
    assert (tmp_path / "o" / "digits" / "serving" / "1").is_dir()


def _interrupted(tmp_path, epochs_done):
    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == epochs_done:
                raise KeyboardInterrupt

    config = digits.Config(output_dir=str(tmp_path), patience=10, **{**TINY, "epochs": 4})
    with pytest.raises(KeyboardInterrupt):
        base.train(digits, config, echo=lambda s: None, extra_callbacks=[Stop()])
    (work,) = (tmp_path / "digits").glob(".incomplete-*")
    return config, work / "backup"


def test_a_half_written_checkpoint_falls_back_to_the_one_before(tmp_path):
    config, backup = _interrupted(tmp_path, 2)
    latest = backup / "latest.weights.h5"
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])
    said, trained = [], []
    counter = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: trained.append(e))
    run = base.train(digits, config, echo=said.append, extra_callbacks=[counter])
    assert any("using the one before" in s for s in said)
    assert trained == [1, 2, 3]  # epoch 2's checkpoint was lost: training resumed after epoch 1
    assert len(run.history["loss"]) == 4


def test_a_damaged_checkpoint_is_moved_aside_and_training_starts_afresh(tmp_path):
    config, backup = _interrupted(tmp_path, 1)
    for path in backup.iterdir():
        path.write_bytes(b"\0" * 10)
    said = []
    run = base.train(digits, config, echo=said.append)
    assert any("damaged" in s for s in said)
    assert len(run.history["loss"]) == 4
    (aside,) = run.path.glob("backup-damaged-*")  # kept in the run folder
    assert (aside / "latest.weights.h5").read_bytes() == b"\0" * 10


def test_the_same_run_twice_at_once_is_refused(tmp_path):
    import fcntl

    config, backup = _interrupted(tmp_path, 1)
    with open(backup.parent / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(settings.UsageError, match="already training"):
            base.train(digits, config, echo=lambda s: None)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_an_unwritable_output_folder_is_one_line(capsys):
    # Nobody, root included, can create folders in /proc.
    assert cli.main(["digits", "train", "--output-dir", "/proc/i2dl-test", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "cannot write to /proc/i2dl-test/digits" in err and len(err.strip().splitlines()) == 1


def test_an_output_path_that_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    argv = ["digits", "train", "--output-dir", str(tmp_path / "file"), "--epochs", "1"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "cannot write to" in err and "Traceback" not in err


def test_overfit_batches_is_the_courses_sanity_check(tmp_path):
    run = digits.train(
        output_dir=str(tmp_path),
        **{**TINY, "epochs": 25, "width": 8, "dropout": 0.0},
        overfit_batches=1,
        learning_rate=1e-2,
    )
    stages = json.loads((run.path / "stages.json").read_text())
    assert stages["passed"], stages["verdict"]
    first, last = stages["overfit_batches_loss"]
    assert last < 0.1 * first and len(run.history["loss"]) == 25  # no early stopping
    # A model that cannot learn (learning rate ~0) fails the check instead.
    stuck = digits.train(output_dir=str(tmp_path), **TINY, overfit_batches=1, learning_rate=1e-9)
    assert not json.loads((stuck.path / "stages.json").read_text())["passed"]
