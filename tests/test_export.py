"""Checked SavedModel exports: versions, the fresh-process comparison, and no lost work."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras import export


def _model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.build((None, 3))
    return model


def _endpoints(model, noise=0.0):
    def serve(x):
        out = model(x)
        if noise:
            # Random output differs between this process and the checking one.
            out = out + tf.random.uniform(tf.shape(out), maxval=noise)
        return {"y": out}

    return {"serving_default": (serve, [tf.TensorSpec([None, 3], tf.float32, name="x")])}


def test_versions_increment_and_are_never_overwritten(tmp_path):
    model = _model()
    request = {"serving_default": {"x": np.ones((2, 3), np.float32)}}
    first = export.export_serving(model, _endpoints(model), tmp_path, request)
    second = export.export_serving(model, _endpoints(model), tmp_path, request)
    assert (first.name, second.name) == ("1", "2")
    loaded = tf.saved_model.load(str(second))
    np.testing.assert_allclose(
        loaded.signatures["serving_default"](x=tf.ones((2, 3)))["y"],
        model(np.ones((2, 3))),
        atol=1e-6,
    )
    with pytest.raises(export.ExportError, match="never overwritten"):
        export.export_serving(model, _endpoints(model), tmp_path, request, version=1)
    assert export.next_version(tmp_path) == 3


def test_a_mismatching_export_is_not_written(tmp_path):
    model = _model()
    request = {"serving_default": {"x": np.ones((2, 3), np.float32)}}
    export.export_serving(model, _endpoints(model), tmp_path, request)
    with pytest.raises(export.ExportError, match="differs"):
        export.export_serving(model, _endpoints(model, noise=1.0), tmp_path, request)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1"], "no version 2, no temp folder"


def test_serving_default_is_required(tmp_path):
    model = _model()
    endpoints = {"other": _endpoints(model)["serving_default"]}
    with pytest.raises(ValueError, match="serving_default"):
        export.export_serving(model, endpoints, tmp_path, {})


@pytest.mark.cold_subprocess  # the check in a process started cold, as users run it
def test_a_relative_serving_dir_is_checked_where_it_was_written(tmp_path, monkeypatch):
    # The default output folder, saved_models, is relative; the check runs elsewhere.
    monkeypatch.chdir(tmp_path)
    model = _model()
    request = {"serving_default": {"x": np.ones((2, 3), np.float32)}}
    path = export.export_serving(model, _endpoints(model), "saved_models/serving", request)
    assert path.resolve() == tmp_path / "saved_models" / "serving" / "1"
    assert (path / "saved_model.pb").is_file()
