"""The KerasTuner factory and the trials table."""

import keras
import keras_tuner as kt
import numpy as np
import pytest

from i2dl_keras import tuning


class _Tiny(kt.HyperModel):
    def build(self, hp):
        model = keras.Sequential(
            [
                keras.Input((2,)),
                keras.layers.Dense(hp.Choice("units", [1, 4]), "relu"),
                keras.layers.Dense(1),
            ]
        )
        model.compile(keras.optimizers.SGD(hp.Float("lr", 1e-3, 1e-1, sampling="log")), "mse")
        return model


def test_each_kind_builds_and_bad_budgets_fail(tmp_path):
    for kind, cls in (
        ("hyperband", kt.Hyperband),
        ("random", kt.RandomSearch),
        ("bayesian", kt.BayesianOptimization),
        ("grid", kt.GridSearch),
    ):
        tuner = tuning.make_tuner(kind, _Tiny(), directory=str(tmp_path), project_name=kind)
        assert isinstance(tuner, cls)
    with pytest.raises(ValueError, match="Received: tuner='annealing'"):
        tuning.make_tuner("annealing", _Tiny(), directory=str(tmp_path), project_name="x")
    with pytest.raises(ValueError, match="Received: max_trials=0"):
        tuning.make_tuner(
            "random", _Tiny(), max_trials=0, directory=str(tmp_path), project_name="y"
        )


def test_trials_table_lists_trials_best_first(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 2)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    tuner = tuning.make_tuner(
        "random",
        _Tiny(),
        max_trials=3,
        directory=str(tmp_path),
        project_name="t",
        objective="val_loss",
    )
    tuner.search(x, y, validation_data=(x, y), epochs=1, verbose=0)
    table = tuning.trials_table(tuner).splitlines()
    assert table[0].split()[:3] == ["trial", "score", "status"]
    assert "lr" in table[0] and "units" in table[0]
    scores = [float(line.split()[1]) for line in table[2:]]
    assert len(scores) == 3 and scores == sorted(scores)
