"""GeneralizationGapLogger: the gap in the epoch logs (History is checked in a real fit in
test_early_stopping.py::test_real_fit_with_validation_data)."""

import pytest

from i2dl_keras.callbacks import GeneralizationGapLogger


def test_adds_the_gap_to_the_epoch_logs():
    logger = GeneralizationGapLogger()
    logger.on_train_begin()
    logs = {"loss": 0.25, "val_loss": 0.75}
    logger.on_epoch_end(0, logs)
    assert logs == {"loss": 0.25, "val_loss": 0.75, "gap": 0.5}
    # Epochs without validation (validation_freq > 1) get no gap.
    logs = {"loss": 0.2}
    logger.on_epoch_end(1, logs)
    assert logs == {"loss": 0.2}
    logger.on_train_end()

    # Any metric; the default key is "<metric>_gap", and the sign is val - train.
    logger = GeneralizationGapLogger(metric="accuracy")
    logs = {"accuracy": 0.9, "val_accuracy": 0.75}
    logger.on_epoch_end(0, logs)
    assert logs["accuracy_gap"] == pytest.approx(-0.15, abs=1e-12)
    logger = GeneralizationGapLogger(name="overfit")
    logs = {"loss": 1.0, "val_loss": 1.5}
    logger.on_epoch_end(0, logs)
    assert logs["overfit"] == 0.5 and "gap" not in logs


def test_warns_when_no_epoch_had_validation():
    logger = GeneralizationGapLogger()
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 1.0})
    with pytest.warns(UserWarning, match="never saw both 'loss' and 'val_loss'"):
        logger.on_train_end()


def test_invalid_arguments():
    for kwargs, name in [
        ({"metric": "val_loss"}, "metric"),
        ({"metric": ""}, "metric"),
        ({"name": ""}, "name"),
    ]:
        with pytest.raises(ValueError, match=rf"Received: {name}="):
            GeneralizationGapLogger(**kwargs)
