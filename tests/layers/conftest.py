"""Layer tests: the same seeding as tests/conftest.py, with a cheaper clean-up.

`keras.backend.clear_session()` runs a full `gc.collect()` by default, which costs close to a
second per test once TensorFlow is loaded; clearing the Keras state without the collection keeps
the isolation (fresh layer names, fresh global state) at a fraction of the cost.
"""

import keras
import pytest


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session(free_memory=False)
