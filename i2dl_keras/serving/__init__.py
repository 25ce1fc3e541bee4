"""A TF Serving-compatible server for the SavedModels that `i2dl APP export` writes.

`ModelServer` serves every model under a folder in TF Serving's layout (`ROOT/NAME/serving/N/`)
with TF Serving's REST API (FastAPI on uvicorn) and gRPC API (the official
`tensorflow-serving-api` protos), so a TF Serving client works unchanged:

- REST: `GET /v1/models/NAME[/versions/N]` (version status), `GET .../metadata` (signature
  defs) and `POST /v1/models/NAME[/versions/N]:predict` with `{"instances": [...]}` (row format,
  answered with `{"predictions": ...}`) or `{"inputs": ...}` (columnar, answered with
  `{"outputs": ...}`), an optional `"signature_name"`, and `{"b64": "..."}` for bytes.
- gRPC: `PredictionService.Predict` and `GetModelMetadata`, `ModelService.GetModelStatus`.

An encoded image is checked against `max_image_pixels` from its header before it is decoded,
and a JSON body nested deeper than 64 levels is refused before it is parsed.
A malformed request gets TF Serving's `{"error": "..."}` with a 4xx status (a gRPC
`INVALID_ARGUMENT` / `NOT_FOUND`), and the server keeps serving. `ModelRepository` polls the
folder and swaps in a new version without a restart; `Batcher` groups concurrent requests for
one signature into one model call. `i2dl serve` is `i2dl_keras.serving.cli.main`.
"""

from i2dl_keras.serving.batching import Batcher
from i2dl_keras.serving.errors import ServingError
from i2dl_keras.serving.grpc_service import ModelServicer, PredictionServicer, make_grpc_server
from i2dl_keras.serving.images import DEFAULT_MAX_IMAGE_PIXELS
from i2dl_keras.serving.repository import ModelRepository, ModelVersion, read_signature_defs
from i2dl_keras.serving.rest import (
    DEFAULT_MAX_BODY_BYTES,
    format_predict_response,
    make_rest_app,
    parse_predict_request,
)
from i2dl_keras.serving.server import ModelServer
from i2dl_keras.serving.signature import DEFAULT_SIGNATURE, Signature

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_IMAGE_PIXELS",
    "DEFAULT_SIGNATURE",
    "Batcher",
    "ModelRepository",
    "ModelServer",
    "ModelServicer",
    "ModelVersion",
    "PredictionServicer",
    "ServingError",
    "Signature",
    "format_predict_response",
    "make_grpc_server",
    "make_rest_app",
    "parse_predict_request",
    "read_signature_defs",
]
