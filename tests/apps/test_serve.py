"""`i2dl serve`: TF Serving's REST and gRPC APIs over exported digits and sentiment models."""

import base64
import concurrent.futures
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import grpc
import httpx
import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from apps import cli, digits, serve
from apps.model_card import CARD_FILE

DIGITS = [
    "--data",
    "synthetic",
    "--epochs",
    "1",
    "--batch-size",
    "16",
    "--image-size",
    "16",
    "--width",
    "8",
    "--no-augment",
]
SENTIMENT = [
    "--data",
    "synthetic",
    "--epochs",
    "1",
    "--batch-size",
    "32",
    "--vocab-size",
    "200",
    "--embedding-dim",
    "8",
    "--units",
    "4",
    "--no-bidirectional",
]
MAX_BODY = 64 * 1024
TIMEOUT = 30.0


def _png(seed: int, size: int = 16) -> bytes:
    image = np.random.default_rng(seed).integers(0, 256, (size, size, 1), dtype=np.uint8)
    return tf.io.encode_png(image).numpy()


def _b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode("ascii")}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A saved_models folder with digits and sentiment exported once, and their Keras models."""
    out = tmp_path_factory.mktemp("saved_models")
    models = {}
    for app, flags in (("digits", DIGITS), ("sentiment", SENTIMENT)):
        assert cli.main([app, "train", *flags, "--output-dir", str(out)]) == 0
        (run,) = (out / app).glob("run-*")
        assert cli.main([app, "export", "--model", str(run)]) == 0
        models[app] = keras.saving.load_model(run / "model.keras")
    return out, models


@pytest.fixture(scope="module")
def server(exported):
    out, _ = exported
    with serve.ModelServer(
        out, port=0, grpc_port=0, poll_seconds=0, max_body_bytes=MAX_BODY, batch_timeout_ms=5
    ) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.rest_url, timeout=TIMEOUT) as http:
        yield http


@pytest.fixture(scope="module")
def stub(server):
    channel = grpc.insecure_channel(server.grpc_target)
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    channel.close()


def _digits_expected(model, pngs):
    pixels = tf.stack([digits.decode_pixels(tf.constant(p), 16) for p in pngs])
    return model(pixels, training=False).numpy()


def test_export_writes_a_model_card_next_to_the_version(exported):
    out, _ = exported
    card = (out / "digits" / "serving" / CARD_FILE).read_text()
    assert card.startswith("# Model card: digits, version 1")
    for section in ("## Intended use", "## Data", "## Metrics", "## Configuration", "## Limits"):
        assert section in card
    assert "| input | `image_bytes` | string | [batch] |" in card
    assert "| output | `probabilities` | float | [batch, 4] |" in card
    assert "| accuracy |" in card and "| image_size | 16 |" in card
    assert "generated smoke-test data" in card
    assert (
        "| input | `text` | string | [batch] |"
        in (out / "sentiment/serving" / CARD_FILE).read_text()
    )


def test_status_and_metadata_follow_tf_serving(client):
    status = client.get("/v1/models/digits")
    assert status.status_code == 200
    assert status.json() == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    metadata = client.get("/v1/models/digits/versions/1/metadata").json()
    assert metadata["model_spec"] == {"name": "digits", "signature_name": "", "version": "1"}
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    default = signatures["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    assert default["inputs"]["image_bytes"]["dtype"] == "DT_STRING"
    assert default["outputs"]["probabilities"]["tensor_shape"]["dim"][1]["size"] == "4"
    assert "serve_pixels" in signatures


def test_rest_predicts_png_bytes_like_the_keras_model(exported, client):
    _, models = exported
    pngs = [_png(1), _png(2, size=30)]  # the signature resizes whatever it is sent
    expected = _digits_expected(models["digits"], pngs)

    rows = client.post("/v1/models/digits:predict", json={"instances": [_b64(p) for p in pngs]})
    assert rows.status_code == 200, rows.text
    predictions = rows.json()["predictions"]
    np.testing.assert_allclose([p["probabilities"] for p in predictions], expected, atol=1e-5)
    assert [p["class_ids"] for p in predictions] == expected.argmax(-1).tolist()

    # Columnar, a named signature and an explicit version.
    pixels = np.random.default_rng(3).random((2, 16, 16, 1), dtype=np.float32)
    columns = client.post(
        "/v1/models/digits/versions/1:predict",
        json={"signature_name": "serve_pixels", "inputs": {"pixels": pixels.tolist()}},
    )
    assert columns.status_code == 200, columns.text
    outputs = columns.json()["outputs"]
    np.testing.assert_allclose(outputs["probabilities"], models["digits"](pixels), atol=1e-5)


def test_grpc_stub_predicts_and_reports_metadata(exported, server, stub):
    _, models = exported
    pngs = [_png(4), _png(5)]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "digits"
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(pngs))
    response = stub.Predict(request, timeout=TIMEOUT)
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    probabilities = tf.make_ndarray(response.outputs["probabilities"])
    np.testing.assert_allclose(probabilities, _digits_expected(models["digits"], pngs), atol=1e-5)

    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "digits"
    metadata = stub.GetModelMetadata(request, timeout=TIMEOUT)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert metadata.metadata["signature_def"].Unpack(signatures)
    assert set(signatures.signature_def["serving_default"].inputs) == {"image_bytes"}

    with grpc.insecure_channel(server.grpc_target) as channel:
        status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "digits"}),
            timeout=TIMEOUT,
        )
    assert [(s.version, s.state) for s in status.model_version_status] == [(1, 30)]


def test_sentiment_answers_raw_strings_over_rest_and_grpc(exported, client, stub):
    _, models = exported
    texts = ["a wonderful , moving film", "naïve — überlong… and dull", ""]
    p = models["sentiment"].predict_on_batch(tf.constant(texts))[:, 0]
    expected = np.stack([1 - p, p], axis=-1)

    response = client.post("/v1/models/sentiment:predict", json={"instances": texts})
    assert response.status_code == 200, response.text
    got = [row["probabilities"] for row in response.json()["predictions"]]
    np.testing.assert_allclose(got, expected, atol=1e-5)

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "sentiment"
    request.inputs["text"].CopyFrom(tf.make_tensor_proto([t.encode() for t in texts]))
    outputs = stub.Predict(request, timeout=TIMEOUT).outputs
    np.testing.assert_allclose(tf.make_ndarray(outputs["probabilities"]), expected, atol=1e-5)


_PIXELS = "serve_pixels"
MALFORMED = [
    ("bad JSON", "digits:predict", b'{"instances": [', 400, "JSON Parse error"),
    ("not an object", "digits:predict", b"[1, 2]", 400, "must be a JSON object"),
    ("no instances or inputs", "digits:predict", b"{}", 400, "Missing 'inputs' or 'instances'"),
    ("both", "digits:predict", b'{"instances": [], "inputs": []}', 400, "Only one of"),
    ("empty instances", "digits:predict", b'{"instances": []}', 400, "non-empty"),
    ("number for bytes", "digits:predict", b'{"instances": [1.5]}', 400, "expects strings"),
    ("bad base64", "digits:predict", b'{"instances": [{"b64": "%%%"}]}', 400, "base64"),
    (
        "bytes that are no image",
        "digits:predict",
        b'{"instances": [{"b64": "aGVsbG8="}]}',
        400,
        "image",
    ),
    (
        "strings for floats",
        "digits:predict",
        b'{"signature_name": "serve_pixels", "instances": ["a"]}',
        400,
        "expects numbers",
    ),
    (
        "wrong shape",
        "digits:predict",
        b'{"signature_name": "serve_pixels", "inputs": [[[[0.5]]]]}',
        400,
        "expects shape [-1, 16, 16, 1]",
    ),
    (
        "ragged lists",
        "digits:predict",
        b'{"signature_name": "serve_pixels", "inputs": [[0.5], [0.5, 0.5]]}',
        400,
        "different lengths",
    ),
    (
        "unknown input name",
        "digits:predict",
        b'{"signature_name": "serve_pixels", "inputs": {"image": [1]}}',
        400,
        "keys ['pixels']",
    ),
    (
        "unknown signature",
        "digits:predict",
        b'{"signature_name": "nope", "instances": ["x"]}',
        400,
        'signature name: "nope" not found',
    ),
    ("unknown model", "nope:predict", b'{"instances": ["x"]}', 404, "Latest(nope)"),
    (
        "unknown version",
        "digits/versions/7:predict",
        b'{"instances": ["x"]}',
        404,
        "Specific(digits, 7)",
    ),
    ("unsupported verb", "digits:classify", b'{"examples": []}', 400, "not supported"),
    ("malformed path", "digits/predict", b"{}", 404, "Malformed request"),
    ("oversized body", "digits:predict", b" " * (MAX_BODY + 1), 413, "larger than the limit"),
]


@pytest.mark.parametrize(
    "path, body, status, message", [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_requests_get_tf_serving_errors(exported, client, path, body, status, message):
    response = client.post(f"/v1/models/{path}", content=body)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}
    assert message in response.json()["error"]
    # ... and the server goes on answering.
    ok = client.post("/v1/models/digits:predict", json={"instances": [_b64(_png(0))]})
    assert ok.status_code == 200, ok.text


def test_malformed_grpc_requests_get_status_codes(stub):
    cases = []
    wrong_dtype = predict_pb2.PredictRequest()
    wrong_dtype.model_spec.name = "digits"
    wrong_dtype.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([1.0]))
    cases.append((wrong_dtype, grpc.StatusCode.INVALID_ARGUMENT, "expects DT_STRING"))
    wrong_shape = predict_pb2.PredictRequest()
    wrong_shape.model_spec.name = "digits"
    wrong_shape.model_spec.signature_name = _PIXELS
    wrong_shape.inputs["pixels"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 4), np.float32)))
    cases.append((wrong_shape, grpc.StatusCode.INVALID_ARGUMENT, "expects shape"))
    unknown = predict_pb2.PredictRequest()
    unknown.model_spec.name = "nope"
    cases.append((unknown, grpc.StatusCode.NOT_FOUND, "Latest(nope)"))
    old = predict_pb2.PredictRequest()
    old.model_spec.name = "digits"
    old.model_spec.version.value = 9
    cases.append((old, grpc.StatusCode.NOT_FOUND, "Specific(digits, 9)"))
    for request, code, message in cases:
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(request, timeout=TIMEOUT)
        assert error.value.code() == code and message in error.value.details()
    good = predict_pb2.PredictRequest()
    good.model_spec.name = "digits"
    good.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([_png(0)]))
    assert stub.Predict(good, timeout=TIMEOUT).outputs["class_ids"].int64_val


def test_concurrent_requests_each_get_their_own_answer(exported, client, stub):
    _, models = exported
    pngs = [_png(10 + i, size=16 + i) for i in range(12)]
    expected = _digits_expected(models["digits"], pngs)
    bad = 5  # one broken image among them must fail alone, not its whole batch

    def over_rest(i):
        body = _b64(b"not a png" if i == bad else pngs[i])
        return client.post("/v1/models/digits:predict", json={"instances": [body]})

    def over_grpc(i):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "digits"
        request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([pngs[i]]))
        return tf.make_ndarray(stub.Predict(request, timeout=TIMEOUT).outputs["probabilities"])

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        rest = list(pool.map(over_rest, range(len(pngs))))
        grpc_results = list(pool.map(over_grpc, range(len(pngs))))
    for i, response in enumerate(rest):
        if i == bad:
            assert response.status_code == 400 and "error" in response.json()
            continue
        assert response.status_code == 200, response.text
        got = response.json()["predictions"][0]["probabilities"]
        np.testing.assert_allclose(got, expected[i], atol=1e-5)
    np.testing.assert_allclose(np.concatenate(grpc_results), expected, atol=1e-5)


class _CountingSignature(serve.Signature):
    """Doubles its input, records each call's batch size, and can hold its first call."""

    def __init__(self):
        spec = tf.TensorSpec([None, 2], tf.float32, name="x")
        super().__init__("double", None, {"x": spec}, {"y": spec})
        self.calls = []
        self.entered, self.gate = threading.Event(), threading.Event()

    def call(self, arrays):
        self.entered.set()
        self.gate.wait(TIMEOUT)
        self.calls.append(len(arrays["x"]))
        if np.isnan(arrays["x"]).any():
            raise serve.ServingError("NaN input")
        return {"y": arrays["x"] * 2}


def test_batcher_groups_waiting_requests_and_splits_the_answers():
    signature = _CountingSignature()
    batcher = serve.Batcher(signature, max_batch_size=8, timeout=0.01)
    try:
        # While the first call runs, the others queue up; the next call takes them all.
        busy = batcher.submit({"x": np.zeros((1, 2), np.float32)})
        assert signature.entered.wait(TIMEOUT)
        inputs = [np.full((1 + i % 2, 2), i, np.float32) for i in range(5)]  # 7 rows in all
        futures = [batcher.submit({"x": x}) for x in inputs]
        signature.gate.set()
        busy.result(TIMEOUT)
        for x, future in zip(inputs, futures):
            np.testing.assert_array_equal(future.result(TIMEOUT)["y"], x * 2)
        assert signature.calls == [1, 7], "five waiting requests, one model call"

        # A failing request in a batch is retried alone; the others still get answers.
        signature.calls.clear()
        signature.entered.clear()
        signature.gate.clear()
        busy = batcher.submit({"x": np.zeros((1, 2), np.float32)})
        assert signature.entered.wait(TIMEOUT)
        inputs = [np.ones((1, 2), np.float32), np.full((1, 2), np.nan, np.float32)]
        futures = [batcher.submit({"x": x}) for x in inputs]
        signature.gate.set()
        busy.result(TIMEOUT)
        np.testing.assert_array_equal(futures[0].result(TIMEOUT)["y"], [[2, 2]])
        with pytest.raises(serve.ServingError, match="NaN"):
            futures[1].result(TIMEOUT)
        assert signature.calls == [1, 2, 1, 1]
    finally:
        signature.gate.set()
        batcher.close()


def test_two_batch_threads_run_a_second_batch_while_the_first_is_in_the_model():
    signature = _CountingSignature()
    batcher = serve.Batcher(signature, max_batch_size=8, timeout=0.0, num_threads=2)
    try:
        # The first thread is held inside the model; the second answers what comes next.
        busy = batcher.submit({"x": np.zeros((1, 2), np.float32)})
        assert signature.entered.wait(TIMEOUT)
        signature.entered.clear()
        later = batcher.submit({"x": np.ones((1, 2), np.float32)})
        assert signature.entered.wait(TIMEOUT), "the second thread did not take the request"
        assert not busy.done() and not later.done()
        signature.gate.set()
        np.testing.assert_array_equal(later.result(TIMEOUT)["y"], [[2, 2]])
        np.testing.assert_array_equal(busy.result(TIMEOUT)["y"], [[0, 0]])
        assert sorted(signature.calls) == [1, 1]
    finally:
        signature.gate.set()
        batcher.close()
    # Closing ends both threads; later requests are answered in the caller's thread.
    for thread in batcher._threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive()
    np.testing.assert_array_equal(
        batcher.submit({"x": np.ones((1, 2), np.float32)}).result(TIMEOUT)["y"], [[2, 2]]
    )


def _new_version(model: keras.Model, serving_dir, version: int) -> keras.Model:
    """Writes a different model as `version`, atomically, as `i2dl APP export` does."""
    changed = keras.models.clone_model(model)
    changed.set_weights(model.get_weights())
    dense = changed.layers[-1]
    kernel, bias = dense.get_weights()
    bias[0] += 50.0  # now everything is class 0
    dense.set_weights([kernel, bias])
    config = digits.Config(image_size=16, num_classes=4)
    archive = keras.export.ExportArchive()
    archive.track(changed)
    for name, (fn, specs) in digits.serving_endpoints(changed, config).items():
        archive.add_endpoint(name=name, fn=fn, input_signature=list(specs))
    tmp = serving_dir / f".export-{version}"
    archive.write_out(str(tmp), verbose=False)
    os.rename(tmp, serving_dir / str(version))
    return changed


def test_a_new_version_is_served_without_a_restart(exported, tmp_path):
    out, models = exported
    root = tmp_path / "saved_models"
    shutil.copytree(out / "digits" / "serving" / "1", root / "digits" / "serving" / "1")
    png = _png(42)
    request = {"instances": [_b64(png)]}
    with serve.ModelServer(root, port=0, grpc_port=None, poll_seconds=0.1) as server:
        with httpx.Client(base_url=server.rest_url, timeout=TIMEOUT) as http:
            before = http.post("/v1/models/digits:predict", json=request).json()
            assert (
                before["predictions"][0]["class_ids"]
                == _digits_expected(models["digits"], [png]).argmax()
            )
            changed = _new_version(models["digits"], root / "digits" / "serving", 2)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                versions = http.get("/v1/models/digits").json()["model_version_status"]
                if versions[0]["version"] == "2":
                    break
                time.sleep(0.1)
            assert [v["version"] for v in versions] == ["2"], versions
            after = http.post("/v1/models/digits:predict", json=request).json()
            np.testing.assert_allclose(
                after["predictions"][0]["probabilities"],
                _digits_expected(changed, [png])[0],
                atol=1e-5,
            )
            assert after["predictions"][0]["class_ids"] == 0
            old = http.post("/v1/models/digits/versions/1:predict", json=request)
            assert old.status_code == 404, "like TF Serving, only the newest version is served"

            # A broken export is reported, and the version before it goes on serving.
            (root / "digits" / "serving" / "3").mkdir()
            (root / "digits" / "serving" / "3" / "saved_model.pb").write_bytes(b"broken")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                versions = http.get("/v1/models/digits").json()["model_version_status"]
                if versions[0]["version"] == "3":
                    break
                time.sleep(0.1)
            assert [(v["version"], v["state"]) for v in versions] == [
                ("3", "END"),
                ("2", "AVAILABLE"),
            ]
            assert versions[0]["status"]["error_message"]
            again = http.post("/v1/models/digits:predict", json=request).json()
            assert again["predictions"][0]["class_ids"] == 0


def test_i2dl_serve_command_serves_until_interrupted(exported):
    out, _ = exported
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "apps", "serve", str(out), "--port", "0", "--grpc-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines = []
    try:
        # Read the announced address on a thread so that a hung start fails the test in time.
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")))
        reader.daemon = True
        reader.start()
        deadline = time.monotonic() + 120
        url = None
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            found = [re.search(r"REST on (http://\S+?)[,;]", line) for line in lines]
            url = next((m.group(1) for m in found if m), None)
            time.sleep(0.1)
        assert url, "".join(lines)[-2000:]
        assert any("model 'sentiment'" in line for line in lines)
        response = httpx.post(
            f"{url}/v1/models/digits:predict", json={"instances": [_b64(_png(7))]}, timeout=60
        )
        assert response.status_code == 200 and len(response.json()["predictions"]) == 1
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = None
    assert code == 0, "".join(lines)[-2000:]


def test_serve_rejects_a_missing_folder(tmp_path, capsys):
    assert cli.main(["serve", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err
