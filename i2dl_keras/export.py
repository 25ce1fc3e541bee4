"""Exporting Keras models as TF SavedModels in TF Serving's layout, checked before they land.

TF Serving watches `BASE/NAME/` and serves the highest numbered version folder in it, so an
export goes to `BASE/NAME/N/` with N one above the highest there. The SavedModel is first written
to a hidden temporary folder beside it, reloaded in a fresh Python process that imports only
TensorFlow (as a serving process would), and compared with the Keras model's own outputs; only
then is it renamed into place. A failed export leaves every earlier version untouched.
`export_tflite` writes a LiteRT flatbuffer and `export_converted` ONNX or OpenVINO IR (through
Keras' own `model.export`), each checked against the Keras model the same way.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

__all__ = [
    "CONVERTERS",
    "ConverterMissing",
    "ExportError",
    "Endpoint",
    "TFLiteExport",
    "export_converted",
    "export_serving",
    "export_tflite",
    "next_version",
]

# An endpoint is the function to serve and the `tf.TensorSpec`s of its arguments, in order. The
# spec names become the signature's input names, which clients use as request keys.
Endpoint = tuple[Callable, Sequence[tf.TensorSpec]]


class ExportError(RuntimeError):
    """The SavedModel could not be written or did not reproduce the Keras model."""


def next_version(serving_dir: str | os.PathLike) -> int:
    """Returns one more than the highest numeric version folder in `serving_dir` (or 1)."""
    path = Path(serving_dir)
    versions = (
        [int(p.name) for p in path.iterdir() if p.is_dir() and p.name.isdigit()]
        if (path.is_dir())
        else []
    )
    return max(versions, default=0) + 1


def _encode(value: np.ndarray) -> dict:
    value = np.asarray(value)
    if value.dtype.kind in ("O", "S"):
        return {
            "dtype": "string",
            "b64": [base64.b64encode(bytes(v)).decode("ascii") for v in value.reshape(-1)],
            "shape": list(value.shape),
        }
    return {"dtype": str(value.dtype), "shape": list(value.shape), "data": value.ravel().tolist()}


_CHECK_SCRIPT = r"""
import base64, json, sys
import numpy as np
import tensorflow as tf

def decode(item):
    if item["dtype"] == "string":
        flat = [base64.b64decode(s) for s in item["b64"]]
        return tf.reshape(tf.constant(flat, dtype=tf.string), item["shape"])
    return tf.constant(np.asarray(item["data"], dtype=item["dtype"]).reshape(item["shape"]))

spec = json.load(open(sys.argv[1]))
loaded = tf.saved_model.load(spec["path"])
results = {}
for name, inputs in spec["requests"].items():
    fn = loaded.signatures[name]
    out = fn(**{k: decode(v) for k, v in inputs.items()})
    results[name] = {}
    for k, v in out.items():
        v = np.asarray(v)
        if v.dtype.kind in ("O", "S"):  # strings (class names) travel as base64
            flat = [base64.b64encode(bytes(s)).decode("ascii") for s in v.reshape(-1)]
            results[name][k] = {"b64": flat, "shape": list(v.shape)}
        else:
            results[name][k] = v.tolist()
assert "i2dl_keras" not in sys.modules, "the serving check must not need i2dl_keras"
json.dump(results, open(sys.argv[2], "w"))
"""


def export_serving(
    model: keras.Model,
    endpoints: Mapping[str, Endpoint],
    serving_dir: str | os.PathLike,
    check_requests: Mapping[str, Mapping[str, np.ndarray]],
    version: int | None = None,
    atol: float = 1e-4,
    timeout: float = 300.0,
) -> Path:
    """Writes `model` as version `version` of a TF Serving model folder, after checking it.

    Args:
        model: The Keras model the endpoints call.
        endpoints: Signature name -> `(fn, input_specs)`. Name one `"serving_default"`: TF
            Serving uses it when a request names no signature.
        serving_dir: The model's folder in TF Serving's layout (`.../APP/serving`).
        check_requests: Signature name -> {input name: array} requests to verify the export
            with; each signature's outputs in a fresh process must match `fn` run here.
        version: The version number. Defaults to `None` (one above the highest present).
        atol: Absolute tolerance of the check. Defaults to `1e-4`.
        timeout: Seconds the checking process may take. Defaults to `300`.

    Returns:
        The path of the new version folder.

    Raises:
        ExportError: if the version exists already, or the reloaded SavedModel disagrees with
            the Keras model (then nothing is written).
    """
    if "serving_default" not in endpoints:
        raise ValueError(
            f"`endpoints` must include 'serving_default'. Received: endpoints={sorted(endpoints)}"
        )
    serving_dir = Path(serving_dir)
    serving_dir.mkdir(parents=True, exist_ok=True)
    version = next_version(serving_dir) if version is None else int(version)
    if version < 1:
        raise ValueError(f"`version` must be a positive integer. Received: version={version}")
    final = serving_dir / str(version)
    if final.exists():
        raise ExportError(
            f"{final} exists already; exports are never overwritten. Pass another --version "
            "or leave it out to take the next free number."
        )
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (fn, specs) in endpoints.items():
        archive.add_endpoint(name=name, fn=fn, input_signature=list(specs))

    tmp = Path(tempfile.mkdtemp(prefix=f".export-{version}-", dir=serving_dir))
    try:
        archive.write_out(str(tmp / "model"), verbose=False)
        expected = {}
        for name, request in check_requests.items():
            fn, specs = endpoints[name]
            args = [tf.constant(request[s.name]) for s in specs]
            outputs = fn(*args)
            expected[name] = {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}
            _check_finite(expected[name], f"signature {name!r}")
        served = _serve_in_fresh_process(tmp / "model", check_requests, timeout)
        for name, outputs in expected.items():
            for key, want in outputs.items():
                got = _decoded(served[name][key])
                if got.shape != want.shape or not _same(got, want, atol):
                    raise ExportError(
                        f"the exported signature {name!r} output {key!r} differs from the Keras "
                        f"model's (shapes {got.shape} vs {want.shape}); nothing was written"
                    )
        os.rename(tmp / "model", final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _check_finite(outputs: Mapping[str, np.ndarray], what: str) -> None:
    for key, value in outputs.items():
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise ExportError(
                f"the model's {what} output {key!r} is not finite (NaN or infinite) on the check "
                "inputs; nothing was exported. Retrain the model"
            )


def _decoded(value) -> np.ndarray:
    if isinstance(value, dict):
        flat = [base64.b64decode(s) for s in value["b64"]]
        return np.array(flat, dtype=object).reshape(value["shape"])
    return np.asarray(value)


def _same(got: np.ndarray, want: np.ndarray, atol: float) -> bool:
    if want.dtype.kind in ("O", "S"):
        return [bytes(v) for v in got.reshape(-1)] == [bytes(v) for v in want.reshape(-1)]
    return bool(np.allclose(got, want, atol=atol, rtol=0))


def _serve_in_fresh_process(path: Path, requests: Mapping, timeout: float) -> dict:
    with tempfile.TemporaryDirectory() as work:
        spec_file, out_file, script = (Path(work) / n for n in ("spec.json", "out.json", "c.py"))
        spec = {
            # Absolute: the check runs in its own working directory.
            "path": str(Path(path).resolve()),
            "requests": {
                name: {k: _encode(v) for k, v in request.items()}
                for name, request in requests.items()
            },
        }
        spec_file.write_text(json.dumps(spec))
        script.write_text(_CHECK_SCRIPT)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        proc = subprocess.run(
            [sys.executable, str(script), str(spec_file), str(out_file)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=work,
            env=env,
        )
        if proc.returncode != 0:
            raise ExportError(
                "the exported SavedModel failed to load or run in a fresh process:\n"
                + proc.stderr[-3000:]
            )
        return json.loads(out_file.read_text())


# --------------------------------------------------------------------------- LiteRT / TFLite


class TFLiteExport(NamedTuple):
    """What `export_tflite` wrote and how closely it reproduces the Keras model."""

    path: Path
    max_abs_diff: float
    agreement: float | None


TFLITE_FILE = "model.tflite"


def export_tflite(
    model: keras.Model,
    tflite_dir: str | os.PathLike,
    check_inputs: np.ndarray,
    representative_inputs: np.ndarray | None = None,
    quantize: str | None = None,
    version: int | None = None,
    atol: float | None = None,
    min_agreement: float | None = None,
) -> TFLiteExport:
    """Writes `model` as a LiteRT (TFLite) flatbuffer `tflite_dir/N/model.tflite`, checked.

    The model is traced into a SavedModel with one `serving_default` signature (input
    `inputs`, outputs `output_0`, `output_1`, ... in the order of the model's flattened outputs)
    and converted with TFLite's builtin ops only, so any LiteRT runtime can run it. With
    `quantize="int8"` weights and activations become int8 (full-integer post-training
    quantization, calibrated on `representative_inputs`); inputs and outputs stay float32. The
    flatbuffer is then run by the TFLite interpreter on `check_inputs`, one example at a time as
    on a device, and compared with the Keras model; only if it agrees is it moved into place.

    Args:
        model: A Keras model with one input.
        tflite_dir: The folder of versions (`.../APP/tflite`).
        check_inputs: A batch of model inputs to compare the two on; its shape fixes the
            flatbuffer's input shape where the model accepts any size.
        representative_inputs: A batch of typical inputs (from the training pipeline) to
            calibrate int8 ranges. Required for `quantize="int8"`. Defaults to `None`.
        quantize: `None` (float32) or `"int8"`. Defaults to `None`.
        version: The version number. Defaults to `None` (one above the highest present).
        atol: Largest allowed absolute difference of any output. Defaults to `None` (`1e-4`
            for float32; for int8 a tenth of the largest absolute Keras output).
        min_agreement: Smallest allowed share of examples whose arg-max over the last axis of
            the first output agrees (for outputs with more than one column). Defaults to `None`
            (`1.0` for float32, `0.9` for int8).

    Returns:
        A `TFLiteExport`: the path of `model.tflite`, the largest absolute difference and the
        arg-max agreement (`None` when the first output has one column).

    Raises:
        ExportError: if the version exists already, the model cannot be expressed in TFLite
            builtin ops, or the interpreter's outputs differ by more than allowed.
    """
    if quantize not in (None, "int8"):
        raise ValueError(f"`quantize` must be None or 'int8'. Received: quantize={quantize!r}")
    if quantize and (representative_inputs is None or len(representative_inputs) == 0):
        raise ValueError(
            "`representative_inputs` are required to calibrate int8 quantization. Received: "
            "representative_inputs=None"
        )
    # A subclassed model (e.g. an ensemble) has no symbolic inputs to take the signature from.
    inputs = getattr(model, "inputs", None)
    if not inputs or len(inputs) != 1:
        raise ValueError(
            "`model` must be a functional or Sequential model with exactly one input. "
            f"Received: model={model.name!r} ({type(model).__name__}) with "
            f"{len(inputs) if inputs else 'no symbolic'} inputs"
        )
    check_inputs = np.asarray(check_inputs)
    if len(check_inputs) == 0:
        raise ValueError("`check_inputs` must hold at least one example. Received: an empty batch")
    tflite_dir = Path(tflite_dir)
    tflite_dir.mkdir(parents=True, exist_ok=True)
    version = next_version(tflite_dir) if version is None else int(version)
    if version < 1:
        raise ValueError(f"`version` must be a positive integer. Received: version={version}")
    final = tflite_dir / str(version)
    if final.exists():
        raise ExportError(
            f"{final} exists already; exports are never overwritten. Pass another --version "
            "or leave it out to take the next free number."
        )

    # TFLite wants static sizes: the check inputs fix what the model leaves open (any image size).
    input_tensor = inputs[0]
    spec = tf.TensorSpec((None, *check_inputs.shape[1:]), input_tensor.dtype, name="inputs")

    def serve(inputs):
        outputs = keras.tree.flatten(model(inputs, training=False))
        return {f"output_{i}": out for i, out in enumerate(outputs)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serving_default", fn=serve, input_signature=[spec])
    tmp = Path(tempfile.mkdtemp(prefix=f".export-{version}-", dir=tflite_dir))
    try:
        archive.write_out(str(tmp / "saved_model"), verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            str(tmp / "saved_model"), signature_keys=["serving_default"]
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize == "int8":
            calibration = np.asarray(representative_inputs, dtype=spec.dtype.as_numpy_dtype)

            def representative_dataset():
                for example in calibration:
                    yield [example[None]]

            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative_dataset
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        try:
            flatbuffer = converter.convert()
        except Exception as exc:
            raise ExportError(
                "the model could not be converted to TFLite builtin ops (it uses an op "
                f"that LiteRT does not have, or takes strings): {str(exc)[-1500:]}"
            ) from None
        (tmp / "model").mkdir()
        (tmp / "model" / TFLITE_FILE).write_bytes(flatbuffer)

        expected = {
            k: keras.ops.convert_to_numpy(v)
            for k, v in serve(tf.constant(check_inputs, dtype=spec.dtype)).items()
        }
        _check_finite(expected, "TFLite")
        got = _run_tflite(flatbuffer, check_inputs.astype(spec.dtype.as_numpy_dtype))
        if sorted(got) != sorted(expected):
            raise ExportError(
                f"the TFLite outputs {sorted(got)} are not the model's {sorted(expected)}"
            )
        scale = max(float(np.max(np.abs(v))) for v in expected.values())
        if atol is None:
            atol = 1e-4 if quantize is None else 0.1 * max(scale, 1e-6)
        if min_agreement is None:
            min_agreement = 1.0 if quantize is None else 0.9
        worst = max(float(np.max(np.abs(got[k] - expected[k]))) for k in expected)
        first = expected["output_0"]
        agreement = None
        if first.ndim >= 2 and first.shape[-1] > 1:
            agreement = float(np.mean(got["output_0"].argmax(-1) == first.argmax(-1)))
        if worst > atol or (agreement is not None and agreement < min_agreement):
            raise ExportError(
                f"the TFLite model differs from the Keras model by up to {worst:.3g} "
                f"(allowed {atol:.3g}); arg-max agreement {agreement}; nothing was written"
            )
        os.rename(tmp / "model", final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return TFLiteExport(final / TFLITE_FILE, worst, agreement)


def _run_tflite(flatbuffer: bytes, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Runs the `serving_default` signature example by example, as a device would."""
    with warnings.catch_warnings():
        # tf.lite.Interpreter warns that it moves to the ai_edge_litert package; same runtime.
        warnings.simplefilter("ignore", UserWarning)
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    runner = interpreter.get_signature_runner("serving_default")
    rows = [runner(inputs=example[None]) for example in inputs]
    return {k: np.concatenate([row[k] for row in rows]) for k in rows[0]}


# --------------------------------------------------------------------------- ONNX and OpenVINO

# format -> (file name, the packages Keras' exporter and our check need, the extra to install)
CONVERTERS = {
    "onnx": ("model.onnx", ("tf2onnx", "onnx", "onnxruntime"), "onnx"),
    "openvino": ("model.xml", ("openvino",), "openvino"),
}


class ConverterMissing(ExportError):
    """The optional converter of an export format is not installed."""


def export_converted(
    model: keras.Model,
    export_dir: str | os.PathLike,
    format: str,
    check_inputs: np.ndarray,
    version: int | None = None,
    atol: float = 1e-4,
) -> tuple[Path, float]:
    """Writes `model` with Keras' own `model.export` as ONNX or OpenVINO IR, checked.

    The exported model takes inputs of the shape of `check_inputs` (any batch size), so an image
    model that resizes any image itself takes images of its own input size there. The file goes
    to `export_dir/N/` (N one above the highest version there) only after the exported model, run
    by ONNX Runtime or OpenVINO's CPU runtime, reproduced the Keras model's outputs on
    `check_inputs` to `atol`; a failed export leaves nothing behind.

    Args:
        model: A Keras model with one input.
        export_dir: The folder of versions (`.../APP/onnx`).
        format: `"onnx"` or `"openvino"`.
        check_inputs: A batch of model inputs to compare the two on.
        version: The version number. Defaults to `None` (one above the highest present).
        atol: Largest allowed absolute output difference. Defaults to `1e-4`.

    Returns:
        The exported file's path and the largest absolute difference found.

    Raises:
        ConverterMissing: if the format's optional packages are not installed; the message
            names the extra to install.
        ExportError: if the version exists, Keras cannot convert the model, or the converted
            model's outputs differ.
    """
    if format not in CONVERTERS:
        raise ValueError(
            f"`format` must be one of {sorted(CONVERTERS)}. Received: format={format!r}"
        )
    file_name, packages, extra = CONVERTERS[format]
    import importlib.util

    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        raise ConverterMissing(
            f"--format {format} needs {', '.join(missing)}: install the extra with "
            f"pip install 'i2dl-keras[{extra}]'"
        )
    check_inputs = np.asarray(check_inputs)
    export_dir = Path(export_dir)
    export_dir.mkdir(parents=True, exist_ok=True)
    version = next_version(export_dir) if version is None else int(version)
    final = export_dir / str(version)
    if final.exists():
        raise ExportError(
            f"{final} exists already; exports are never overwritten. Pass another --version "
            "or leave it out to take the next free number."
        )
    expected = keras.tree.flatten(model.predict(check_inputs, verbose=0))[0]
    _check_finite({"output_0": np.asarray(expected)}, format)
    tmp = Path(tempfile.mkdtemp(prefix=f".export-{version}-", dir=export_dir))
    try:
        (tmp / "model").mkdir()
        # As for TFLite, the check inputs fix the sizes a model leaves open (any image size).
        spec = tf.TensorSpec((None, *check_inputs.shape[1:]), model.inputs[0].dtype)
        try:
            model.export(
                str(tmp / "model" / file_name),
                format=format,
                verbose=False,
                input_signature=[spec],
            )
        except Exception as exc:
            raise ExportError(
                f"Keras could not export the model as {format}: {str(exc)[-1500:]}"
            ) from None
        got = _run_converted(tmp / "model" / file_name, format, check_inputs)
        worst = float(np.max(np.abs(got - expected)))
        if got.shape != expected.shape or not worst <= atol:
            raise ExportError(
                f"the {format} model differs from the Keras model by up to {worst:.3g} "
                f"(allowed {atol:.3g}); nothing was written"
            )
        os.rename(tmp / "model", final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final / file_name, worst


def _run_converted(path: Path, format: str, inputs: np.ndarray) -> np.ndarray:
    if format == "onnx":
        import onnxruntime

        runtime = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = runtime.get_inputs()[0].name
        return runtime.run(None, {name: inputs.astype(np.float32)})[0]
    import openvino

    compiled = openvino.Core().compile_model(str(path), "CPU")
    return np.asarray(compiled(inputs.astype(np.float32))[0])
