"""LiteRT/TFLite exports: float and int8 flatbuffers that reproduce the Keras model, checked."""

import dataclasses
import json
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras import export
from i2dl_keras.apps import cli, digits
from i2dl_keras.classic import BaggingEnsemble


def _interpret(path, inputs: np.ndarray) -> np.ndarray:
    """Runs a .tflite file the way a device would: a fresh interpreter, one example at a time."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        interpreter = tf.lite.Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner("serving_default")
    return np.concatenate([runner(inputs=x[None])["output_0"] for x in inputs])


class _Determinant(keras.layers.Layer):
    def call(self, x):
        return keras.ops.expand_dims(keras.ops.linalg.det(x), -1)


def _classifier() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    return model


def test_float_and_int8_exports_match_the_keras_model(tmp_path):
    model = _classifier()
    rng = np.random.default_rng(0)
    check = rng.random((16, 8, 8, 1), dtype=np.float32)
    fresh = rng.random((8, 8, 8, 1), dtype=np.float32)

    result = export.export_tflite(model, tmp_path, check)
    assert result.path == tmp_path / "1" / "model.tflite"
    assert result.max_abs_diff < 1e-5 and result.agreement == 1.0
    np.testing.assert_allclose(_interpret(result.path, fresh), model(fresh), atol=1e-5)

    quantized = export.export_tflite(
        model,
        tmp_path,
        check,
        representative_inputs=rng.random((64, 8, 8, 1), np.float32),
        quantize="int8",
    )
    assert quantized.path.parent.name == "2"
    # int8 weights: about a quarter of the float file (the flatbuffer adds a little).
    assert quantized.path.stat().st_size < 0.5 * result.path.stat().st_size
    probabilities = _interpret(quantized.path, fresh)
    np.testing.assert_allclose(probabilities, model(fresh), atol=0.05)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=0.05)


def test_versions_are_never_overwritten_and_bad_models_leave_nothing(tmp_path):
    model = _classifier()
    check = np.zeros((2, 8, 8, 1), np.float32)
    export.export_tflite(model, tmp_path, check, version=3)
    with pytest.raises(export.ExportError, match="never overwritten"):
        export.export_tflite(model, tmp_path, check, version=3)
    with pytest.raises(ValueError, match="representative_inputs"):
        export.export_tflite(model, tmp_path, check, quantize="int8")

    # A determinant has no TFLite builtin op.
    determinant = keras.Sequential([keras.Input((3, 3)), _Determinant()])
    with pytest.raises(export.ExportError, match="could not be converted"):
        export.export_tflite(determinant, tmp_path, np.eye(3, dtype=np.float32)[None])
    # A subclassed model (an ensemble) has no symbolic input to take the signature from.
    ensemble = BaggingEnsemble([_classifier(), _classifier()])
    with pytest.raises(ValueError, match="functional or Sequential model with exactly one input"):
        export.export_tflite(ensemble, tmp_path, check)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3"], "no temp folder left behind"


def _digits_run(root) -> object:
    """A digits run folder as `i2dl digits train` writes it, with an untrained model (no fit)."""
    config = digits.Config(
        data="synthetic", image_size=16, width=8, augment=False, num_classes=4, output_dir=str(root)
    )
    run = root / "digits" / "run-test"
    run.mkdir(parents=True)
    model = digits.build_model(config)
    model.optimizer.build(model.trainable_variables)  # saved as a trained model's would be
    model.save(run / "model.keras")
    (run / "config.json").write_text(json.dumps(dataclasses.asdict(config)))
    (run / "metrics.json").write_text(
        json.dumps({"test": {"accuracy": 0.25}, "data": {"class_names": list("abcd")}})
    )
    return run


def test_digits_export_format_tflite(tmp_path, capsys):
    run = _digits_run(tmp_path)
    assert cli.main(["digits", "export", "--model", str(run), "--quantize", "int8"]) == 2
    assert "needs --format tflite" in capsys.readouterr().err

    assert cli.main(["digits", "export", "--model", str(run), "--format", "tflite"]) == 0
    assert cli.main(["digits", "export", "--model", str(run), "--format", "tflite",
                     "--quantize", "int8"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "largest output difference" in out and "top-1 agreement" in out
    model = keras.saving.load_model(run / "model.keras")
    pixels = np.random.default_rng(1).random((6, 16, 16, 1), dtype=np.float32)
    expected = model(pixels).numpy()
    np.testing.assert_allclose(
        _interpret(tmp_path / "digits/tflite/1/model.tflite", pixels), expected, atol=1e-5
    )
    np.testing.assert_allclose(
        _interpret(tmp_path / "digits/tflite/2/model.tflite", pixels), expected, atol=0.05
    )
    card = (tmp_path / "digits/tflite/MODEL_CARD.md").read_text()
    assert card.startswith("# Model card: digits, version 2") and "(int8" in card
    assert "| input | `inputs` | float32 | [batch, 16, 16, 1] |" in card
    assert "| output | `output_0` | float32 | [batch, 4] |" in card
