"""ONNX and OpenVINO exports: checked against the Keras model, or a message naming the extra."""

import importlib.util

import numpy as np
import pytest

from i2dl_keras import export
from i2dl_keras.apps import cli, digits


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    return digits.train(
        data="synthetic", epochs=1, batch_size=16, image_size=16, width=4, output_dir=str(out)
    )


@pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None, reason="the onnx extra is not installed"
)
def test_onnx_export_agrees_with_keras_on_raw_pixels(run):
    import onnxruntime

    path = run.export("onnx")
    assert path == run.path.parent / "onnx" / "1" / "model.onnx"
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # The ONNX model takes the model's own input size (16x16 here), any batch.
    pixels = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 1)).astype(np.float32)
    (got,) = session.run(None, {session.get_inputs()[0].name: pixels})
    np.testing.assert_allclose(got, run.model.predict(pixels, verbose=0), atol=1e-5)
    assert (path.parent.parent / "MODEL_CARD.md").is_file()
    with pytest.raises(export.ExportError, match="never overwritten"):
        run.export("onnx", version=1)


@pytest.mark.skipif(
    importlib.util.find_spec("openvino") is not None, reason="the openvino extra is installed"
)
def test_a_missing_converter_names_its_extra(run, capsys):
    argv = ["digits", "export", "--model", str(run.path), "--format", "openvino"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "pip install 'i2dl-keras[openvino]'" in err and len(err.strip().splitlines()) == 1
    assert not (run.path.parent / "openvino").exists() or not any(
        p.name.isdigit() for p in (run.path.parent / "openvino").iterdir()
    )
