"""Importing an app and training through the API leave the caller's global state alone."""

import os
import subprocess
import sys
import textwrap

import pytest

from i2dl_keras.apps import base

SCRIPT = textwrap.dedent("""
    import json, logging, random, sys
    import matplotlib
    matplotlib.use("svg")
    import keras, numpy as np

    keras.config.set_dtype_policy("mixed_bfloat16")
    np.random.seed(123)
    random.seed(456)
    logging.getLogger().setLevel(logging.WARNING)
    handlers = list(logging.getLogger().handlers)
    before = (np.random.get_state()[1].tolist(), random.getstate())

    from i2dl_keras.apps import digits

    run = digits.train(
        data="synthetic", epochs=1, batch_size=16, image_size=16, width=8,
        output_dir=sys.argv[1],
    )
    after = (np.random.get_state()[1].tolist(), random.getstate())
    print(json.dumps({
        "backend": matplotlib.get_backend(),
        "policy": keras.config.dtype_policy().name,
        "random": before == after,
        "log_level": logging.getLogger().level,
        "handlers": logging.getLogger().handlers == handlers,
        "model_policy": run.model.dtype_policy.name,
    }))
""")


def test_import_and_train_change_no_global_state(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    state = json.loads(proc.stdout.strip().splitlines()[-1])
    assert state == {
        "backend": "svg",
        "policy": "mixed_bfloat16",
        "random": True,
        "log_level": 30,
        "handlers": True,
        # The run chose its own policy (float32 on a CPU) whatever the caller's was.
        "model_policy": "float32",
    }


@pytest.mark.parametrize(
    "tty, modules, expected", [(True, {}, 1), (False, {"ipykernel": object()}, 1), (False, {}, 2)]
)
def test_progress_bar_in_terminals_and_notebooks(monkeypatch, tty, modules, expected):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: tty, raising=False)
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    if not modules:
        monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    assert base.progress_verbosity() == expected
