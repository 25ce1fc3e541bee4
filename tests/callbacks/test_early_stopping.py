"""EarlyStopping: scripted epoch logs (exact stop epoch, restored weights), gap, reuse, real fit."""

import keras
import numpy as np
import pytest

from i2dl_keras.callbacks import EarlyStopping, GeneralizationGapLogger


def marker_model():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.stop_training = False
    return model


def script(callback, model, logs_per_epoch):
    """Plays a training run: epoch e 'trains' the model to kernel = e, then ends the epoch.

    Returns the number of epochs run before the callback stopped training.
    """
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin()
    epochs = 0
    for epoch, logs in enumerate(logs_per_epoch):
        model.set_weights([np.full((1, 1), float(epoch), "float32"), np.zeros(1, "float32")])
        callback.on_epoch_end(epoch, dict(logs))
        epochs += 1
        if model.stop_training:
            break
    callback.on_train_end()
    return epochs


def kernel(model):
    return float(model.get_weights()[0][0, 0])


VAL = [1.0, 0.8, 0.7, 0.72, 0.69, 0.75, 0.76, 0.8, 0.9]


def test_stop_epoch_and_restored_weights_on_the_value():
    model = marker_model()
    # Best val_loss 0.69 at epoch 4; epochs 5 and 6 do not improve: patience 2 stops at 6.
    es = EarlyStopping(patience=2)
    assert script(es, model, [{"val_loss": v} for v in VAL]) == 7
    assert es.stopped_epoch == 6 and es.best_epoch == 4 and es.best == 0.69
    assert kernel(model) == 4.0  # the weights of epoch 4, not those of the last epoch (6)
    # min_delta = 0.02: 0.69 is no real improvement over 0.7, so epochs 3 and 4 count as waiting.
    es = EarlyStopping(patience=2, min_delta=0.02)
    assert script(es, model, [{"val_loss": v} for v in VAL]) == 5
    assert es.stopped_epoch == 4 and es.best_epoch == 2 and kernel(model) == 2.0
    # patience 0 stops at the first epoch without improvement.
    es = EarlyStopping(patience=0)
    assert script(es, model, [{"val_loss": v} for v in VAL]) == 4 and kernel(model) == 2.0
    # mode="max" on an accuracy: the best is the highest value.
    es = EarlyStopping(monitor="val_accuracy", mode="max", patience=2)
    accuracy = [0.5, 0.7, 0.65, 0.8, 0.79, 0.78, 0.9]
    assert script(es, model, [{"val_accuracy": a} for a in accuracy]) == 6
    assert es.best_epoch == 3 and kernel(model) == 3.0
    # restore_best_weights=False leaves the last epoch's weights.
    es = EarlyStopping(patience=2, restore_best_weights=False)
    script(es, model, [{"val_loss": v} for v in VAL])
    assert kernel(model) == 6.0


def test_restores_best_weights_when_epochs_run_out():
    model = marker_model()
    es = EarlyStopping(patience=5)
    assert script(es, model, [{"val_loss": v} for v in VAL[:6]]) == 6
    assert es.stopped_epoch is None and kernel(model) == 4.0


def test_warm_up_epochs_can_neither_stop_nor_be_restored():
    model = marker_model()
    # The CI failure this guards against: a tiny validation set scores a half-trained epoch 1
    # best by chance. With start_from_epoch=3, epochs 0-2 are not watched at all.
    noisy = [1.0, 0.3, 0.9, 0.8, 0.6, 0.5, 0.55, 0.7, 0.8]
    es = EarlyStopping(patience=2)
    assert script(es, model, [{"val_loss": v} for v in noisy]) == 4
    assert es.best_epoch == 1 and kernel(model) == 1.0
    es = EarlyStopping(patience=2, start_from_epoch=3)
    assert script(es, model, [{"val_loss": v} for v in noisy]) == 8
    assert es.best_epoch == 5 and es.stopped_epoch == 7 and kernel(model) == 5.0
    # A run shorter than the warm-up keeps its last weights.
    es = EarlyStopping(patience=0, start_from_epoch=5)
    assert script(es, model, [{"val_loss": v} for v in noisy[:3]]) == 3
    assert es.best_epoch is None and kernel(model) == 2.0


def test_gap_criterion_stops_where_the_gap_stops_shrinking():
    model = marker_model()
    # gap = val_loss - loss: 0.1, 0.05, 0.02 (smallest, epoch 2), 0.10, 0.25, ...
    # val_loss keeps improving up to epoch 3 (0.5), so the value criterion would go on.
    logs = [
        {"loss": 1.0, "val_loss": 1.1},
        {"loss": 0.8, "val_loss": 0.85},
        {"loss": 0.6, "val_loss": 0.62},
        {"loss": 0.4, "val_loss": 0.5},
        {"loss": 0.3, "val_loss": 0.55},
        {"loss": 0.2, "val_loss": 0.45},
        {"loss": 0.1, "val_loss": 0.6},
    ]
    es = EarlyStopping(patience=2, criterion="gap")
    assert script(es, model, logs) == 5
    assert es.stopped_epoch == 4
    np.testing.assert_allclose(es.best_gap, 0.02, atol=1e-12)
    # The restored weights are the best validation epoch's (3), not the smallest gap's (2).
    assert es.best_epoch == 3 and kernel(model) == 3.0
    # The value criterion with the same patience does not stop at all (val_loss improves at
    # epoch 5); the best weights (epoch 5) are restored when the epochs run out.
    es = EarlyStopping(patience=2, criterion="value")
    assert script(es, model, logs) == 7 and es.stopped_epoch is None and kernel(model) == 5.0
    # For a score the gap is train - val: accuracy 0.6/0.58, 0.7/0.69 (gap shrinks), 0.8/0.7.
    es = EarlyStopping(monitor="val_accuracy", mode="max", patience=0, criterion="gap")
    scores = [
        {"accuracy": 0.6, "val_accuracy": 0.58},
        {"accuracy": 0.7, "val_accuracy": 0.69},
        {"accuracy": 0.8, "val_accuracy": 0.7},
    ]
    assert script(es, model, scores) == 3 and es.best_epoch == 2 and kernel(model) == 2.0
    np.testing.assert_allclose(es.best_gap, 0.01, atol=1e-12)


def test_one_instance_serves_several_runs():
    model = marker_model()
    es = EarlyStopping(patience=2)
    assert script(es, model, [{"val_loss": v} for v in [0.5, 0.4, 0.45, 0.46]]) == 4
    # Every value of the second run is worse than the first run's best (0.4): without the reset
    # in on_train_begin it would stop at once and restore the first run's weights.
    second = [2.0, 1.5, 1.6, 1.0, 1.1, 1.2, 0.5]
    assert script(es, model, [{"val_loss": v} for v in second]) == 6
    assert es.stopped_epoch == 5 and es.best_epoch == 3 and es.best == 1.0
    assert kernel(model) == 3.0


def test_missing_validation_key_is_skipped_with_a_warning():
    model = marker_model()
    es = EarlyStopping(patience=0)
    with pytest.warns(UserWarning, match="never saw 'val_loss'"):
        assert script(es, model, [{"loss": 1.0}] * 3) == 3
    assert es.stopped_epoch is None
    # validation_freq=2: epochs without val_loss do not count.
    logs = [{"val_loss": 1.0}, {}, {"val_loss": 0.9}, {}, {"val_loss": 0.95}]
    es = EarlyStopping(patience=0)
    assert script(es, model, logs) == 5 and es.stopped_epoch == 4 and kernel(model) == 2.0


def test_real_fit_with_validation_data():
    """Training fits y = 2x from w = 0; the validation targets are y = x, so val_loss falls while
    w approaches 1 and rises after. With SGD(0.2) and one full batch per epoch,
    w_e = 2 (1 - (1 - 0.4 E[x^2])^(e + 1)): closest to 1 at epoch 3 (w = 0.96)."""
    x = np.linspace(-1.0, 1.0, 16, dtype="float32")[:, None]
    m2 = float(np.mean(x.astype(np.float64) ** 2))
    w = 2 * (1 - (1 - 0.4 * m2) ** np.arange(1, 31))
    expected_best = int(np.argmin(np.abs(w - 1)))
    assert expected_best == 3

    class Recorder(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.kernels = []

        def on_epoch_end(self, epoch, logs=None):
            self.kernels.append(float(self.model.get_weights()[0][0, 0]))

    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")]
    )
    model.compile(keras.optimizers.SGD(0.2), loss="mse")
    es, recorder, gap = EarlyStopping(patience=2), Recorder(), GeneralizationGapLogger()
    for _ in range(2):  # the same callback instances serve two fit calls
        model.set_weights([np.zeros((1, 1), "float32")])
        history = model.fit(
            x, 2 * x, validation_data=(x, x), batch_size=16, epochs=30, verbose=0,
            callbacks=[recorder, gap, es],
        )  # fmt: skip
        assert es.best_epoch == expected_best
        assert es.stopped_epoch == expected_best + 2
        assert len(history.history["loss"]) == expected_best + 3
        np.testing.assert_allclose(recorder.kernels, w[: expected_best + 3], rtol=1e-5)
        assert float(model.get_weights()[0][0, 0]) == recorder.kernels[expected_best]
        np.testing.assert_allclose(
            history.history["gap"],
            np.array(history.history["val_loss"]) - np.array(history.history["loss"]),
            rtol=0,
            atol=1e-12,
        )


def test_invalid_arguments():
    cases = [
        ({"patience": -1}, "patience"),
        ({"patience": 1.5}, "patience"),
        ({"min_delta": -0.1}, "min_delta"),
        ({"mode": "auto"}, "mode"),
        ({"criterion": "slope"}, "criterion"),
        ({"criterion": "gap", "monitor": "loss"}, "monitor"),
        ({"monitor": ""}, "monitor"),
        ({"start_from_epoch": -1}, "start_from_epoch"),
        ({"start_from_epoch": 2.0}, "start_from_epoch"),
    ]
    for kwargs, name in cases:
        with pytest.raises(ValueError, match=rf"Received: {name}="):
            EarlyStopping(**kwargs)
