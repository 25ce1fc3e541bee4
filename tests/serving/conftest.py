"""Exports of tiny digits and sentiment models, and one server over them for the whole folder."""

import base64
import fcntl
import os
import shutil

import grpc
import httpx
import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc

from i2dl_keras.apps import cli, signatures
from i2dl_keras.serving import ModelServer

DIGITS = [
    "--data",
    "synthetic",
    "--epochs",
    "1",
    "--batch-size",
    "16",
    "--image-size",
    "16",
    "--width",
    "8",
    "--no-augment",
]
SENTIMENT = [
    "--data",
    "synthetic",
    "--epochs",
    "1",
    "--batch-size",
    "32",
    "--vocab-size",
    "200",
    "--embedding-dim",
    "8",
    "--units",
    "4",
    "--no-bidirectional",
    # One LSTM: what is served matters here, not how it was trained (the ensemble's export is
    # checked in tests/apps/test_api.py).
    "--members",
    "1",
    "--no-ngram-member",
]
MAX_BODY = 64 * 1024
MAX_IMAGE_PIXELS = 64 * 64
TIMEOUT = 30.0


def _png(seed: int, size: int = 16) -> bytes:
    image = np.random.default_rng(seed).integers(0, 256, (size, size, 1), dtype=np.uint8)
    return tf.io.encode_png(image).numpy()


def _b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode("ascii")}


def _digits_expected(model, pngs):
    pixels = tf.stack([signatures.decode_resized(tf.constant(p), 16, 1) for p in pngs])
    return model(pixels, training=False).numpy()


@pytest.fixture(scope="session")
def png():
    """`png(seed, size=16)`: the PNG bytes of a random grey image."""
    return _png


@pytest.fixture(scope="session")
def truncated_png():
    """A 40x40 PNG cut in half: its header reads, its pixel data does not decode."""
    data = _png(9, size=40)
    return data[: len(data) // 2]


@pytest.fixture(scope="session")
def b64():
    """`b64(data)`: TF Serving's JSON form of bytes, `{"b64": "..."}`."""
    return _b64


@pytest.fixture(scope="session")
def digits_expected():
    """`digits_expected(model, pngs)`: the Keras model's probabilities for PNG bytes."""
    return _digits_expected


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """A saved_models folder with digits and sentiment exported once, and their Keras models.

    Once per test run: under pytest-xdist the first worker to need the folder writes it where
    every worker's temporary folders live, and the others read it (the tests only read it).
    """
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    out, complete = shared / "serving-saved_models", shared / "serving-saved_models.complete"
    with open(shared / "serving-saved_models.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not complete.is_file():
            shutil.rmtree(out, ignore_errors=True)
            for app, flags in (("digits", DIGITS), ("sentiment", SENTIMENT)):
                assert cli.main([app, "train", *flags, "--output-dir", str(out)]) == 0
                (run,) = (out / app).glob("run-*")
                assert cli.main([app, "export", "--model", str(run)]) == 0
            complete.touch()
    models = {}
    for app in ("digits", "sentiment"):
        (run,) = (out / app).glob("run-*")
        models[app] = keras.saving.load_model(run / "model.keras")
    return out, models


@pytest.fixture(scope="session")
def server(exported):
    """A `ModelServer` over `exported` on free ports, with small body and image limits."""
    out, _ = exported
    with ModelServer(
        out,
        port=0,
        grpc_port=0,
        poll_seconds=0,
        max_body_bytes=MAX_BODY,
        max_image_pixels=MAX_IMAGE_PIXELS,
        batch_timeout_ms=5,
    ) as running:
        yield running


@pytest.fixture(scope="session")
def client(server):
    with httpx.Client(base_url=server.rest_url, timeout=TIMEOUT) as http:
        yield http


@pytest.fixture(scope="session")
def stub(server):
    channel = grpc.insecure_channel(server.grpc_target)
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    channel.close()
