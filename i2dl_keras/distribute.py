"""Choosing a `tf.distribute` strategy and mixed precision for the hardware at hand.

The same training code runs on a laptop CPU, one GPU, several GPUs (`MirroredStrategy`) and
several machines (`MultiWorkerMirroredStrategy`, configured by the `TF_CONFIG` environment
variable): only the strategy changes. Build and compile the model inside `strategy.scope()`.

Every worker of a multi-worker cluster runs the same program; gradients are all-reduced each
step, so all workers hold identical weights (`weights_fingerprint` shows it), and only the chief
(`is_chief`) should keep what it writes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os

import keras
import numpy as np
import tensorflow as tf

__all__ = [
    "STRATEGIES",
    "enable_mixed_precision",
    "gather_from_workers",
    "get_strategy",
    "is_chief",
    "num_workers",
    "task_name",
    "weights_fingerprint",
]

logger = logging.getLogger(__name__)

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")


def get_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """Returns the `tf.distribute` strategy called `name`.

    `"mirrored"` keeps one replica per local GPU; on a machine without a GPU it mirrors over the
    logical CPU devices instead, which is one device unless the CPU was split beforehand with
    `tf.config.set_logical_device_configuration` (how the tests run two replicas on a CPU).

    Args:
        name: `"auto"` (mirrored over all GPUs when there are several, else the default
            strategy), `"default"` (one device), `"mirrored"` (all local GPUs, or all logical
            CPUs when there is no GPU) or `"multi_worker"` (all workers listed in `TF_CONFIG`).
            Defaults to `"auto"`.

    Returns:
        The strategy.

    Raises:
        ValueError: if `name` is unknown, or `"multi_worker"` is asked for without a valid
            `TF_CONFIG`.

    Example:

    >>> strategy = i2dl_keras.distribute.get_strategy("auto")
    >>> with strategy.scope():
    ...     model = i2dl_keras.models.lenet5()
    """
    if name not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES}. Received: strategy={name!r}")
    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        if len(gpus) > 1:
            return tf.distribute.MirroredStrategy()
        return tf.distribute.get_strategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    _read_tf_config(required=True)
    return _MultiWorkerMirroredStrategy()


def _read_tf_config(required: bool = False) -> dict | None:
    """`TF_CONFIG` as a dict (`None` when unset), checked for the keys a worker needs."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        if not required:
            return None
        raise ValueError(
            "`strategy='multi_worker'` needs the TF_CONFIG environment variable describing the "
            'cluster, e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}. Received: TF_CONFIG unset'
        )
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"TF_CONFIG must be JSON ({exc}). Received: TF_CONFIG={raw!r}") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise ValueError(
            'TF_CONFIG must be a JSON object with a "cluster" of task lists. '
            f"Received: TF_CONFIG={raw!r}"
        )
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ValueError(
            'TF_CONFIG needs this process\'s "task", e.g. {"type": "worker", "index": 1}. '
            f"Received: TF_CONFIG={raw!r}"
        )
    return config


class _MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """`MultiWorkerMirroredStrategy` whose `reduce` accepts what Keras 3 asks of it.

    With Keras 3.15 and TensorFlow 2.21, `fit` and `evaluate` under the stock strategy fail before
    the first step (tensorflow/tensorflow#72388): Keras reduces a whole `(x, y)` batch in one
    `reduce` call, which `MirroredStrategy` maps over but the collective strategy does not, and
    it reduces scalar logs with `axis=0`. Here a nest is reduced element by element and a scalar
    with `axis=None`, which is what both calls mean; everything else is the stock strategy.
    """

    def reduce(self, reduce_op, value, axis=None):
        if not isinstance(value, tf.distribute.DistributedValues) and tf.nest.is_nested(value):
            return tf.nest.map_structure(lambda v: self.reduce(reduce_op, v, axis), value)
        first = self.experimental_local_results(value)[0]
        if axis is not None and tf.TensorShape(getattr(first, "shape", ())).rank == 0:
            axis = None
        return super().reduce(reduce_op, value, axis)


def num_workers(strategy: tf.distribute.Strategy) -> int:
    """How many processes train together under `strategy` (1 unless it is multi-worker)."""
    extended = strategy.extended
    if getattr(extended, "_in_multi_worker_mode", lambda: False)():
        return int(extended._num_workers)
    return 1


def gather_from_workers(strategy: tf.distribute.Strategy, value: int) -> list[int]:
    """Every worker's `value`, in task order, on every worker (a collective: all must call it).

    Args:
        strategy: The strategy in use.
        value: This worker's number.

    Returns:
        One value per worker; `[value]` outside multi-worker training.
    """
    if num_workers(strategy) == 1:
        return [int(value)]
    local = strategy.run(lambda: tf.constant([int(value)], tf.int64))
    # One entry per replica; every local replica of a worker holds that worker's value.
    gathered = strategy.gather(local, axis=0).numpy().tolist()
    per_worker = len(gathered) // num_workers(strategy)
    return [int(v) for v in gathered[::per_worker]]


def task_name() -> str | None:
    """This process's task in `TF_CONFIG` as `"worker1"`, `"chief0"`; `None` when unset."""
    config = _read_tf_config()
    if config is None:
        return None
    return f"{config['task']['type']}{int(config['task']['index'])}"


def weights_fingerprint(model: keras.Model) -> str:
    """A short hash of a model's weights, to check that workers or runs hold the same model.

    Args:
        model: A built model.

    Returns:
        The first 16 hex digits of the SHA-1 of all weights (bytes, in order).
    """
    digest = hashlib.sha1()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()[:16]


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether this process should write artifacts (the chief, or worker 0 of a cluster).

    Args:
        strategy: The strategy in use; a strategy that is not multi-worker makes every process
            a chief, whatever `TF_CONFIG` says. Defaults to `None` (read `TF_CONFIG` only).

    Returns:
        `True` on a single machine and on the chief of a multi-worker cluster.
    """
    if strategy is not None and num_workers(strategy) == 1:
        return True
    config = _read_tf_config()
    if config is None:
        return True
    kind, index = config["task"]["type"], int(config["task"]["index"])
    if "chief" in config["cluster"]:
        return kind == "chief"
    return kind == "worker" and index == 0


def enable_mixed_precision(enabled: bool) -> str:
    """Sets Keras' global dtype policy to `mixed_float16` when asked and a GPU is present.

    Mixed precision only pays off on GPUs with tensor cores; on a CPU it slows training down,
    so it is left off there and a warning says so.

    Args:
        enabled: Whether mixed precision was asked for.

    Returns:
        The name of the policy now in force.
    """
    if enabled and tf.config.list_physical_devices("GPU"):
        keras.mixed_precision.set_dtype_policy("mixed_float16")
    else:
        if enabled:
            logger.warning("mixed precision asked for but no GPU is present: staying in float32")
        keras.mixed_precision.set_dtype_policy("float32")
    return keras.mixed_precision.dtype_policy().name
