"""LogisticRegression: cross-entropy loss equal to NumPy's, learns a separable problem."""

import keras
import numpy as np
import pytest

from i2dl_keras.classic import LogisticRegression
from i2dl_keras.testing import run_serialization_test


def test_config_and_output_shapes():
    x = np.zeros((4, 3), dtype="float32")
    for kwargs, width in [
        ({}, 1),
        ({"num_classes": 3, "l2": 0.01}, 3),
        ({"num_classes": 2, "multinomial": True}, 2),
    ]:
        model = LogisticRegression(num_features=3, **kwargs)
        revived = run_serialization_test(model)
        assert model(x).shape == (4, width) and revived(x).shape == (4, width)
    run_serialization_test(LogisticRegression())


def test_binary_loss_is_numpy_binary_cross_entropy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 2)).astype("float32")
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1], dtype="float32")
    w, b = np.array([[0.5], [-1.0]], "float32"), np.array([0.25], "float32")
    model = LogisticRegression(num_features=2, l2=0.1)
    model.linear.set_weights([w, b])
    model.compile(optimizer="sgd")  # the default loss: binary cross-entropy
    p = 1.0 / (1.0 + np.exp(-(x.astype("float64") @ w[:, 0] + b[0])))
    np.testing.assert_allclose(model(x)[:, 0], p, atol=1e-6)
    bce = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    penalty = 0.1 * np.sum(w**2)  # 0.1 * (0.25 + 1) = 0.125
    loss = model.evaluate(x, y, batch_size=8, verbose=0)
    assert loss == pytest.approx(bce + penalty, abs=1e-6)
    # It is not the squared error the notes' "quadratic function" would suggest.
    assert abs(loss - penalty - np.mean((p - y) ** 2)) > 0.05


def test_multinomial_loss_is_numpy_categorical_cross_entropy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 2)).astype("float32")
    y = np.array([0, 2, 1, 1, 0, 2])
    w = np.array([[1.0, -0.5, 0.2], [0.3, 0.8, -1.0]], "float32")
    b = np.array([0.1, 0.0, -0.2], "float32")
    model = LogisticRegression(num_features=2, num_classes=3)
    model.linear.set_weights([w, b])
    model.compile(optimizer="sgd")
    logits = x.astype("float64") @ w + b
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    expected = -np.mean(np.log(p[np.arange(6), y]))
    assert model.evaluate(x, y, batch_size=6, verbose=0) == pytest.approx(expected, abs=1e-6)


def test_learns_a_linearly_separable_problem():
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, size=(200, 2)).astype("float32")
    score = x[:, 0] + 2.0 * x[:, 1] - 0.2
    keep = np.abs(score) > 0.3  # a margin around the true boundary
    x, y = x[keep][:48], (score[keep][:48] > 0).astype("float32")
    model = LogisticRegression(num_features=2)
    model.compile(optimizer=keras.optimizers.Adam(0.1))

    def bce():
        p = np.clip(model(x)[:, 0].numpy().astype("float64"), 1e-7, 1 - 1e-7)
        return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))

    initial = bce()
    model.fit(x, y, epochs=4, batch_size=4, shuffle=False, verbose=0)
    predicted = (model(x)[:, 0].numpy() > 0.5).astype("float32")
    np.testing.assert_array_equal(predicted, y)
    assert bce() < 0.5 * initial
    w = model.linear.kernel.numpy()[:, 0]
    assert w[1] > w[0] > 0  # the learned normal points like (1, 2)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"`num_classes` must be an integer >= 2\. .*=1"):
        LogisticRegression(num_classes=1)
    with pytest.raises(ValueError, match=r"`l2` must be a finite float >= 0\. Received: l2=-0.1"):
        LogisticRegression(l2=-0.1)
    with pytest.raises(ValueError, match=r"Received: num_features=0"):
        LogisticRegression(num_features=0)
