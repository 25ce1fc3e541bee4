"""`i2dl serve` under load: requests per second and latency, batching on and off.

Run: `python benchmarks/serve.py [--root saved_models] [--seconds 20] [--clients 8]`

Without `--root` (or when it holds no digits export) a digits model is trained on the builtin
data with the default recipe for `--epochs` epochs and exported into a temporary folder. The
clients send one PNG digit per request (8x8 scikit-learn digits scaled to 28x28, encoded once
up front) in a closed loop for `--seconds` each, in these setups, one after the other:

- `in-process`: the clients call the SavedModel's `serving_default` signature directly in this
  process (`tf.saved_model.load`), one image per call: no HTTP, no JSON, no batching;
- `in-process, batches of N`: one thread calls the same signature with N images at once (N =
  `--clients`), each image counted as a request: what batching gains at the model alone, with
  no HTTP, JSON or waiting for company. It bounds the gain batching can bring the server;
- `REST, batching off`: `i2dl serve --no-batching` in its own process; one model call per request;
- `REST, batching on`: `i2dl serve` with its defaults (up to 32 rows, no waiting window, one
  batch thread: a batch is what queued while the model was busy);
- `gRPC, batching on`: the official `PredictionService` stub against the same server.

Every answer is checked against the in-process prediction for its image. Printed: requests,
requests per second, p50 and p99 latency and server CPU per request for each setup, the
throughput ratio of batching on to off, and the ratio at the model alone. The clients share the
machine with the server, so the absolute numbers say as much about the machine as the server.
On 2 CPU cores expect batching on to serve about 1.3x the requests of batching off, short of 3x:
HTTP, JSON and base64 cost more than the model call for this small model.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _report import record  # noqa: E402


def digit_pngs(count: int, size: int = 28) -> tuple[list[bytes], np.ndarray]:
    """PNG bytes of scikit-learn digits (white on black, as MNIST) and their labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images[:count] * (255.0 / 16.0)).astype(np.uint8)[..., None]
    resized = tf.image.resize(images, [size, size], method="bilinear").numpy()
    pngs = [tf.io.encode_png(np.clip(im, 0, 255).astype(np.uint8)).numpy() for im in resized]
    return pngs, data.target[:count]


def ensure_export(root: Path | None, epochs: int) -> Path:
    if root is not None and list(root.glob("digits/serving/*/saved_model.pb")):
        return root
    from i2dl_keras.apps import cli

    out = Path(tempfile.mkdtemp(prefix="i2dl-serve-bench-"))
    print(f"training a digits model ({epochs} epoch(s), builtin data) into {out}")
    assert cli.main(["digits", "train", "--epochs", str(epochs), "--output-dir", str(out)]) == 0
    (run,) = (out / "digits").glob("run-*")
    assert cli.main(["digits", "export", "--model", str(run)]) == 0
    return out


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux), else `None`."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def closed_loop(clients: int, seconds: float, request, pid: int | None = None) -> dict:
    """Each client calls `request(i)` back to back; returns latencies and failures."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures = [0] * clients
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(k: int) -> None:
        call = request()
        start.wait()
        i = k
        while time.perf_counter() < stop_at[0]:
            began = time.perf_counter()
            try:
                ok = call(i)
            except Exception:  # count it, reconnect, go on
                ok, call = False, request()
            latencies[k].append(time.perf_counter() - began)
            failures[k] += not ok
            i += clients

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    cpu_before = cpu_seconds(pid or os.getpid())
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    cpu_after = cpu_seconds(pid or os.getpid())
    flat = np.array([x for per in latencies for x in per]) * 1000.0
    return {
        "requests": len(flat),
        "rps": len(flat) / elapsed,
        "p50": float(np.percentile(flat, 50)) if len(flat) else float("nan"),
        "p99": float(np.percentile(flat, 99)) if len(flat) else float("nan"),
        "failures": sum(failures),
        # The serving process's CPU per request (in-process: the clients' own process).
        "cpu_ms": (cpu_after - cpu_before) * 1000.0 / max(1, len(flat))
        if cpu_before is not None and cpu_after is not None
        else float("nan"),
    }


def start_server(root: Path, extra: list[str]) -> tuple[subprocess.Popen, str, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    argv = [
        sys.executable,
        "-m",
        "i2dl_keras.apps",
        "serve",
        str(root),
        "--port",
        "0",
        "--grpc-port",
        "0",
    ]
    proc = subprocess.Popen(
        argv + extra,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
    )
    lines = []
    for line in proc.stdout:
        lines.append(line)
        match = re.search(r"REST on http://([^,;\s]+), gRPC on (\S+?);", line)
        if match:
            proc.log = []  # the server's later lines (its batching statistics at shutdown)
            drain = threading.Thread(target=lambda: proc.log.extend(proc.stdout), daemon=True)
            drain.start()
            proc.drain = drain
            return proc, match.group(1), match.group(2)
    raise RuntimeError("the server did not start:\n" + "".join(lines[-20:]))


def stop_server(proc: subprocess.Popen) -> list[str]:
    """Stops the server; returns its batching statistics."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.drain.join(timeout=5)
    return [line.strip() for line in proc.log if "model calls" in line]


def rest_client(address: str, bodies: list[bytes], expected: np.ndarray):
    host, port = address.rsplit(":", 1)

    def make():
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        headers = {"Content-Type": "application/json"}

        def call(i: int) -> bool:
            n = i % len(bodies)
            conn.request("POST", "/v1/models/digits:predict", body=bodies[n], headers=headers)
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200:
                return False
            return json.loads(payload)["predictions"][0]["class_ids"] == expected[n]

        return call

    return make


def grpc_client(target: str, pngs: list[bytes], expected: np.ndarray):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    requests = []
    for png in pngs:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "digits"
        request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([png]))
        requests.append(request)

    def make():
        stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))

        def call(i: int) -> bool:
            n = i % len(requests)
            try:
                response = stub.Predict(requests[n], timeout=60)
            except grpc.RpcError:
                return False
            return response.outputs["class_ids"].int64_val[0] == expected[n]

        return call

    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="folder with digits exported")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2, help="when a model must be trained")
    parser.add_argument(
        "--only", nargs="*", default=None, help="setups to run: inprocess rest-off rest-on grpc"
    )
    args = parser.parse_args()

    root = ensure_export(args.root, args.epochs)
    version = max(int(p.name) for p in root.glob("digits/serving/*") if p.name.isdigit())
    model_dir = root / "digits" / "serving" / str(version)
    pngs, labels = digit_pngs(200)
    signature = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    expected = signature(image_bytes=tf.constant(pngs))["class_ids"].numpy()
    print(
        f"model {model_dir}; {len(pngs)} PNG digits, the model gets "
        f"{np.mean(expected == labels):.0%} of them right; {args.clients} clients, "
        f"{args.seconds:g} s per setup, {os.cpu_count()} CPU cores"
    )
    bodies = [
        json.dumps({"instances": [{"b64": base64.b64encode(p).decode()}]}).encode() for p in pngs
    ]
    wanted = set(args.only or ["inprocess", "rest-off", "rest-on", "grpc"])
    batched_label = f"in-process, batches of {args.clients}"
    results, notes = {}, []

    if "inprocess" in wanted:

        def direct():
            def call(i: int) -> bool:
                n = i % len(pngs)
                out = signature(image_bytes=tf.constant([pngs[n]]))
                return int(out["class_ids"][0]) == expected[n]

            return call

        closed_loop(args.clients, 1.0, direct)  # warm up
        results["in-process SavedModel"] = closed_loop(args.clients, args.seconds, direct)

        def batched():
            def call(i: int) -> bool:
                rows = [(i * args.clients + k) % len(pngs) for k in range(args.clients)]
                out = signature(image_bytes=tf.constant([pngs[n] for n in rows]))
                return bool(np.all(out["class_ids"].numpy() == expected[rows]))

            return call

        closed_loop(1, 1.0, batched)
        one = closed_loop(1, args.seconds, batched)
        # One call answers `clients` images: count each as a request, each waits the call.
        one["requests"] *= args.clients
        one["rps"] *= args.clients
        one["failures"] *= args.clients
        one["cpu_ms"] /= args.clients
        results[batched_label] = one

    for key, label, flags in (
        ("rest-off", "REST, batching off", ["--no-batching"]),
        ("rest-on", "REST, batching on", []),
    ):
        if key not in wanted and not (key == "rest-on" and "grpc" in wanted):
            continue
        proc, address, target = start_server(root, flags)
        try:
            if key in wanted:
                make = rest_client(address, bodies, expected)
                closed_loop(args.clients, 1.0, make)
                results[label] = closed_loop(args.clients, args.seconds, make, proc.pid)
            if key == "rest-on" and "grpc" in wanted:
                make = grpc_client(target, pngs, expected)
                closed_loop(args.clients, 1.0, make)
                results["gRPC, batching on"] = closed_loop(
                    args.clients, args.seconds, make, proc.pid
                )
        finally:
            notes.extend(stop_server(proc))

    print()
    print(
        f"{'setup':<24}{'requests':>10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}"
        f"{'CPU ms/req':>12}{'wrong':>8}"
    )
    for label, r in results.items():
        print(
            f"{label:<24}{r['requests']:>10}{r['rps']:>10.1f}{r['p50']:>10.2f}"
            f"{r['p99']:>10.2f}{r['cpu_ms']:>12.2f}{r['failures']:>8}"
        )
    for note in notes:
        print(f"server: {note}")
    if "REST, batching on" in results and "REST, batching off" in results:
        ratio = results["REST, batching on"]["rps"] / results["REST, batching off"]["rps"]
        print(f"\nbatching on / off throughput: {ratio:.2f}x (target: 3x or more)")
        ceiling = None
        if batched_label in results:
            ceiling = results[batched_label]["rps"] / results["in-process SavedModel"]["rps"]
            print(
                f"at the model alone, batches of {args.clients} / single images: {ceiling:.2f}x "
                "(the most batching can gain here)"
            )
        record(
            "serve",
            f"REST req/s, batching on ({args.clients} clients)",
            f"{results['REST, batching on']['rps']:.0f}/s",
            ">= 3x batching off",
            ratio >= 3,
            reference=f"batching off {results['REST, batching off']['rps']:.0f}/s"
            + (f"; model alone {ceiling:.1f}x" if ceiling else ""),
            ratio=f"{ratio:.2f}x",
        )


if __name__ == "__main__":
    main()
