"""TF Serving's gRPC API through the official stubs: Predict, GetModelMetadata, GetModelStatus."""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
)

TIMEOUT = 30.0


def test_grpc_stub_predicts_and_reports_metadata(exported, server, stub, png, digits_expected):
    _, models = exported
    pngs = [png(4), png(5)]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "digits"
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(pngs))
    response = stub.Predict(request, timeout=TIMEOUT)
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    probabilities = tf.make_ndarray(response.outputs["probabilities"])
    np.testing.assert_allclose(probabilities, digits_expected(models["digits"], pngs), atol=1e-5)

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


def test_malformed_grpc_requests_get_status_codes(exported, stub, png, digits_expected):
    cases = []
    wrong_dtype = predict_pb2.PredictRequest()
    wrong_dtype.model_spec.name = "digits"
    wrong_dtype.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([1.0]))
    cases.append((wrong_dtype, grpc.StatusCode.INVALID_ARGUMENT, "expects DT_STRING"))
    wrong_shape = predict_pb2.PredictRequest()
    wrong_shape.model_spec.name = "digits"
    wrong_shape.model_spec.signature_name = "serve_pixels"
    wrong_shape.inputs["pixels"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 4), np.float32)))
    cases.append((wrong_shape, grpc.StatusCode.INVALID_ARGUMENT, "expects shape"))
    unknown = predict_pb2.PredictRequest()
    unknown.model_spec.name = "nope"
    cases.append((unknown, grpc.StatusCode.NOT_FOUND, "Latest(nope)"))
    old = predict_pb2.PredictRequest()
    old.model_spec.name = "digits"
    old.model_spec.version.value = 9
    cases.append((old, grpc.StatusCode.NOT_FOUND, "Specific(digits, 9)"))
    label = predict_pb2.PredictRequest()
    label.model_spec.name = "digits"
    label.model_spec.version_label = "stable"
    cases.append((label, grpc.StatusCode.NOT_FOUND, "labels are not supported"))
    for request, code, message in cases:
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(request, timeout=TIMEOUT)
        assert error.value.code() == code and message in error.value.details()
    good = predict_pb2.PredictRequest()
    good.model_spec.name = "digits"
    good.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([png(0)]))
    class_ids = tf.make_ndarray(stub.Predict(good, timeout=TIMEOUT).outputs["class_ids"])
    _, models = exported
    expected = digits_expected(models["digits"], [png(0)]).argmax(-1)
    np.testing.assert_array_equal(class_ids, expected)


def _image_request(data: bytes) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "digits"
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([data]))
    return request


def test_grpc_image_errors_are_one_sentence(stub, png, truncated_png):
    cases = [
        (
            png(3, size=65),
            "instance 0 of input 'image_bytes': the PNG image is 65x65 (4,225 pixels), more "
            "than the limit of 4,096 pixels (--max-image-pixels)",
        ),
        (b"hello", "instance 0 of input 'image_bytes': not a PNG/JPEG/GIF/BMP/WebP/JPEG XL image"),
        (truncated_png, "an image of input 'image_bytes' could not be decoded: "),
    ]
    for data, message in cases:
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(_image_request(data), timeout=TIMEOUT)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        details = error.value.details()
        assert details.startswith(message) and "\n" not in details, details
