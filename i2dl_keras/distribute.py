"""Choosing a `tf.distribute` strategy and mixed precision for the hardware at hand.

The same training code runs on a laptop CPU, one GPU, several GPUs (`MirroredStrategy`) and
several machines (`MultiWorkerMirroredStrategy`, configured by the `TF_CONFIG` environment
variable): only the strategy changes. Build and compile the model inside `strategy.scope()`.
"""

from __future__ import annotations

import json
import logging
import os

import keras
import tensorflow as tf

__all__ = ["STRATEGIES", "enable_mixed_precision", "get_strategy", "is_chief"]

logger = logging.getLogger(__name__)

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")


def get_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """Returns the `tf.distribute` strategy called `name`.

    Args:
        name: `"auto"` (mirrored over all GPUs when there are several, else the default
            strategy), `"default"` (one device), `"mirrored"` (all local GPUs, or the CPU) or
            `"multi_worker"` (all workers listed in `TF_CONFIG`). Defaults to `"auto"`.

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
        return tf.distribute.MirroredStrategy()
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ValueError(
            "`strategy='multi_worker'` needs the TF_CONFIG environment variable describing the "
            'cluster, e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}. Received: TF_CONFIG unset'
        )
    try:
        json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"TF_CONFIG must be JSON ({exc}). Received: TF_CONFIG={raw!r}") from None
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether this process should write artifacts (the chief, or worker 0 of a cluster).

    Args:
        strategy: The strategy in use. Defaults to `None` (read `TF_CONFIG` only).

    Returns:
        `True` on a single machine and on the chief of a multi-worker cluster.
    """
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return True
    task = json.loads(raw).get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    cluster = json.loads(raw).get("cluster", {})
    if "chief" in cluster:
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
