"""`i2dl serve`: its flags agree with `ModelServer`, it serves until Ctrl-C, usage errors exit 2."""

import inspect
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from i2dl_keras.apps import cli
from i2dl_keras.serving import Batcher, ModelRepository, ModelServer, ModelVersion
from i2dl_keras.serving import cli as serving_cli


def test_flag_defaults_are_the_server_defaults():
    args = serving_cli.build_parser().parse_args([])
    assert args.num_batch_threads == 1
    server = inspect.signature(ModelServer).parameters
    for name in (
        "host",
        "port",
        "grpc_port",
        "batching",
        "max_batch_size",
        "batch_timeout_ms",
        "num_batch_threads",
        "poll_seconds",
        "num_versions",
        "max_image_pixels",
    ):
        assert getattr(args, name) == server[name].default, name
    assert args.max_body_mb * 1024 * 1024 == server["max_body_bytes"].default
    for cls in (ModelRepository, ModelVersion):
        assert inspect.signature(cls).parameters["num_batch_threads"].default == 1, cls
    assert inspect.signature(Batcher).parameters["num_threads"].default == 1


def test_i2dl_serve_command_serves_until_interrupted(exported, png, b64):
    out, _ = exported
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "i2dl_keras.apps",
            "serve",
            str(out),
            "--port",
            "0",
            "--grpc-port",
            "0",
        ],
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
            f"{url}/v1/models/digits:predict", json={"instances": [b64(png(7))]}, timeout=60
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


@pytest.mark.parametrize(
    "argv, message",
    [
        (["{missing}"], "no such folder"),
        (["{root}", "--port", "-1"], "--port must be at least 0, got -1"),
        (["{root}", "--port", "70000"], "--port must be a port number from 0 to 65535, got 70000"),
        (["{root}", "--num-batch-threads", "0"], "--num-batch-threads must be at least 1"),
        (["{root}", "--max-body-mb", "0"], "--max-body-mb > 0"),
        (["{root}", "--max-image-pixels", "0"], "--max-image-pixels must be at least 1, got 0"),
    ],
    ids=[
        "missing folder",
        "negative port",
        "port too large",
        "no batch threads",
        "no body",
        "no pixels",
    ],
)
def test_usage_errors_print_one_line_and_return_2(tmp_path, capsys, argv, message):
    argv = [a.format(missing=tmp_path / "nowhere", root=tmp_path) for a in argv]
    assert serving_cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("i2dl: error: ")
    assert message in captured.err


def test_a_port_that_is_taken_is_a_usage_error(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code = serving_cli.main([str(tmp_path), "--port", str(port), "--no-grpc"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port} for REST" in err


def test_bad_flag_types_return_argparse_status(tmp_path, capsys):
    assert serving_cli.main([str(tmp_path), "--port", "http"]) == 2
    assert "--port: invalid int value: 'http'" in capsys.readouterr().err
    assert serving_cli.main(["--help"]) == 0
    assert "--num-batch-threads" in capsys.readouterr().out
