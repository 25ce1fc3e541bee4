"""`ModelRepository`: the SavedModel versions under a folder, loaded and kept in step with it."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from i2dl_keras.serving.batching import Batcher
from i2dl_keras.serving.errors import ServingError, not_found
from i2dl_keras.serving.signature import DEFAULT_SIGNATURE, Signature

logger = logging.getLogger(__name__)

_State = get_model_status_pb2.ModelVersionStatus.State


def read_signature_defs(path: str | Path) -> get_model_metadata_pb2.SignatureDefMap:
    """The signature defs of the SavedModel at `path`, as TF Serving reports them."""
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((Path(path) / "saved_model.pb").read_bytes())
    result = get_model_metadata_pb2.SignatureDefMap()
    for name, signature_def in saved_model.meta_graphs[0].signature_def.items():
        result.signature_def[name].CopyFrom(signature_def)
    return result


def version_number(version: str | None, label: str | None) -> int | None:
    """The version a request names (`None`: the newest); version labels are `NOT_FOUND`."""
    if label:
        raise not_found(f"version labels are not supported by i2dl serve (got {label!r})")
    return int(version) if version is not None else None


class ModelVersion:
    """One loaded version of one model, with a batcher per signature when batching is on.

    Args:
        name: The model's name (its folder under the repository root).
        version: The version number (the name of its folder under `serving/`).
        path: The SavedModel folder.
        batching: Group concurrent requests into one model call. Defaults to `True`.
        max_batch_size: Most rows in one grouped call. Defaults to `32`.
        batch_timeout: Seconds a batch waits for more requests. Defaults to `0.0`.
        num_batch_threads: Batches gathered and run at once, per signature. Defaults to `1`.
    """

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

    @property
    def batchers(self) -> dict[str, Batcher]:
        """The batcher of each batched signature, by signature name."""
        return self._batchers

    def signature(self, name: str) -> Signature:
        """The signature `name` (`""`: `serving_default`); unknown names are a `ServingError`."""
        name = name or DEFAULT_SIGNATURE
        if name not in self.signatures:
            raise ServingError(
                f'Serving signature name: "{name}" not found in signature def; model '
                f"{self.name!r} version {self.version} has {sorted(self.signatures)}"
            )
        return self.signatures[name]

    def submit(self, signature: Signature, arrays: dict[str, np.ndarray]):
        """Returns a future of the outputs when the signature is batched, else `None`."""
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
        """Stops the batchers and logs how many requests each grouped per model call."""
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


class ModelRepository:
    """The models under `root` (`root/NAME/serving/N/`), kept in step with the folder.

    `scan()` loads new versions and unloads old ones: for each model the newest `num_versions`
    versions that load are served (`0`: all of them). A version that fails to load is reported
    in the model's status and retried only when its `saved_model.pb` changes; the versions
    already loaded go on serving meanwhile.

    Args:
        root: The folder of exports.
        num_versions: Newest versions served per model; `0` all. Defaults to `1`.
        batching: Group concurrent requests into one model call. Defaults to `True`.
        max_batch_size: Most rows in one grouped call. Defaults to `32`.
        batch_timeout: Seconds a batch waits for more requests. Defaults to `0.0`.
        num_batch_threads: Batches gathered and run at once, per signature. Defaults to `1`.

    Example:

    ```python
    repository = i2dl_keras.serving.ModelRepository("saved_models")
    repository.scan()
    model = repository.get("digits")  # the newest version
    ```
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
        """The version folders under `root` that hold a `saved_model.pb`, by model and number."""
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
        """The loaded versions, by model name and version number."""
        return self._models

    def get(self, name: str, version: int | None = None) -> ModelVersion:
        """The loaded `version` of `name` (`None`: the newest); else `ServingError` 404."""
        versions = self._models.get(name)
        if version is None:
            if not versions:
                raise not_found(
                    f"Servable not found for request: Latest({name}); serving "
                    f"{sorted(self._models) or 'no models'} from {self.root}"
                )
            return versions[max(versions)]
        if not versions or version not in versions:
            raise not_found(
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
            raise not_found(f"Could not find {what} {name}")
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
        """Stops every loaded version's batchers."""
        for versions in self._models.values():
            for model in versions.values():
                model.close()
