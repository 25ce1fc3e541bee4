"""TF Serving's REST API: status, metadata, predict in both formats, and its error answers."""

import numpy as np
import pytest

from i2dl_keras.serving import ServingError, format_predict_response

_OVERSIZED = object()  # a body one byte over the server's limit
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
        b'{"signature_name": "serve_pixels", "inputs": [[[0.5]]]}',
        400,
        "expects shape [-1, -1, -1, 1]",
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
    ("version label", "digits/labels/stable:predict", b"{}", 404, "labels are not supported"),
    ("unsupported verb", "digits:classify", b'{"examples": []}', 400, "not supported"),
    ("malformed path", "digits/predict", b"{}", 404, "Malformed request"),
    ("oversized body", "digits:predict", _OVERSIZED, 413, "larger than the limit"),
]


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


def test_rest_predicts_png_bytes_like_the_keras_model(exported, client, png, b64, digits_expected):
    _, models = exported
    pngs = [png(1), png(2, size=30)]  # the signature resizes whatever it is sent
    expected = digits_expected(models["digits"], pngs)

    rows = client.post("/v1/models/digits:predict", json={"instances": [b64(p) for p in pngs]})
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


@pytest.mark.parametrize(
    "path, body, status, message", [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_requests_get_tf_serving_errors(
    server, client, png, b64, path, body, status, message
):
    if body is _OVERSIZED:
        body = b" " * (server.max_body_bytes + 1)
    response = client.post(f"/v1/models/{path}", content=body)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}
    assert message in response.json()["error"]
    # ... and the server goes on answering.
    ok = client.post("/v1/models/digits:predict", json={"instances": [b64(png(0))]})
    assert ok.status_code == 200, ok.text


def test_format_predict_response_writes_rows_columns_and_bytes():
    outputs = {
        "scores": np.array([[0.25, 0.75], [1.0, 0.0]], np.float32),
        "label_bytes": np.array([b"\x00\xff", b"ok"], dtype=object),
        "name": np.array([b"cat", b"\xff"], dtype=object),
    }
    rows = format_predict_response(outputs, row_format=True)
    assert rows == {
        "predictions": [
            {"scores": [0.25, 0.75], "label_bytes": {"b64": "AP8="}, "name": "cat"},
            {"scores": [1.0, 0.0], "label_bytes": {"b64": "b2s="}, "name": {"b64": "/w=="}},
        ]
    }
    assert format_predict_response({"y": np.array([1, 2])}, row_format=True) == {
        "predictions": [1, 2]
    }
    assert format_predict_response({"y": np.array([1, 2])}, row_format=False) == {"outputs": [1, 2]}
    columns = format_predict_response(outputs, row_format=False)["outputs"]
    assert columns["scores"] == [[0.25, 0.75], [1.0, 0.0]]
    with pytest.raises(ServingError, match="do not share a batch size"):
        format_predict_response({"a": np.zeros(2), "b": np.zeros(3)}, row_format=True)


def test_images_over_the_pixel_limit_are_refused_before_decoding(server, client, png, b64):
    assert server.max_image_pixels == 64 * 64
    body = {"instances": [b64(png(1, size=64)), b64(png(2, size=65))]}
    response = client.post("/v1/models/digits:predict", json=body)
    assert response.status_code == 400, response.text
    assert response.json() == {
        "error": "instance 1 of input 'image_bytes': the PNG image is 65x65 (4,225 pixels), "
        "more than the limit of 4,096 pixels (--max-image-pixels)"
    }
    ok = client.post("/v1/models/digits:predict", json={"instances": body["instances"][:1]})
    assert ok.status_code == 200, ok.text


def test_undecodable_bytes_get_one_sentence_not_a_tensorflow_trace(client, b64, truncated_png):
    not_image = client.post("/v1/models/digits:predict", json={"instances": [b64(b"hello")]})
    assert not_image.status_code == 400
    assert not_image.json() == {
        "error": "instance 0 of input 'image_bytes': not a PNG/JPEG/GIF/BMP/WebP/JPEG XL image"
    }
    # The header reads, the pixel data does not: TensorFlow's decoder fails inside the model.
    truncated = client.post("/v1/models/digits:predict", json={"instances": [b64(truncated_png)]})
    assert truncated.status_code == 400
    error = truncated.json()["error"]
    assert error.startswith("an image of input 'image_bytes' could not be decoded: "), error
    assert "\n" not in error and "node" not in error and "File " not in error


@pytest.mark.parametrize("depth", [65, 30_000])  # 30,000 levels fit the 64 KiB body limit
def test_json_nested_too_deep_is_refused_without_recursion(client, depth):
    body = b'{"instances": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"
    response = client.post("/v1/models/digits:predict", content=body)
    assert response.status_code == 400, response.text
    assert response.json() == {
        "error": f"the JSON body is nested {depth} levels deep, more than the limit of 64"
    }


def test_json_nesting_counts_brackets_outside_strings_only(client):
    at_limit = b'{"instances": ' + b"[" * 63 + b"]" * 63 + b"}"  # 64 levels: parsed
    response = client.post("/v1/models/digits:predict", content=at_limit)
    assert response.status_code == 400
    assert "nested" not in response.json()["error"]
    text = "[{" * 200 + '\\"' + "}]" * 200  # brackets and an escaped quote inside a string
    response = client.post("/v1/models/sentiment:predict", json={"instances": [text]})
    assert response.status_code == 200, response.text
