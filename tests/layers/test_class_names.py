"""ClassNames: a classifier's class names travel inside its model file."""

import keras
import numpy as np
import pytest

from i2dl_keras.layers import ClassNames
from i2dl_keras.testing import run_model_saving_test, run_serialization_test


def _classifier(names):
    inputs = keras.Input((4,))
    probs = keras.layers.Dense(len(names), activation="softmax")(inputs)
    return keras.Model(inputs, ClassNames(names)(probs))


def test_config():
    revived = run_serialization_test(ClassNames(["cat", "dog"], name="labels"))
    assert revived.class_names == ["cat", "dog"]


def test_passes_scores_through():
    scores = np.array([[0.2, 0.8]], "float32")
    np.testing.assert_array_equal(np.asarray(ClassNames(["a", "b"])(scores)), scores)


def test_of_finds_names_in_nested_models():
    inner = _classifier(["x", "y", "z"])
    outer = keras.Sequential([keras.Input((4,)), inner])
    assert ClassNames.of(outer) == ["x", "y", "z"]
    assert ClassNames.of(keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])) is None


def test_names_survive_saving(tmp_path):
    model = _classifier(["seven", "nine"])
    run_model_saving_test(model, np.ones((2, 4), "float32"))
    model.save(tmp_path / "m.keras")
    assert ClassNames.of(keras.saving.load_model(tmp_path / "m.keras")) == ["seven", "nine"]


@pytest.mark.parametrize("names", [[], ["a", ""], ["a", "a"], "ab", [1, 2]])
def test_rejects_bad_names(names):
    with pytest.raises(ValueError, match="Received: class_names="):
        ClassNames(names)


def test_count_must_match_the_scores():
    with pytest.raises(ValueError, match="3 names, but the scores have 2"):
        ClassNames(["a", "b", "c"])(keras.Input((2,)))
