"""LayerwiseAdam: per-variable learning rates, config round trip, fit, save and reload."""

import json
import os
import re

import keras
import numpy as np
import pytest

from i2dl_keras.optimizers import LayerwiseAdam
from i2dl_keras.testing import run_serialization_test


def _two_layers():
    # A functional model: its variables' paths are "low/kernel" and "top/kernel".
    inputs = keras.Input((2,))
    x = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones", name="low")(inputs)
    outputs = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones", name="top")(x)
    return keras.Model(inputs, outputs)


def test_config():
    optimizer = LayerwiseAdam({"low/kernel": 0.25, "top/bias": 2}, learning_rate=0.01, beta_1=0.8)
    revived = run_serialization_test(optimizer)
    assert revived.multipliers == {"low/kernel": 0.25, "top/bias": 2.0}
    assert revived.beta_1 == 0.8
    np.testing.assert_allclose(float(revived.learning_rate.numpy()), 0.01, rtol=1e-6)
    assert LayerwiseAdam().multipliers == {}


def test_correctness_first_step_by_hand():
    model = _two_layers()
    optimizer = LayerwiseAdam({"low/kernel": 0.25}, learning_rate=0.1)
    low, top = model.get_layer("low").kernel, model.get_layer("top").kernel
    assert (low.path, top.path) == ("low/kernel", "top/kernel")
    optimizer.apply_gradients(
        [(np.full((2, 1), 2.0, "float32"), low), (np.full((1, 1), 2.0, "float32"), top)]
    )
    # Adam's first step: m = 0.1 g, v = 0.001 g^2, and the step is
    # lr * sqrt(1 - 0.999) / (1 - 0.9) * m / (sqrt(v) + 1e-7) = lr * 0.0632456 / 0.0632457
    # = 0.099999842 * (lr / 0.1) for g = 2; the low layer's rate is a quarter of it.
    np.testing.assert_allclose(low.numpy(), 1.0 - 0.02499996, atol=1e-6)
    np.testing.assert_allclose(top.numpy(), 1.0 - 0.09999984, atol=1e-6)


def test_fit_scales_each_variables_step_against_plain_adam():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 2)).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32")
    steps = {}
    for name, optimizer in (
        ("adam", keras.optimizers.Adam(0.05)),
        ("layerwise", LayerwiseAdam({"low/kernel": 0.1}, learning_rate=0.05)),
    ):
        model = _two_layers()
        model.compile(optimizer=optimizer, loss="mse")
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # one step, in a compiled graph
        steps[name] = {v.path: 1.0 - v.numpy() for v in model.trainable_variables}
    # Same gradients (same start), and Adam's first step is linear in the learning rate.
    np.testing.assert_allclose(
        steps["layerwise"]["low/kernel"], 0.1 * steps["adam"]["low/kernel"], rtol=1e-5
    )
    np.testing.assert_allclose(steps["layerwise"]["top/kernel"], steps["adam"]["top/kernel"])
    assert np.all(np.abs(steps["adam"]["low/kernel"]) > 0.04)


# Its first lines are those of `run_model_saving_test`'s reload script (i2dl_keras/testing.py):
# both fork from one template process that ran them (tests/conftest.py).
_RELOAD = r"""
import json, sys
import numpy as np
import i2dl_keras  # registers the package's classes; nothing else is imported
import keras

model = keras.saving.load_model(sys.argv[1])
opt = model.optimizer
print(json.dumps({
    "class": type(opt).__module__ + "." + type(opt).__name__,
    "multipliers": opt.multipliers,
    "iterations": int(opt.iterations.numpy()),
    "variables": [v.numpy().tolist() for v in opt.variables],
}))
"""


def test_compiled_model_saves_and_reloads_in_a_fresh_process(tmp_path, fresh_python):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 2)).astype("float32")
    y = rng.normal(size=(8, 1)).astype("float32")
    model = _two_layers()
    model.compile(optimizer=LayerwiseAdam({"low/kernel": 0.5}, learning_rate=0.01), loss="mse")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    script = tmp_path / "reload.py"
    script.write_text(_RELOAD)
    proc = fresh_python(
        [str(script), str(tmp_path / "m.keras")],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded["class"] == "i2dl_keras.optimizers.layerwise_adam.LayerwiseAdam"
    assert loaded["multipliers"] == {"low/kernel": 0.5}
    assert loaded["iterations"] == 2
    expected = [v.numpy().tolist() for v in model.optimizer.variables]
    assert len(loaded["variables"]) == len(expected) > 2
    for got, want in zip(loaded["variables"], expected):
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize(
    "multipliers, received",
    [
        ([("low/kernel", 0.5)], "multipliers=[('low/kernel', 0.5)]"),
        ({"low/kernel": 0}, "multipliers['low/kernel']=0"),
        ({"low/kernel": -0.5}, "multipliers['low/kernel']=-0.5"),
        ({"low/kernel": "0.5"}, "multipliers['low/kernel']='0.5'"),
        ({"low/kernel": True}, "multipliers['low/kernel']=True"),
    ],
)
def test_invalid_arguments(multipliers, received):
    with pytest.raises(ValueError, match="Received: " + re.escape(received)):
        LayerwiseAdam(multipliers)
