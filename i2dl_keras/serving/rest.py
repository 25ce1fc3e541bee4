"""TF Serving's REST API: the JSON codec of predict requests and the FastAPI application."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from google.protobuf import json_format
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from i2dl_keras.serving.errors import ServingError, not_found
from i2dl_keras.serving.images import DEFAULT_MAX_IMAGE_PIXELS
from i2dl_keras.serving.repository import ModelRepository, ModelVersion, version_number
from i2dl_keras.serving.signature import DEFAULT_SIGNATURE, Signature, check_shape, shape_text

logger = logging.getLogger(__name__)

# Large enough for a batch of a few hundred images as JSON; TF Serving's gRPC default is 4 MiB.
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
# JSON bodies above this size are parsed off the event loop so small requests are not held up.
_PARSE_INLINE_BYTES = 256 * 1024
# Deepest JSON nesting accepted; a predict body needs a handful of levels (object, instances,
# then one list per tensor axis), and the JSON decoder recurses once per level.
MAX_JSON_DEPTH = 64
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_BRACKET_STEP = np.zeros(256, np.int64)
_BRACKET_STEP[[ord("["), ord("{")]] = 1
_BRACKET_STEP[[ord("]"), ord("}")]] = -1
_DEPTH_CHUNK = 1 << 20

_DTYPE_WORDS = {"f": "numbers", "i": "integers", "u": "non-negative integers", "b": "booleans"}


def _json_strings(value: Any, name: str) -> tuple[list[int], list[bytes]]:
    """(shape, flat values) of nested lists of strings or `{"b64": ...}` objects."""
    if isinstance(value, list):
        if not value:
            return [0], []
        parts = [_json_strings(v, name) for v in value]
        shape = parts[0][0]
        if any(p[0] != shape for p in parts):
            raise ServingError(f"input {name!r}: nested lists of different lengths")
        return [len(value), *shape], [x for _, flat in parts for x in flat]
    if isinstance(value, str):
        try:
            return [], [value.encode("utf-8")]
        except UnicodeEncodeError:
            raise ServingError(f"input {name!r}: a string that is not valid UTF-8") from None
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        text = value["b64"]
        try:
            if "-" in text or "_" in text:
                return [], [base64.urlsafe_b64decode(text)]
            return [], [base64.b64decode(text, validate=True)]
        except (binascii.Error, ValueError):
            raise ServingError(f"input {name!r}: {{'b64': ...}} is not valid base64") from None
    raise ServingError(
        f'input {name!r} expects strings (or {{"b64": ...}} for bytes), got '
        f"{type(value).__name__} {_preview(value)}"
    )


def _preview(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _json_to_array(value: Any, spec: tf.TensorSpec, name: str) -> np.ndarray:
    """Converts a JSON value to an array of `spec`'s dtype and checks its shape."""
    dtype = spec.dtype
    if dtype == tf.string:
        shape, flat = _json_strings(value, name)
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
        array = array.reshape(shape)
    else:
        target = np.dtype(dtype.as_numpy_dtype)
        try:
            array = np.asarray(value)
        except (ValueError, TypeError):
            raise ServingError(
                f"input {name!r}: nested lists of different lengths (expected shape "
                f"{shape_text(spec.shape)})"
            ) from None
        kind = array.dtype.kind
        wanted = _DTYPE_WORDS.get(target.kind, target.name)
        if kind not in "biuf" or (kind == "b") != (target.kind == "b"):
            found = {"U": "strings", "O": "objects or mixed values", "b": "booleans"}.get(
                kind, "numbers"
            )
            raise ServingError(f"input {name!r} expects {wanted} ({dtype.name}), got {found}")
        if target.kind in "iu":
            if kind == "f" and not np.all(np.isfinite(array) & (np.mod(array, 1) == 0)):
                raise ServingError(
                    f"input {name!r} expects integers ({dtype.name}), got fractional numbers"
                )
            info = np.iinfo(target)
            if array.size and (array.min() < info.min or array.max() > info.max):
                raise ServingError(f"input {name!r}: a value out of the range of {dtype.name}")
        array = array.astype(target)
    check_shape(array, spec, name)
    return array


def _array_to_json(value: np.ndarray, name: str) -> Any:
    if value.dtype.kind in "OS":
        as_b64 = name.endswith("_bytes")

        def convert(item):
            if not as_b64:
                try:
                    return bytes(item).decode("utf-8")
                except UnicodeDecodeError:
                    pass
            return {"b64": base64.b64encode(bytes(item)).decode("ascii")}

        flat = np.empty(value.size, dtype=object)
        flat[:] = [convert(x) for x in value.reshape(-1)]
        return flat.reshape(value.shape).tolist()
    return value.tolist()


def parse_predict_request(
    payload: Any, model: ModelVersion, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
) -> tuple[Signature, dict, bool]:
    """Reads a REST predict body (decoded JSON) for `model`.

    Args:
        payload: The decoded body: `{"instances": [...]}` (row format) or `{"inputs": ...}`
            (columnar), with an optional `"signature_name"`; bytes as `{"b64": "..."}`.
        model: The model version the request is for.
        max_image_pixels: Most pixels one encoded image of an image input (a string input
            named like `image_bytes`) may have, by its header. Defaults to 4096 * 4096.

    Returns:
        `(signature, input arrays, row_format)`, the arrays checked against the signature.

    Raises:
        ServingError: If the body does not fit the signature (answered with HTTP 400).
    """
    if not isinstance(payload, dict):
        raise ServingError("the request body must be a JSON object")
    signature_name = payload.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(signature_name, str):
        raise ServingError("'signature_name' must be a string")
    signature = model.signature(signature_name)
    has_rows, has_columns = "instances" in payload, "inputs" in payload
    if has_rows == has_columns:
        raise ServingError(
            "Missing 'inputs' or 'instances' key"
            if not has_rows
            else "Only one of 'instances' (row format) or 'inputs' (columnar) may be given"
        )
    names = list(signature.inputs)
    if has_rows:
        instances = payload["instances"]
        if not isinstance(instances, list) or not instances:
            raise ServingError("'instances' must be a non-empty JSON list, one item per example")
        if len(names) == 1 and not any(_is_named(item) for item in instances):
            columns = {names[0]: instances}
        else:
            for i, item in enumerate(instances):
                if not _is_named(item) or set(item) != set(names):
                    raise ServingError(
                        f"instance {i} must be an object with the keys {sorted(names)} of "
                        f"signature {signature.name!r}"
                    )
            columns = {n: [item[n] for item in instances] for n in names}
    else:
        inputs = payload["inputs"]
        if len(names) == 1 and not _is_named(inputs):
            columns = {names[0]: inputs}
        elif _is_named(inputs) and set(inputs) == set(names):
            columns = inputs
        else:
            raise ServingError(
                f"'inputs' must be an object with the keys {sorted(names)} of signature "
                f"{signature.name!r}"
            )
    arrays = {key: _json_to_array(v, signature.inputs[key], key) for key, v in columns.items()}
    signature.check(arrays, max_image_pixels)
    if has_rows and len({a.shape[0] for a in arrays.values()}) > 1:
        raise ServingError("the inputs of the instances have different batch sizes")
    return signature, arrays, has_rows


def _is_named(value: Any) -> bool:
    """Whether a JSON value is an object of named inputs rather than one (`b64`) value."""
    return isinstance(value, dict) and set(value) != {"b64"}


def format_predict_response(outputs: Mapping[str, np.ndarray], row_format: bool) -> dict:
    """TF Serving's response body: `predictions` (one item per instance) or `outputs`.

    Bytes outputs whose name ends in `_bytes`, or that are not UTF-8, become `{"b64": ...}`.

    Args:
        outputs: The signature's outputs by name.
        row_format: Whether the request was in row format (`instances`).

    Returns:
        The JSON-ready response body.

    Raises:
        ServingError: If rows are asked for but the outputs differ in batch size.
    """
    converted = {k: _array_to_json(v, k) for k, v in outputs.items()}
    if not row_format:
        if len(converted) == 1:
            return {"outputs": next(iter(converted.values()))}
        return {"outputs": converted}
    if len(converted) == 1:
        return {"predictions": next(iter(converted.values()))}
    sizes = {np.shape(v)[0] if np.ndim(v) else None for v in outputs.values()}
    if len(sizes) != 1 or None in sizes:
        raise ServingError(
            "the outputs do not share a batch size, so they cannot be returned as rows; "
            "send 'inputs' (columnar) instead"
        )
    (rows,) = sizes
    return {"predictions": [{k: v[i] for k, v in converted.items()} for i in range(rows)]}


def _proto_json(message) -> dict:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _json_response(payload: Any, status: int = 200) -> Response:
    # TF Serving writes NaN and Infinity as they are; keep them rather than fail.
    return Response(json.dumps(payload), status_code=status, media_type="application/json")


def _error_response(message: str, status: int) -> Response:
    return _json_response({"error": message}, status)


_MODEL_PATH = re.compile(r"([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?")
_GET_PATH = re.compile(_MODEL_PATH.pattern + r"(/metadata)?")
_POST_PATH = re.compile(_MODEL_PATH.pattern + r":(\w+)")


def make_rest_app(
    repository: ModelRepository,
    batching: bool = True,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> FastAPI:
    """The FastAPI application answering TF Serving's REST API from `repository`.

    A body nested deeper than `MAX_JSON_DEPTH` (64) levels is refused before it is decoded.

    Args:
        repository: The models to serve.
        batching: Send predictions through the models' batchers. Defaults to `True`.
        max_body_bytes: Largest request body accepted (larger: HTTP 413). Defaults to 32 MiB.
        max_image_pixels: Most pixels one encoded image may have by its header (larger: HTTP
            400, before decoding). Defaults to 4096 * 4096.

    Returns:
        A FastAPI application, to run with any ASGI server.
    """
    app = FastAPI(title="i2dl serve", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(ServingError)
    async def _serving_error(request: Request, exc: ServingError):
        return _error_response(exc.message, exc.http_status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return _error_response(str(exc.detail), exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return _error_response(str(exc), 400)

    @app.get("/v1/models/{path:path}")
    async def get_model(path: str):
        match = _GET_PATH.fullmatch(path)
        if match is None:
            raise not_found(f"Malformed request: GET /v1/models/{path}")
        name, version, label, metadata = match.groups()
        number = version_number(version, label)
        if metadata:
            model = repository.get(name, number)
            return _json_response(
                {
                    "model_spec": {
                        "name": model.name,
                        "signature_name": "",
                        "version": str(model.version),
                    },
                    "metadata": {"signature_def": _proto_json(model.signature_defs)},
                }
            )
        return _json_response(_proto_json(repository.status(name, number)))

    @app.post("/v1/models/{path:path}")
    async def post_model(path: str, request: Request):
        match = _POST_PATH.fullmatch(path)
        if match is None:
            raise not_found(f"Malformed request: POST /v1/models/{path}")
        name, version, label, verb = match.groups()
        if verb != "predict":
            raise ServingError(
                f"{verb!r} is not supported by i2dl serve: use ':predict' (the exports have "
                "predict signatures only)"
            )
        model = repository.get(name, version_number(version, label))
        body = await _read_body(request, max_body_bytes)
        if len(body) > _PARSE_INLINE_BYTES:
            signature, arrays, rows = await run_in_threadpool(
                _parse_body, body, model, max_image_pixels
            )
        else:
            signature, arrays, rows = _parse_body(body, model, max_image_pixels)
        future = model.submit(signature, arrays) if batching else None
        try:
            if future is not None:
                outputs = await asyncio.wrap_future(future)
            else:
                outputs = await run_in_threadpool(signature.call, arrays)
        except ServingError:
            raise
        except Exception as exc:  # the model failed: answer, log, keep serving
            logger.exception("predict %s version %d failed", model.name, model.version)
            raise ServingError(f"{type(exc).__name__}: {exc}", grpc.StatusCode.INTERNAL) from None
        return _json_response(format_predict_response(outputs, rows))

    return app


def _parse_body(body: bytes, model: ModelVersion, max_image_pixels: int):
    depth = _json_depth(body)
    if depth > MAX_JSON_DEPTH:
        raise ServingError(
            f"the JSON body is nested {depth} levels deep, more than the limit of {MAX_JSON_DEPTH}"
        )
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ServingError(f"JSON Parse error: {exc}") from None
    return parse_predict_request(payload, model, max_image_pixels)


def _json_depth(body: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest, counted without recursion.

    Strings are cut out first so that brackets inside them do not count: with escaped
    backslashes and then escaped quotes removed, every other piece between quotes is outside a
    string. What remains is a run of brackets whose running sum of +1 (open) and -1 (close)
    peaks at the depth.
    """
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(body.split(b'"')[::2]).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for start in range(0, len(brackets), _DEPTH_CHUNK):
        chunk = np.frombuffer(brackets, np.uint8, min(_DEPTH_CHUNK, len(brackets) - start), start)
        running = depth + np.cumsum(_BRACKET_STEP[chunk])
        deepest = max(deepest, int(running.max()))
        depth = int(running[-1])
    return deepest


async def _read_body(request: Request, limit: int) -> bytes:
    def too_large(size: str) -> ServingError:
        return ServingError(
            f"the request body ({size}) is larger than the limit of {limit} bytes "
            "(--max-body-mb); send fewer instances per request",
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        )

    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large(f"{int(length)} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(f"over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
