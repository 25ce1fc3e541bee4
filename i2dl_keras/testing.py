"""House test helpers: the checks every component and model of i2dl_keras passes.

They follow the shape of Keras' own `testing.TestCase.run_layer_test`, reduced to what a user of
the component relies on: it builds, it computes the documented shapes, it trains, its config
round-trips, it saves and loads in a fresh process without `custom_objects`, and it exports as a
TF SavedModel that serves the same numbers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

__all__ = [
    "run_export_test",
    "run_layer_test",
    "run_model_saving_test",
    "run_serialization_test",
]


def _flat_numpy(outputs: Any) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(t) for t in keras.tree.flatten(outputs)]


def _assert_close(actual: Any, expected: Any, atol: float, what: str) -> None:
    actual_flat, expected_flat = _flat_numpy(actual), _flat_numpy(expected)
    if len(actual_flat) != len(expected_flat):
        raise AssertionError(f"{what}: {len(actual_flat)} outputs, expected {len(expected_flat)}.")
    for i, (a, e) in enumerate(zip(actual_flat, expected_flat)):
        np.testing.assert_allclose(a, e, atol=atol, rtol=0, err_msg=f"{what}, output {i}")


def _random_inputs(shape: Sequence[int], dtype: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if "int" in dtype:
        return rng.integers(0, 5, size=shape).astype(dtype)
    return rng.normal(size=shape).astype(dtype)


def run_serialization_test(obj: Any) -> Any:
    """Checks that `obj` survives a serialize -> JSON -> deserialize round trip.

    The serialized form of the revived object must be identical JSON to the original's, which
    catches arguments missing from `get_config` and nested objects that are not serialized.

    Args:
        obj: A Keras layer, loss, regularizer, initializer, optimizer, schedule or model.

    Returns:
        The revived object.

    Raises:
        AssertionError: if the revived object differs in class or config.
    """
    config = keras.saving.serialize_keras_object(obj)
    text = json.dumps(config, sort_keys=True)
    revived = keras.saving.deserialize_keras_object(json.loads(text))
    if type(revived) is not type(obj):
        raise AssertionError(f"Revived a {type(revived).__name__}, expected {type(obj).__name__}.")
    revived_text = json.dumps(keras.saving.serialize_keras_object(revived), sort_keys=True)
    if revived_text != text:
        raise AssertionError(
            "get_config -> from_config -> get_config changed the config:\n"
            f"  before: {text}\n  after:  {revived_text}"
        )
    return revived


def run_layer_test(
    layer_cls: type,
    init_kwargs: Mapping[str, Any],
    input_shape: Sequence[int],
    expected_output_shape: Sequence[int | None] | None = None,
    expected_num_trainable_weights: int | None = None,
    expected_num_non_trainable_weights: int | None = None,
    input_dtype: str = "float32",
    run_training_check: bool = True,
    call_kwargs: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> keras.layers.Layer:
    """Builds, calls, counts and trains a layer, and checks its config round trip.

    Args:
        layer_cls: The layer class.
        init_kwargs: Constructor arguments.
        input_shape: Full input shape, batch dimension included.
        expected_output_shape: Full output shape; `None` entries match anything. Defaults to
            `None` (not checked).
        expected_num_trainable_weights: Number of trainable weight tensors after build.
            Defaults to `None` (not checked).
        expected_num_non_trainable_weights: Number of non-trainable weight tensors after build.
            Defaults to `None` (not checked).
        input_dtype: dtype of the random input. Defaults to `"float32"`.
        run_training_check: Whether to fit one step and check that the loss is finite and the
            trainable weights moved. Defaults to `True`.
        call_kwargs: Extra keyword arguments for the call. Defaults to `None`.
        seed: Seed for weights and inputs. Defaults to `0`.

    Returns:
        The built layer.
    """
    keras.utils.set_random_seed(seed)
    call_kwargs = dict(call_kwargs or {})
    layer = layer_cls(**init_kwargs)
    run_serialization_test(layer)

    x = _random_inputs(input_shape, input_dtype, seed)
    y = layer(x, **call_kwargs)
    y_sym = layer_cls(**init_kwargs)(
        keras.Input(batch_shape=tuple(input_shape), dtype=input_dtype), **call_kwargs
    )
    for name, shape in (("eager", tuple(y.shape)), ("symbolic", tuple(y_sym.shape))):
        if expected_output_shape is not None:
            expected = tuple(expected_output_shape)
            ok = len(shape) == len(expected) and all(
                e is None or s == e for s, e in zip(shape, expected)
            )
            if not ok:
                raise AssertionError(f"{name} output shape {shape}, expected {expected}.")
    if expected_num_trainable_weights is not None:
        got = len(layer.trainable_weights)
        if got != expected_num_trainable_weights:
            raise AssertionError(
                f"{got} trainable weights, expected {expected_num_trainable_weights}."
            )
    if expected_num_non_trainable_weights is not None:
        got = len(layer.non_trainable_weights)
        if got != expected_num_non_trainable_weights:
            raise AssertionError(
                f"{got} non-trainable weights, expected {expected_num_non_trainable_weights}."
            )
    # The revived layer must compute the same function once given the same weights.
    revived = layer_cls.from_config(layer.get_config())
    revived(x, **call_kwargs)
    revived.set_weights(layer.get_weights())
    _assert_close(revived(x, **call_kwargs), y, 1e-5, "from_config layer with same weights")

    if run_training_check and layer.trainable_weights:
        inputs = keras.Input(batch_shape=(None, *input_shape[1:]), dtype=input_dtype)
        outputs = layer(inputs, **call_kwargs)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
        # Built now, not while tracing the step (a trace that creates variables runs twice).
        model.optimizer.build(model.trainable_variables)
        before = [w.copy() for w in model.get_weights()]
        target = keras.tree.map_structure(lambda t: np.zeros(t.shape, "float32"), _flat_numpy(y)[0])
        history = model.fit(x, target, epochs=1, batch_size=len(x), verbose=0)
        loss = history.history["loss"][-1]
        if not np.isfinite(loss):
            raise AssertionError(f"Training step gave a non-finite loss: {loss}.")
        after = model.get_weights()
        if all(np.array_equal(b, a) for b, a in zip(before, after)):
            raise AssertionError("A training step left every weight unchanged.")
    return layer


_LOAD_SCRIPT = r"""
import json, sys
import numpy as np
import i2dl_keras  # registers the package's classes; nothing else may be imported
import keras

spec = json.load(open(sys.argv[1]))
failures = []
for name, item in spec.items():
    try:
        model = keras.saving.load_model(item["path"])
        cls = type(model).__module__ + "." + type(model).__qualname__
        if cls != item["class"]:
            failures.append(f"{name}: loaded as {cls}, expected {item['class']}")
            continue
        data = np.load(item["data"])
        n_in = item["n_inputs"]
        inputs = [data[f"x{i}"] for i in range(n_in)]
        outputs = model(inputs if n_in > 1 else inputs[0], training=False)
        flat = [keras.ops.convert_to_numpy(t) for t in keras.tree.flatten(outputs)]
        for i, out in enumerate(flat):
            expected = data[f"y{i}"]
            same_shape = out.shape == expected.shape
            if not same_shape or not np.allclose(out, expected, atol=item["atol"], rtol=0):
                err = float(np.max(np.abs(out - expected))) if same_shape else "shape"
                failures.append(f"{name}: output {i} differs after reload (max abs err {err})")
    except Exception as exc:  # report every model, not just the first failure
        failures.append(f"{name}: {type(exc).__name__}: {exc}")
print(json.dumps(failures))
"""


def run_model_saving_test(
    models: keras.Model | Mapping[str, tuple[keras.Model, Any]],
    inputs: Any = None,
    atol: float = 1e-5,
    timeout: float = 300.0,
) -> None:
    """Saves models as `.keras` files and reloads them in a fresh Python process.

    The fresh process imports only `i2dl_keras` and Keras and loads with the default safe mode
    and no `custom_objects`, which is how a user's serving or notebook process sees the file.
    Several models can be checked in one subprocess, since each TensorFlow start costs seconds.

    Args:
        models: A model (then `inputs` is required), or a mapping from a name to a
            `(model, inputs)` pair.
        inputs: Inputs for a single model: an array or a list of arrays. Defaults to `None`.
        atol: Absolute tolerance on the reloaded outputs. Defaults to `1e-5`.
        timeout: Seconds the subprocess may take. Defaults to `300`.

    Raises:
        AssertionError: naming every model that failed to load, changed class or changed output.
    """
    if isinstance(models, keras.Model):
        if inputs is None:
            raise ValueError("run_model_saving_test needs `inputs` with a single model.")
        models = {models.name: (models, inputs)}
    with tempfile.TemporaryDirectory() as tmp:
        spec = {}
        for name, (model, x) in models.items():
            xs = list(x) if isinstance(x, (list, tuple)) else [x]
            outputs = _flat_numpy(model(xs if len(xs) > 1 else xs[0], training=False))
            path = os.path.join(tmp, f"{name}.keras")
            model.save(path)
            data = os.path.join(tmp, f"{name}.npz")
            arrays = {f"x{i}": np.asarray(a) for i, a in enumerate(xs)}
            arrays.update({f"y{i}": a for i, a in enumerate(outputs)})
            np.savez(data, **arrays)
            spec[name] = {
                "path": path,
                "data": data,
                "n_inputs": len(xs),
                "class": type(model).__module__ + "." + type(model).__qualname__,
                "atol": atol,
            }
        spec_path = os.path.join(tmp, "spec.json")
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        script = os.path.join(tmp, "load.py")
        with open(script, "w") as f:
            f.write(_LOAD_SCRIPT)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
        proc = subprocess.run(
            [sys.executable, script, spec_path],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=tmp,
        )
        if proc.returncode != 0:
            raise AssertionError(f"Fresh-process load crashed:\n{proc.stderr[-4000:]}")
        failures = json.loads(proc.stdout.strip().splitlines()[-1])
        if failures:
            raise AssertionError("Fresh-process reload failed:\n" + "\n".join(failures))


def run_export_test(model: keras.Model, inputs: Any, atol: float = 1e-5) -> None:
    """Exports `model` as a TF SavedModel and checks that its `serve` endpoint matches.

    Args:
        model: A built Keras model.
        inputs: An array, or a list of arrays for a multi-input model.
        atol: Absolute tolerance. Defaults to `1e-5`.

    Raises:
        AssertionError: if the SavedModel's outputs differ from `model(inputs)`.
    """
    import tensorflow as tf

    expected = model(inputs, training=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "export")
        model.export(path, format="tf_saved_model", verbose=False)
        loaded = tf.saved_model.load(path)
        # Keras exports a multi-input model with one argument: the list of its inputs.
        served = loaded.serve(keras.tree.map_structure(tf.constant, inputs))
    _assert_close(served, expected, atol, "SavedModel serve() vs model()")
