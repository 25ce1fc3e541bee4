"""TF Serving's gRPC API: `PredictionService` and `ModelService` over a `ModelRepository`."""

from __future__ import annotations

import concurrent.futures
import logging

import grpc
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from i2dl_keras.serving.errors import ServingError
from i2dl_keras.serving.images import DEFAULT_MAX_IMAGE_PIXELS
from i2dl_keras.serving.repository import ModelRepository, ModelVersion, version_number

logger = logging.getLogger(__name__)


def _dtype_name(enum: int) -> str:
    return types_pb2.DataType.Name(enum) if enum in types_pb2.DataType.values() else str(enum)


class _GrpcBase:
    def __init__(self, repository: ModelRepository):
        self.repository = repository

    def _model(self, spec) -> ModelVersion:
        version_number(None, spec.version_label)
        version = spec.version.value if spec.HasField("version") else None
        return self.repository.get(spec.name, version)

    @staticmethod
    def _abort(context, exc: Exception):
        if isinstance(exc, ServingError):
            context.abort(exc.code, exc.message)
        logger.exception("gRPC request failed")
        context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")


class PredictionServicer(_GrpcBase, prediction_service_pb2_grpc.PredictionServiceServicer):
    """`tensorflow.serving.PredictionService`: `Predict` and `GetModelMetadata`.

    Args:
        repository: The models to serve.
        max_image_pixels: Most pixels one encoded image of an image input (a string input
            named like `image_bytes`) may have, by its header; larger is `INVALID_ARGUMENT`
            before decoding. Defaults to 4096 * 4096.
    """

    def __init__(
        self, repository: ModelRepository, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    ):
        super().__init__(repository)
        self.max_image_pixels = max_image_pixels

    def Predict(self, request, context):  # noqa: N802 (the proto's name)
        try:
            model = self._model(request.model_spec)
            signature = model.signature(request.model_spec.signature_name)
            arrays = {}
            for key, proto in request.inputs.items():
                spec = signature.inputs.get(key)
                if spec is None:
                    raise ServingError(
                        f"unknown input {key!r}; signature {signature.name!r} takes "
                        f"{sorted(signature.inputs)}"
                    )
                if proto.dtype != spec.dtype.as_datatype_enum:
                    raise ServingError(
                        f"input {key!r} expects {_dtype_name(spec.dtype.as_datatype_enum)}, "
                        f"got {_dtype_name(proto.dtype)}"
                    )
                try:
                    arrays[key] = tf.make_ndarray(proto)
                except Exception as exc:
                    raise ServingError(
                        f"input {key!r} is not a readable TensorProto: {exc}"
                    ) from None
            signature.check(arrays, self.max_image_pixels)
            outputs = model.predict(signature, arrays)
            wanted = list(request.output_filter) or list(outputs)
            unknown = sorted(set(wanted) - set(outputs))
            if unknown:
                raise ServingError(
                    f"output_filter names unknown output(s) {unknown}; signature "
                    f"{signature.name!r} has {sorted(outputs)}"
                )
            response = predict_pb2.PredictResponse()
            response.model_spec.name = model.name
            response.model_spec.version.value = model.version
            response.model_spec.signature_name = signature.name
            for key in wanted:
                response.outputs[key].CopyFrom(tf.make_tensor_proto(outputs[key]))
            return response
        except Exception as exc:
            self._abort(context, exc)

    def GetModelMetadata(self, request, context):  # noqa: N802
        try:
            fields = list(request.metadata_field)
            if fields != ["signature_def"]:
                raise ServingError(
                    f"metadata_field must be ['signature_def'] (the only metadata served), "
                    f"got {fields}"
                )
            model = self._model(request.model_spec)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = model.name
            response.model_spec.version.value = model.version
            response.metadata["signature_def"].Pack(model.signature_defs)
            return response
        except Exception as exc:
            self._abort(context, exc)


class ModelServicer(_GrpcBase, model_service_pb2_grpc.ModelServiceServicer):
    """`tensorflow.serving.ModelService.GetModelStatus`.

    Args:
        repository: The models to serve.
    """

    def GetModelStatus(self, request, context):  # noqa: N802
        try:
            spec = request.model_spec
            version = spec.version.value if spec.HasField("version") else None
            return self.repository.status(spec.name, version)
        except Exception as exc:
            self._abort(context, exc)


def make_grpc_server(
    repository: ModelRepository,
    max_message_bytes: int,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> grpc.Server:
    """A gRPC server with both services added; the caller adds a port and starts it.

    Args:
        repository: The models to serve.
        max_message_bytes: Largest request and response message.
        max_image_pixels: Most pixels one encoded image may have by its header. Defaults to
            4096 * 4096.

    Returns:
        The `grpc.Server`, not yet bound or started.
    """
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="grpc"),
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(repository, max_image_pixels), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(repository), server)
    return server
