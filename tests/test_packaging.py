"""The installed distribution: `i2dl_keras.apps` is importable, a top-level `apps` is not."""

import os
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_of_the_tree_is_listed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "i2dl_keras").rglob("__init__.py")
    }
    assert config["package-dir"] == {"i2dl_keras.apps": "apps"}
    assert set(config["packages"]) == found | {"i2dl_keras.apps"}


def test_apps_install_under_i2dl_keras_only(tmp_path):
    # From outside the repository, only what the installed distribution provides is importable.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH="")
    script = (
        "import importlib.util, i2dl_keras.apps.digits as d; "
        "print(importlib.util.find_spec('apps') is None, d.NAME)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["True", "digits"]
