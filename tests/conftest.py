"""Shared pytest setup: quiet TensorFlow, seeded Keras, and the path to ../shared/data."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import pytest  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)


@pytest.fixture(autouse=True, scope="module")
def _fresh_session():
    # Once per module: clear_session costs up to a second (it garbage-collects).
    yield
    keras.backend.clear_session()


@pytest.fixture
def shared_data() -> Path:
    """The real data sets in ../shared/data; skips the test when that folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (see the project README)")
    return SHARED_DATA
