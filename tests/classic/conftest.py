"""Checks shared by the tests of the closed-form models (`KMeans`, `PCA`)."""

import os
import tempfile

import keras
import numpy as np
import pytest


@pytest.fixture
def check_unsupervised_fit():
    """`check(model, x, non_finite, unknown)`: what such a model's `fit` rejects and accepts.

    `fit` must reject a sample of value `non_finite`, any targets, and the keyword argument
    `unknown` (a `{name: value}` dict), and accept (and ignore) the training-loop arguments.
    """

    def check(model, x, non_finite, unknown):
        with pytest.raises(ValueError, match=r"finite.*Received: x with NaN"):
            model.fit(np.full((4, 2), non_finite))
        with pytest.raises(ValueError, match=rf"no targets.*Received: y with shape \({len(x)},\)"):
            model.fit(x, np.zeros(len(x)))
        with pytest.raises(ValueError, match=rf"Received: kwargs=\{{'{next(iter(unknown))}'"):
            model.fit(x, **unknown)
        model.fit(x, epochs=2, verbose=0)

    return check


@pytest.fixture
def check_rejected_arguments():
    """`check(cls, cases)`: `cls(**kwargs)` raises, naming `name`, for each `(kwargs, name)`."""

    def check(cls, cases):
        for kwargs, name in cases:
            with pytest.raises(ValueError, match=f"`{name}`.*Received: {name}="):
                cls(**kwargs)

    return check


@pytest.fixture
def save_and_reload():
    """`reload(model, x)`: a `.keras` round trip of the same class, with the same outputs on `x`.

    Returns the reloaded model.
    """

    def reload(model, x):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            model.save(path)
            reloaded = keras.saving.load_model(path)
        assert type(reloaded) is type(model)
        np.testing.assert_allclose(reloaded(x), model(x), atol=0, rtol=0)
        return reloaded

    return reload
