"""TextModel: a functional model of raw strings takes texts as lists and NumPy string arrays."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras.models.text_model import TextModel
from i2dl_keras.testing import run_export_test, run_model_saving_test, run_serialization_test

TEXTS = ["good good bad", "bad", "a good film", ""]
# Counts of [out-of-vocabulary, "good", "bad"] times the kernel [0, 1, -1]: #good - #bad.
SCORES = [[1.0], [-1.0], [1.0], [0.0]]


def _scorer() -> TextModel:
    text = keras.Input(shape=(), dtype="string", name="text")
    counts = keras.layers.TextVectorization(output_mode="count", vocabulary=["good", "bad"])(text)
    dense = keras.layers.Dense(1, use_bias=False, name="score")
    outputs = dense(counts)
    dense.kernel.assign([[0.0], [1.0], [-1.0]])
    model = TextModel(text, outputs, name="scorer")
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model


@pytest.mark.parametrize(
    "texts",
    [
        TEXTS,
        tuple(TEXTS),
        np.array(TEXTS),
        np.array([t.encode() for t in TEXTS]),
        np.array(TEXTS, dtype=object),
        tf.constant(TEXTS),
    ],
    ids=["list", "tuple", "numpy str", "numpy bytes", "numpy object", "tensor"],
)
def test_predict_takes_texts_as_users_hold_them(texts):
    np.testing.assert_allclose(_scorer().predict(texts, verbose=0), SCORES, atol=1e-6)


def test_evaluate_and_fit_take_a_list_of_strings():
    model = _scorer()
    targets = np.array(SCORES, "float32")
    assert model.evaluate(TEXTS, targets, verbose=0) == pytest.approx(0.0, abs=1e-10)
    history = model.fit(TEXTS, targets + 1.0, epochs=1, batch_size=4, verbose=0)
    assert history.history["loss"][0] == pytest.approx(1.0, abs=1e-6)
    # One SGD step on the mean squared error moved the kernel towards the new targets.
    assert not np.allclose(model.get_layer("score").kernel.numpy().ravel(), [0.0, 1.0, -1.0])


def test_datasets_pass_through():
    dataset = tf.data.Dataset.from_tensor_slices(TEXTS).batch(3)
    np.testing.assert_allclose(_scorer().predict(dataset, verbose=0), SCORES, atol=1e-6)


def test_config():
    revived = run_serialization_test(_scorer())
    assert isinstance(revived, TextModel) and revived.name == "scorer"


def test_saves_and_exports():
    model = _scorer()
    run_model_saving_test(model, np.array(TEXTS), atol=1e-6)
    run_export_test(model, np.array(TEXTS), atol=1e-6)


@pytest.mark.parametrize(
    "inputs",
    [
        lambda: [keras.Input((), dtype="string"), keras.Input((), dtype="string")],
        lambda: keras.Input((3,)),
    ],
    ids=["two inputs", "float input"],
)
def test_rejects_inputs_other_than_one_string(inputs):
    x = inputs()
    outputs = keras.layers.Identity()(x[0] if isinstance(x, list) else x)
    with pytest.raises(ValueError, match="must be a single string input.*Received: inputs="):
        TextModel(x, outputs)
