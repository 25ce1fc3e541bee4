"""`ModelServer`: TF Serving's REST and gRPC APIs over one `ModelRepository`, in one process."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import uvicorn

from i2dl_keras.serving.grpc_service import make_grpc_server
from i2dl_keras.serving.images import DEFAULT_MAX_IMAGE_PIXELS
from i2dl_keras.serving.repository import ModelRepository
from i2dl_keras.serving.rest import DEFAULT_MAX_BODY_BYTES, make_rest_app

logger = logging.getLogger(__name__)


class ModelServer:
    """REST and gRPC front ends over one `ModelRepository`, with the folder polled for exports.

    REST is FastAPI on uvicorn, gRPC the official `tensorflow-serving-api` services; both answer
    from the same loaded models and batchers. A new version exported under `root` is loaded
    beside the old one by the poller and takes over once it is ready.

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
        max_image_pixels: Most pixels one encoded image (an item of a string input named like
            `image_bytes`) may have; checked on its header before decoding, larger is HTTP 400
            (`INVALID_ARGUMENT`). Defaults to 4096 * 4096, which a 12-megapixel photo fits.

    Example:

    ```python
    with i2dl_keras.serving.ModelServer("saved_models", port=0, grpc_port=0) as server:
        print(server.rest_url, server.grpc_target)
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
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    ):
        self.root = Path(root)
        self.host = host
        self.port = port
        self.grpc_port = grpc_port
        self.poll_seconds = poll_seconds
        self.max_body_bytes = max_body_bytes
        self.max_image_pixels = max_image_pixels
        self.repository = ModelRepository(
            root,
            num_versions=num_versions,
            batching=batching,
            max_batch_size=max_batch_size,
            batch_timeout=batch_timeout_ms / 1000.0,
            num_batch_threads=num_batch_threads,
        )
        self.app = make_rest_app(
            self.repository,
            batching=batching,
            max_body_bytes=max_body_bytes,
            max_image_pixels=max_image_pixels,
        )
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._grpc: grpc.Server | None = None
        self._uvicorn: uvicorn.Server | None = None
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def rest_url(self) -> str:
        """`http://HOST:PORT` of the REST API (the bound port once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def grpc_target(self) -> str:
        """`HOST:PORT` of the gRPC API, as `grpc.insecure_channel` takes it."""
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
            server = make_grpc_server(self.repository, self.max_body_bytes, self.max_image_pixels)
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
        """Starts serving in background threads; returns once both ports answer.

        Raises:
            OSError: If a port cannot be bound.
            RuntimeError: If the REST server does not start within `timeout` seconds.
        """
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

    def serve_forever(self, echo: Callable[[str], object] = print) -> None:
        """Serves in this thread until SIGINT/SIGTERM, then shuts everything down.

        Args:
            echo: Called with each line that reports the loaded models and the addresses.
                Defaults to `print`.

        Raises:
            OSError: If a port cannot be bound.
        """
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
        """Stops both servers and the poller, and closes the models' batchers."""
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
