"""Strategy selection and mixed precision: the CPU code paths of the GPU/multi-machine features."""

import json
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras import distribute


def test_strategies_on_cpu():
    assert distribute.get_strategy("default") is tf.distribute.get_strategy()
    auto = distribute.get_strategy("auto")
    assert auto.num_replicas_in_sync == 1
    mirrored = distribute.get_strategy("mirrored")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    with mirrored.scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile("sgd", "mse")
    history = model.fit(np.ones((8, 3)), np.zeros((8, 2)), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_unknown_strategy_and_missing_tf_config(monkeypatch):
    with pytest.raises(ValueError, match="Received: strategy='tpu_pod'"):
        distribute.get_strategy("tpu_pod")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.get_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="must be JSON"):
        distribute.get_strategy("multi_worker")


@pytest.mark.parametrize(
    "cluster, task, chief",
    [
        (None, None, True),
        ({"worker": ["a:1", "b:2"]}, {"type": "worker", "index": 0}, True),
        ({"worker": ["a:1", "b:2"]}, {"type": "worker", "index": 1}, False),
        ({"chief": ["c:0"], "worker": ["a:1"]}, {"type": "worker", "index": 0}, False),
        ({"chief": ["c:0"], "worker": ["a:1"]}, {"type": "chief", "index": 0}, True),
    ],
)
def test_is_chief(monkeypatch, cluster, task, chief):
    if cluster is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
    assert distribute.is_chief() is chief


def test_a_single_process_strategy_is_chief_whatever_tf_config_says(monkeypatch):
    cluster = {"worker": ["a:1", "b:2"]}
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}})
    )
    assert distribute.is_chief() is False
    # A stray TF_CONFIG must not make a one-process run throw its artifacts away.
    assert distribute.is_chief(tf.distribute.get_strategy()) is True
    assert distribute.num_workers(tf.distribute.get_strategy()) == 1
    assert distribute.task_name() == "worker1"
    monkeypatch.delenv("TF_CONFIG")
    assert distribute.task_name() is None


def test_tf_config_without_a_task_is_refused(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2"]}}))
    with pytest.raises(ValueError, match='needs this process\'s "task"'):
        distribute.get_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", json.dumps(["a:1"]))
    with pytest.raises(ValueError, match='"cluster"'):
        distribute.get_strategy("multi_worker")


def test_weights_fingerprint_tells_models_apart():
    def model():
        keras.utils.set_random_seed(0)
        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])

    a, b = model(), model()
    assert distribute.weights_fingerprint(a) == distribute.weights_fingerprint(b)
    assert re.fullmatch(r"[0-9a-f]{16}", distribute.weights_fingerprint(a))
    kernel, bias = b.get_weights()
    kernel[0, 0] = np.nextafter(kernel[0, 0], np.float32(np.inf))  # the smallest change there is
    b.set_weights([kernel, bias])
    assert distribute.weights_fingerprint(a) != distribute.weights_fingerprint(b)


def test_mixed_precision_stays_float32_without_a_gpu(caplog):
    assert not tf.config.list_physical_devices("GPU"), "this test is about the CPU path"
    with caplog.at_level("WARNING"):
        assert distribute.enable_mixed_precision(True) == "float32"
    assert "no GPU" in caplog.text
    assert distribute.enable_mixed_precision(False) == "float32"
