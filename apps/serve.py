"""`i2dl serve [ROOT]`: TF Serving's REST and gRPC APIs for every model exported under ROOT.

`i2dl APP export` writes SavedModels in TF Serving's layout, `ROOT/APP/serving/N/`; this serves
each `APP` under the model name `APP` (its newest version by default) and speaks TF Serving's own
APIs, so a client written for TF Serving works unchanged, and the same folder can be handed to the
real `tensorflow/serving` image instead:

- REST (FastAPI on uvicorn, `--port`, default 8501): `GET /v1/models/NAME[/versions/N]` (version
  status), `GET /v1/models/NAME[/versions/N]/metadata` (signature defs) and
  `POST /v1/models/NAME[/versions/N]:predict` with `{"instances": [...]}` (row format, answered
  with `{"predictions": ...}`) or `{"inputs": ...}` (columnar, answered with `{"outputs": ...}`),
  an optional `"signature_name"`, and `{"b64": "..."}` wherever a value is bytes.
- gRPC (`grpcio`, `--grpc-port`, default 8500): `tensorflow.serving.PredictionService` `Predict`
  and `GetModelMetadata`, and `ModelService.GetModelStatus`, from the official
  `tensorflow-serving-api` protos.

A malformed request (bad JSON, wrong shape or dtype, unknown model, version or signature, a body
over `--max-body-mb`) is answered with TF Serving's `{"error": "..."}` and a 4xx status (a gRPC
`INVALID_ARGUMENT` / `NOT_FOUND`); the server keeps serving. ROOT is polled every
`--poll-seconds`: a newly exported version is loaded beside the old one and takes over once it is
ready, without a restart. Concurrent requests for the same signature are grouped into one model
call (up to `--max-batch-size` rows, waiting at most `--batch-timeout-ms` for company), which is
what makes a small model's throughput rise under load; `--no-batching` calls the model once per
request.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import collections
import concurrent.futures
import dataclasses
import json
import logging
import queue
import re
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from google.protobuf import json_format
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

logger = logging.getLogger("i2dl")

DEFAULT_SIGNATURE = "serving_default"
# Large enough for a batch of a few hundred images as JSON; TF Serving's gRPC default is 4 MiB.
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
# JSON bodies above this size are parsed off the event loop so small requests are not held up.
_PARSE_INLINE_BYTES = 256 * 1024

_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.INTERNAL: 500,
}


class ServingError(Exception):
    """A request that cannot be answered; carries the gRPC code (and so the HTTP status)."""

    def __init__(self, message: str, code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT):
        super().__init__(message)
        self.message = message
        self.code = code

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS.get(self.code, 500)


def _not_found(message: str) -> ServingError:
    return ServingError(message, grpc.StatusCode.NOT_FOUND)


# --------------------------------------------------------------------------- models


@dataclasses.dataclass
class Signature:
    """One signature of a loaded SavedModel: its function and the specs of its tensors."""

    name: str
    fn: Any
    inputs: dict[str, tf.TensorSpec]
    outputs: dict[str, tf.TensorSpec]

    @property
    def batchable(self) -> bool:
        """Whether requests can be concatenated on axis 0 and the outputs split back."""
        specs = [*self.inputs.values(), *self.outputs.values()]
        return all(s.shape.rank and s.shape[0] is None for s in specs)

    def check(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Raises `ServingError` unless `arrays` names exactly this signature's inputs."""
        missing = sorted(set(self.inputs) - set(arrays))
        unknown = sorted(set(arrays) - set(self.inputs))
        if missing or unknown:
            raise ServingError(
                f"signature {self.name!r} takes the input(s) {sorted(self.inputs)}; "
                + (f"missing {missing}" if missing else "")
                + ("; " if missing and unknown else "")
                + (f"unknown {unknown}" if unknown else "")
            )
        for key, value in arrays.items():
            _check_shape(value, self.inputs[key], key)

    def call(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs the signature on checked arrays; TF's argument errors become `ServingError`."""
        tensors = {k: tf.constant(v, dtype=self.inputs[k].dtype) for k, v in arrays.items()}
        try:
            outputs = self.fn(**tensors)
        except tf.errors.InvalidArgumentError as exc:
            raise ServingError(exc.message) from None
        except tf.errors.OpError as exc:
            raise ServingError(exc.message, grpc.StatusCode.INTERNAL) from None
        return {k: v.numpy() for k, v in outputs.items()}


def _shape_text(shape: tf.TensorShape) -> str:
    if shape.rank is None:
        return "any"
    return "[" + ", ".join("-1" if d is None else str(d) for d in shape.as_list()) + "]"


def _check_shape(value: np.ndarray, spec: tf.TensorSpec, name: str) -> None:
    want = spec.shape
    if want.rank is None:
        return
    if value.ndim != want.rank or any(
        w is not None and w != g for w, g in zip(want.as_list(), value.shape)
    ):
        raise ServingError(
            f"input {name!r} expects shape {_shape_text(want)} (-1: any size), "
            f"got {list(value.shape)}"
        )


class _Job:
    __slots__ = ("arrays", "rows", "key", "future")

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays
        self.rows = next(iter(arrays.values())).shape[0] if arrays else 0
        # Only requests whose inputs agree beyond the batch axis can share one model call.
        self.key = tuple((k, v.dtype.str, v.shape[1:]) for k, v in sorted(arrays.items()))
        self.future: concurrent.futures.Future = concurrent.futures.Future()


_STOP = object()


class Batcher:
    """Groups concurrent requests for one signature into one call of its function.

    A batch thread takes the first waiting request, then keeps taking requests that arrive
    within `timeout` seconds (and all that are already waiting) until `max_batch_size` rows are
    gathered, concatenates them on axis 0, calls the model once and splits the outputs back.
    With `num_threads` batch threads (TF Serving's `num_batch_threads`), the next batch gathers,
    and runs, while the previous one is still in the model.
    The window is only waited for while requests have recently been arriving together, so a
    lone client sees no added latency. If a batched call fails (one bad image among good ones),
    each request is rerun alone so that only the bad one gets the error.
    """

    def __init__(
        self, signature: Signature, max_batch_size: int, timeout: float, num_threads: int = 1
    ):
        self.signature = signature
        self.max_batch_size = max_batch_size
        self.timeout = timeout
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        # Requests answered and model calls made, for the log line at shutdown.
        self.requests = 0
        self.calls = 0
        # A running average of how many requests were waiting together.
        self._concurrency = 1.0
        self._threads = [
            threading.Thread(
                target=self._loop, name=f"i2dl-batcher-{signature.name}-{i}", daemon=True
            )
            for i in range(num_threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, arrays: dict[str, np.ndarray]) -> concurrent.futures.Future:
        job = _Job(arrays)
        with self._lock:
            if not self._closed:
                self._queue.put(job)
                return job.future
        # Unloaded between lookup and submit: answer in the caller's thread.
        self._run([job])
        return job.future

    def close(self) -> None:
        """Answers what is queued, then ends the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for _ in self._threads:
                self._queue.put(_STOP)

    def _loop(self) -> None:
        pending: collections.deque[_Job] = collections.deque()
        stopping = False
        while True:
            if pending:
                first = pending.popleft()
            elif stopping:
                return
            else:
                first = self._queue.get()
                if first is _STOP:
                    return
            batch, rows = [first], first.rows
            for job in list(pending):
                if rows >= self.max_batch_size:
                    break
                if job.key == first.key and rows + job.rows <= self.max_batch_size:
                    pending.remove(job)
                    batch.append(job)
                    rows += job.rows
            # Wait for company only while requests have been arriving together: a lone
            # client's request runs at once instead of paying the window every time.
            window = self.timeout if self._concurrency >= 1.5 else 0.0
            deadline = time.monotonic() + window
            while rows < self.max_batch_size and not stopping:
                remaining = deadline - time.monotonic()
                try:
                    if remaining > 0:
                        job = self._queue.get(timeout=remaining)
                    else:
                        job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is _STOP:
                    stopping = True
                elif job.key == first.key and rows + job.rows <= self.max_batch_size:
                    batch.append(job)
                    rows += job.rows
                else:
                    pending.append(job)
            self._concurrency = 0.8 * self._concurrency + 0.2 * (len(batch) + len(pending))
            self._run(batch)

    def _run(self, batch: list[_Job]) -> None:
        # A client that went away cancelled its future: leave it out.
        batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
        if not batch:
            return
        with self._lock:
            self.requests += len(batch)
            self.calls += 1
        try:
            if len(batch) == 1:
                results = [self.signature.call(batch[0].arrays)]
            else:
                merged = {
                    k: np.concatenate([job.arrays[k] for job in batch]) for k in batch[0].arrays
                }
                outputs = self.signature.call(merged)
                total = sum(job.rows for job in batch)
                if any(v.shape[:1] != (total,) for v in outputs.values()):
                    raise RuntimeError("an output does not have one row per input row")
                results, start = [], 0
                for job in batch:
                    results.append({k: v[start : start + job.rows] for k, v in outputs.items()})
                    start += job.rows
        except Exception as exc:
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            for job in batch:
                retry = _Job(job.arrays)
                self._run([retry])
                _copy_outcome(retry.future, job.future)
            return
        for job, result in zip(batch, results):
            job.future.set_result(result)


def _copy_outcome(source: concurrent.futures.Future, target: concurrent.futures.Future) -> None:
    exc = source.exception()
    if exc is not None:
        target.set_exception(exc)
    else:
        target.set_result(source.result())


def read_signature_defs(path: str | Path) -> get_model_metadata_pb2.SignatureDefMap:
    """The signature defs of the SavedModel at `path`, as TF Serving reports them."""
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((Path(path) / "saved_model.pb").read_bytes())
    result = get_model_metadata_pb2.SignatureDefMap()
    for name, signature_def in saved_model.meta_graphs[0].signature_def.items():
        result.signature_def[name].CopyFrom(signature_def)
    return result


class ModelVersion:
    """One loaded version of one model, with a batcher per signature when batching is on."""

    def __init__(
        self,
        name: str,
        version: int,
        path: Path,
        batching: bool = True,
        max_batch_size: int = 32,
        batch_timeout: float = 0.0,
        num_batch_threads: int = 1,
    ):
        self.name = name
        self.version = version
        self.path = path
        self.signature_defs = read_signature_defs(path)
        self._loaded = tf.saved_model.load(str(path))
        self.signatures: dict[str, Signature] = {}
        for key, fn in self._loaded.signatures.items():
            _, kwargs = fn.structured_input_signature
            self.signatures[key] = Signature(key, fn, dict(kwargs), dict(fn.structured_outputs))
        self._batchers = {
            key: Batcher(sig, max_batch_size, batch_timeout, num_batch_threads)
            for key, sig in self.signatures.items()
            if batching and max_batch_size > 1 and sig.batchable
        }

    def signature(self, name: str) -> Signature:
        name = name or DEFAULT_SIGNATURE
        if name not in self.signatures:
            raise ServingError(
                f'Serving signature name: "{name}" not found in signature def; model '
                f"{self.name!r} version {self.version} has {sorted(self.signatures)}"
            )
        return self.signatures[name]

    def submit(self, signature: Signature, arrays: dict[str, np.ndarray]):
        """Returns a future of the outputs: batched with others when possible."""
        batcher = self._batchers.get(signature.name)
        if batcher is not None:
            return batcher.submit(arrays)
        return None

    def predict(self, signature: Signature, arrays: dict[str, np.ndarray]) -> dict:
        """Blocking prediction (from a worker thread)."""
        future = self.submit(signature, arrays)
        if future is None:
            return signature.call(arrays)
        return future.result()

    def close(self) -> None:
        for name, batcher in self._batchers.items():
            batcher.close()
            if batcher.calls:
                logger.info(
                    "%s version %d %s: %d requests in %d model calls (%.1f per call)",
                    self.name,
                    self.version,
                    name,
                    batcher.requests,
                    batcher.calls,
                    batcher.requests / batcher.calls,
                )


_State = get_model_status_pb2.ModelVersionStatus.State


class ModelRepository:
    """The models under `root` (`root/NAME/serving/N/`), kept in step with the folder.

    `scan()` loads new versions and unloads old ones: for each model the newest `num_versions`
    versions that load are served (`0`: all of them). A version that fails to load is reported
    in the model's status and retried only when its `saved_model.pb` changes; the versions
    already loaded go on serving meanwhile.
    """

    def __init__(
        self,
        root: str | Path,
        num_versions: int = 1,
        batching: bool = True,
        max_batch_size: int = 32,
        batch_timeout: float = 0.0,
        num_batch_threads: int = 1,
    ):
        self.root = Path(root)
        self.num_versions = num_versions
        self._options = dict(
            batching=batching,
            max_batch_size=max_batch_size,
            batch_timeout=batch_timeout,
            num_batch_threads=num_batch_threads,
        )
        self._models: dict[str, dict[int, ModelVersion]] = {}
        self._failed: dict[Path, tuple[float, str]] = {}
        self._scan_lock = threading.Lock()

    def discover(self) -> dict[str, dict[int, Path]]:
        found: dict[str, dict[int, Path]] = {}
        if not self.root.is_dir():
            return found
        for path in self.root.glob("*/serving/*/saved_model.pb"):
            version_dir = path.parent
            if version_dir.name.isdigit() and int(version_dir.name) > 0:
                name = version_dir.parent.parent.name
                found.setdefault(name, {})[int(version_dir.name)] = version_dir
        return found

    def scan(self) -> list[str]:
        """Brings the loaded versions in line with the folder; returns what changed, in words."""
        with self._scan_lock:
            changes = []
            current = self._models
            updated: dict[str, dict[int, ModelVersion]] = {}
            for name, versions in sorted(self.discover().items()):
                loaded = current.get(name, {})
                keep: dict[int, ModelVersion] = {}
                for version in sorted(versions, reverse=True):
                    if self.num_versions and len(keep) >= self.num_versions:
                        break
                    if version in loaded:
                        keep[version] = loaded[version]
                        continue
                    model = self._load(name, version, versions[version])
                    if model is not None:
                        keep[version] = model
                        changes.append(f"loaded {name} version {version} from {model.path}")
                if keep:
                    updated[name] = keep
            self._models = updated
            for name, loaded in current.items():
                for version, model in loaded.items():
                    if version not in updated.get(name, {}):
                        model.close()
                        changes.append(f"unloaded {name} version {version}")
            return changes

    def _load(self, name: str, version: int, path: Path) -> ModelVersion | None:
        try:
            stamp = (path / "saved_model.pb").stat().st_mtime
        except OSError:
            return None
        failed = self._failed.get(path)
        if failed is not None and failed[0] == stamp:
            return None
        try:
            model = ModelVersion(name, version, path, **self._options)
        except Exception as exc:  # a broken export must not stop the others being served
            message = f"{type(exc).__name__}: {exc}"
            self._failed[path] = (stamp, message)
            logger.warning("could not load %s version %d from %s: %s", name, version, path, message)
            return None
        self._failed.pop(path, None)
        return model

    @property
    def models(self) -> dict[str, dict[int, ModelVersion]]:
        return self._models

    def get(self, name: str, version: int | None = None) -> ModelVersion:
        versions = self._models.get(name)
        if version is None:
            if not versions:
                raise _not_found(
                    f"Servable not found for request: Latest({name}); serving "
                    f"{sorted(self._models) or 'no models'} from {self.root}"
                )
            return versions[max(versions)]
        if not versions or version not in versions:
            raise _not_found(
                f"Servable not found for request: Specific({name}, {version}); "
                f"loaded versions of {name!r}: {sorted(versions or {})}"
            )
        return versions[version]

    def status(self, name: str, version: int | None = None):
        """A `GetModelStatusResponse` for the model (or one version of it)."""
        response = get_model_status_pb2.GetModelStatusResponse()
        versions = dict(self._models.get(name, {}))
        entries: dict[int, tuple[int, str]] = {v: (_State.AVAILABLE, "") for v in versions}
        newest = max(versions, default=0)
        for path, (_, message) in self._failed.items():
            if path.parent.parent.name == name and int(path.name) > newest:
                entries[int(path.name)] = (_State.END, message)
        if version is not None:
            entries = {v: e for v, e in entries.items() if v == version}
        if not entries:
            what = f"version {version} of model" if version is not None else "any versions of"
            raise _not_found(f"Could not find {what} {name}")
        for number, (state, message) in sorted(entries.items(), reverse=True):
            item = response.model_version_status.add()
            item.version = number
            item.state = state
            item.status.SetInParent()  # TF Serving shows `"error_code": "OK"` too
            if message:
                item.status.error_code = 2  # tensorflow.error.UNKNOWN
                item.status.error_message = message
        return response

    def close(self) -> None:
        for versions in self._models.values():
            for model in versions.values():
                model.close()


# --------------------------------------------------------------------------- REST


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
                f"{_shape_text(spec.shape)})"
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
    _check_shape(array, spec, name)
    return array


_DTYPE_WORDS = {"f": "numbers", "i": "integers", "u": "non-negative integers", "b": "booleans"}


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


def parse_predict_request(payload: Any, model: ModelVersion) -> tuple[Signature, dict, bool]:
    """Returns `(signature, input arrays, row_format)` for a REST predict body."""
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
    signature.check(arrays)
    if has_rows and len({a.shape[0] for a in arrays.values()}) > 1:
        raise ServingError("the inputs of the instances have different batch sizes")
    return signature, arrays, has_rows


def _is_named(value: Any) -> bool:
    """Whether a JSON value is an object of named inputs rather than one (`b64`) value."""
    return isinstance(value, dict) and set(value) != {"b64"}


def format_predict_response(outputs: Mapping[str, np.ndarray], row_format: bool) -> dict:
    """TF Serving's response: `predictions` (one item per instance) or `outputs`."""
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


def _model_version(version: str | None, label: str | None) -> int | None:
    if label is not None:
        raise _not_found(f"version labels are not supported by i2dl serve (got {label!r})")
    return int(version) if version is not None else None


def make_rest_app(
    repository: ModelRepository,
    batching: bool = True,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """The FastAPI application answering TF Serving's REST API from `repository`."""
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
            raise _not_found(f"Malformed request: GET /v1/models/{path}")
        name, version, label, metadata = match.groups()
        number = _model_version(version, label)
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
            raise _not_found(f"Malformed request: POST /v1/models/{path}")
        name, version, label, verb = match.groups()
        if verb != "predict":
            raise ServingError(
                f"{verb!r} is not supported by i2dl serve: use ':predict' (the exports have "
                "predict signatures only)"
            )
        model = repository.get(name, _model_version(version, label))
        body = await _read_body(request, max_body_bytes)
        if len(body) > _PARSE_INLINE_BYTES:
            signature, arrays, rows = await run_in_threadpool(_parse_body, body, model)
        else:
            signature, arrays, rows = _parse_body(body, model)
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


def _parse_body(body: bytes, model: ModelVersion):
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ServingError(f"JSON Parse error: {exc}") from None
    return parse_predict_request(payload, model)


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


# --------------------------------------------------------------------------- gRPC


def _dtype_name(enum: int) -> str:
    return types_pb2.DataType.Name(enum) if enum in types_pb2.DataType.values() else str(enum)


class _GrpcBase:
    def __init__(self, repository: ModelRepository):
        self.repository = repository

    def _model(self, spec) -> ModelVersion:
        if spec.version_label:
            _model_version(None, spec.version_label)
        version = spec.version.value if spec.HasField("version") else None
        return self.repository.get(spec.name, version)

    @staticmethod
    def _abort(context, exc: Exception):
        if isinstance(exc, ServingError):
            context.abort(exc.code, exc.message)
        logger.exception("gRPC request failed")
        context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")


class PredictionServicer(_GrpcBase, prediction_service_pb2_grpc.PredictionServiceServicer):
    """`tensorflow.serving.PredictionService`: `Predict` and `GetModelMetadata`."""

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
            signature.check(arrays)
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
    """`tensorflow.serving.ModelService.GetModelStatus`."""

    def GetModelStatus(self, request, context):  # noqa: N802
        try:
            spec = request.model_spec
            version = spec.version.value if spec.HasField("version") else None
            return self.repository.status(spec.name, version)
        except Exception as exc:
            self._abort(context, exc)


# --------------------------------------------------------------------------- the server


class ModelServer:
    """REST and gRPC front ends over one `ModelRepository`, with the folder polled for exports.

    Args:
        root: The folder of exports (`root/NAME/serving/N/`).
        host: Address both servers bind. Defaults to `"127.0.0.1"` (`0.0.0.0` for all).
        port: REST port; `0` picks a free one. Defaults to `8501`.
        grpc_port: gRPC port; `0` picks a free one, `None` turns gRPC off. Defaults to `8500`.
        batching: Group concurrent requests into one model call. Defaults to `True`.
        max_batch_size: Most rows in one grouped call. Defaults to `32`.
        batch_timeout_ms: How long a batch waits for more requests. Defaults to `0.0`: a batch
            takes what queued while the model was busy, TF Serving's advice for throughput.
        num_batch_threads: Batches gathered and run at once, per signature. Defaults to `1`.
        poll_seconds: How often `root` is checked for new versions; `0` never. Defaults to `1.0`.
        num_versions: Newest versions served per model; `0` all. Defaults to `1`.
        max_body_bytes: Largest request accepted. Defaults to 32 MiB.

    Example:

    ```python
    with ModelServer("saved_models", port=0, grpc_port=0) as server:
        print(server.rest_url)
    ```
    """

    def __init__(
        self,
        root: str | Path,
        host: str = "127.0.0.1",
        port: int = 8501,
        grpc_port: int | None = 8500,
        batching: bool = True,
        max_batch_size: int = 32,
        batch_timeout_ms: float = 0.0,
        num_batch_threads: int = 1,
        poll_seconds: float = 1.0,
        num_versions: int = 1,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ):
        self.root = Path(root)
        self.host = host
        self.port = port
        self.grpc_port = grpc_port
        self.poll_seconds = poll_seconds
        self.max_body_bytes = max_body_bytes
        self.repository = ModelRepository(
            root,
            num_versions=num_versions,
            batching=batching,
            max_batch_size=max_batch_size,
            batch_timeout=batch_timeout_ms / 1000.0,
            num_batch_threads=num_batch_threads,
        )
        self.app = make_rest_app(self.repository, batching=batching, max_body_bytes=max_body_bytes)
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._grpc: grpc.Server | None = None
        self._uvicorn: uvicorn.Server | None = None
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def rest_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def grpc_target(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.grpc_port}"

    def _prepare(self) -> list[str]:
        """Loads the models and binds both ports; returns what it loaded, in words."""
        changes = self.repository.scan()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when
        # the listening socket says so, and without it every response waits ~40 ms for an ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise OSError(f"cannot listen on {self.host}:{self.port} for REST: {exc}") from None
        # Listen now: connections made before uvicorn's loop runs wait in the backlog.
        sock.listen(2048)
        self._socket = sock
        self.port = sock.getsockname()[1]
        if self.grpc_port is not None:
            server = grpc.server(
                concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="grpc"),
                options=[
                    ("grpc.max_receive_message_length", self.max_body_bytes),
                    ("grpc.max_send_message_length", self.max_body_bytes),
                    ("grpc.so_reuseport", 0),
                ],
            )
            prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
                PredictionServicer(self.repository), server
            )
            model_service_pb2_grpc.add_ModelServiceServicer_to_server(
                ModelServicer(self.repository), server
            )
            host = f"[{self.host}]" if ":" in self.host else self.host
            try:
                bound = server.add_insecure_port(f"{host}:{self.grpc_port}")
            except RuntimeError:
                bound = 0
            if not bound:
                sock.close()
                raise OSError(f"cannot listen on {self.host}:{self.grpc_port} for gRPC")
            self.grpc_port = bound
            server.start()
            self._grpc = server
        if self.poll_seconds > 0:
            self._poller = threading.Thread(target=self._poll, name="i2dl-poll", daemon=True)
            self._poller.start()
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        self._uvicorn = uvicorn.Server(config)
        return changes

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                for change in self.repository.scan():
                    logger.info(change)
            except Exception:  # keep polling: the next scan may succeed
                logger.exception("scanning %s failed", self.root)

    def start(self, timeout: float = 30.0) -> ModelServer:
        """Starts serving in background threads; returns once both ports answer."""
        self._prepare()
        self._thread = threading.Thread(
            target=self._uvicorn.run,
            kwargs={"sockets": [self._socket]},
            name="i2dl-rest",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the REST server did not start")
            time.sleep(0.01)
        return self

    def serve_forever(self, echo=print) -> None:
        """Serves in this thread until SIGINT/SIGTERM, then shuts everything down."""
        for change in self._prepare():
            echo(change)
        if not self.repository.models:
            echo(
                f"no models in {self.root} yet (expected {self.root}/APP/serving/N/"
                "saved_model.pb); watching for exports"
            )
        for name, versions in self.repository.models.items():
            model = versions[max(versions)]
            echo(f"model {name!r}: version {model.version}, signatures {sorted(model.signatures)}")
        grpc_text = f", gRPC on {self.grpc_target}" if self._grpc is not None else ""
        echo(f"REST on {self.rest_url}{grpc_text}; Ctrl-C stops")
        try:
            self._uvicorn.run(sockets=[self._socket])
        finally:
            self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._grpc is not None:
            self._grpc.stop(grace=1).wait(5)
        if self._poller is not None:
            self._poller.join(timeout=5)
        if self._socket is not None:
            self._socket.close()
        self.repository.close()

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="i2dl serve",
        description="Serve every exported model under ROOT (ROOT/APP/serving/N/) with TF "
        "Serving's REST and gRPC APIs.",
    )
    parser.add_argument(
        "root",
        nargs="?",
        default="saved_models",
        metavar="ROOT",
        help="folder of exports (default: saved_models)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (0.0.0.0: all; default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=8501, help="REST port (0: any free port; default: 8501)"
    )
    parser.add_argument(
        "--grpc-port", type=int, default=8500, help="gRPC port (0: any free port; default: 8500)"
    )
    parser.add_argument("--no-grpc", action="store_true", help="serve REST only")
    parser.add_argument(
        "--batching",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="group concurrent requests into one model call (default: on)",
    )
    parser.add_argument(
        "--max-batch-size", type=int, default=32, help="most rows per grouped call (default: 32)"
    )
    parser.add_argument(
        "--batch-timeout-ms",
        type=float,
        default=0.0,
        help="how long a batch waits for more requests (default: 0, take what is queued)",
    )
    parser.add_argument(
        "--num-batch-threads",
        type=int,
        default=2,
        help="batches gathered and run at once, per signature (default: 1)",
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=1.0,
        help="how often ROOT is checked for new versions (0: never; default: 1)",
    )
    parser.add_argument(
        "--num-versions",
        type=int,
        default=1,
        help="newest versions served per model (0: all; default: 1)",
    )
    parser.add_argument(
        "--max-body-mb", type=float, default=32.0, help="largest request in MiB (default: 32)"
    )
    return parser


def main(argv: Sequence[str]) -> int:
    """`i2dl serve ...`; errors in the arguments raise `ValueError` (the CLI's exit status 2)."""
    args = build_parser().parse_args(list(argv))
    root = Path(args.root)
    if not root.is_dir():
        raise ValueError(
            f"{root}: no such folder; pass the folder that `i2dl APP export` writes to "
            "(saved_models by default)"
        )
    for flag, value, low in (
        ("--max-batch-size", args.max_batch_size, 1),
        ("--num-batch-threads", args.num_batch_threads, 1),
        ("--num-versions", args.num_versions, 0),
        ("--port", args.port, 0),
        ("--grpc-port", args.grpc_port, 0),
    ):
        if value < low:
            raise ValueError(f"{flag} must be at least {low}, got {value}")
    if args.batch_timeout_ms < 0 or args.poll_seconds < 0 or args.max_body_mb <= 0:
        raise ValueError("--batch-timeout-ms and --poll-seconds must be >= 0, --max-body-mb > 0")
    server = ModelServer(
        root,
        host=args.host,
        port=args.port,
        grpc_port=None if args.no_grpc else args.grpc_port,
        batching=args.batching,
        max_batch_size=args.max_batch_size,
        batch_timeout_ms=args.batch_timeout_ms,
        num_batch_threads=args.num_batch_threads,
        poll_seconds=args.poll_seconds,
        num_versions=args.num_versions,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
    )
    try:
        server.serve_forever(echo=lambda text: print(text, flush=True))
    except OSError as exc:
        raise ValueError(str(exc)) from None
    except KeyboardInterrupt:
        # uvicorn shuts down cleanly on Ctrl-C, then raises it again for the caller.
        pass
    print("stopped", flush=True)
    return 0
