"""Binary, categorical and sparse categorical cross-entropy against NumPy and Keras' builtins."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras import losses
from i2dl_keras.testing import run_serialization_test

EPS = 1e-7  # keras.config.epsilon()


def np_log_softmax(z):
    z = np.asarray(z, dtype="float64")
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def test_binary_crossentropy():
    # By hand: -log(0.5) = log 2; -log(1 - 0.8) = log 5; -log(0.9) for y = 1.
    y = np.array([[1.0, 0.0, 1.0]], dtype="float32")
    p = np.array([[0.5, 0.8, 0.9]], dtype="float32")
    expected = (np.log(2.0) + np.log(5.0) - np.log(0.9)) / 3
    np.testing.assert_allclose(losses.binary_crossentropy(y, p), [expected], rtol=1e-6)
    # The same from logits: logit(0.5) = 0, logit(0.8) = log 4, logit(0.9) = log 9.
    z = np.array([[0.0, np.log(4.0), np.log(9.0)]], dtype="float32")
    np.testing.assert_allclose(
        losses.binary_crossentropy(y, z, from_logits=True), [expected], rtol=1e-6
    )

    # Extreme logits: softplus(z) - y z by hand is 0, 1000, 1000, 0 and 0.3 * 1000.
    y = np.array([[1.0, 0.0, 1.0, 0.0, 0.3]], dtype="float32")
    z = np.array([[1000.0, 1000.0, -1000.0, -1000.0, -1000.0]], dtype="float32")
    got = losses.binary_crossentropy(y, z, from_logits=True)
    np.testing.assert_allclose(got, [2300.0 / 5], rtol=1e-6)
    np.testing.assert_allclose(
        got, keras.losses.binary_crossentropy(y, z, from_logits=True), rtol=1e-6
    )
    # Gradients stay finite and equal sigmoid(z) - y (a naive log(sigmoid(z)) gives inf, nan).
    zt = tf.constant(z)
    with tf.GradientTape() as tape:
        tape.watch(zt)
        loss = losses.BinaryCrossentropy(from_logits=True)(y, zt)
    sigmoid = 0.5 * (1.0 + np.tanh(z.astype("float64") / 2.0))
    np.testing.assert_allclose(tape.gradient(loss, zt), (sigmoid - y) / 5, atol=1e-6)

    # Clipped probabilities: a certain, wrong prediction costs about -log(eps) = 16.12.
    y = np.array([[1.0], [0.0]], dtype="float32")
    p = np.array([[0.0], [1.0]], dtype="float32")
    got = np.asarray(losses.binary_crossentropy(y, p))
    assert got[0] == pytest.approx(-np.log(EPS), rel=1e-6)
    assert 15.0 < got[1] < 17.0  # 1 - eps rounds in float32, so not exactly -log(eps)
    np.testing.assert_allclose(got, keras.losses.binary_crossentropy(y, p), rtol=1e-6)

    # Random data against Keras, including labels (batch,) against one output (batch, 1).
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=(6, 4)).astype("float32")
    z = (rng.normal(size=(6, 4)) * 4).astype("float32")
    p = 1.0 / (1.0 + np.exp(-z))
    for from_logits, pred in ((True, z), (False, p), (True, z[:, :1])):
        labels = y[:, 0] if pred.shape[-1] == 1 else y
        ours = losses.BinaryCrossentropy(from_logits=from_logits)(labels, pred)
        theirs = keras.losses.BinaryCrossentropy(from_logits=from_logits)(labels, pred)
        assert float(ours) == pytest.approx(float(theirs), rel=1e-6, abs=1e-6)


def test_categorical_crossentropy():
    # The course: softmax([1, 2, 3]) = [0.09, 0.24, 0.67].
    logits = np.array([[1.0, 2.0, 3.0]] * 3, dtype="float32")
    got = losses.categorical_crossentropy(np.eye(3), logits, from_logits=True)
    np.testing.assert_allclose(np.exp(-np.asarray(got)), [0.09, 0.24, 0.67], atol=0.005)
    np.testing.assert_allclose(got, [2.40760596, 1.40760596, 0.40760596], rtol=1e-6)

    # Extreme logits, worked by hand: 0 - 1000, and 999 - (1000 + log(1 + e^-1)).
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]], dtype="float32")
    y = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype="float32")
    expected = [1000.0, 1.0 + np.log1p(np.exp(-1.0))]
    np.testing.assert_allclose(-(y * np_log_softmax(logits)).sum(-1), expected, rtol=1e-12)
    got = losses.categorical_crossentropy(y, logits, from_logits=True)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(
        got, keras.losses.categorical_crossentropy(y, logits, from_logits=True), rtol=1e-6
    )

    # Random one-hot and soft labels against Keras, from logits and from (clipped) probabilities.
    rng = np.random.default_rng(2)
    z = (rng.normal(size=(5, 4)) * 3).astype("float32")
    one_hot = np.eye(4, dtype="float32")[rng.integers(0, 4, size=5)]
    soft = rng.dirichlet(np.ones(4), size=5).astype("float32")
    p = np.exp(np_log_softmax(z)).astype("float32")
    p[0] = [1.0, 0.0, 0.0, 0.0]  # exercises the clipping
    for labels in (one_hot, soft):
        np.testing.assert_allclose(
            losses.categorical_crossentropy(labels, z, from_logits=True),
            -(labels * np_log_softmax(z)).sum(-1),
            rtol=1e-5,
        )
        for from_logits, pred in ((True, z), (False, p)):
            ours = losses.categorical_crossentropy(labels, pred, from_logits=from_logits)
            theirs = keras.losses.categorical_crossentropy(labels, pred, from_logits=from_logits)
            np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_sparse_categorical_crossentropy():
    got = losses.SparseCategoricalCrossentropy(from_logits=True)([0], [[1.0, 2.0, 3.0]])
    assert float(got) == pytest.approx(2.40760596, rel=1e-6)  # -log softmax([1, 2, 3])_0
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]], dtype="float32")
    np.testing.assert_allclose(
        losses.sparse_categorical_crossentropy([2, 2], logits, from_logits=True),
        [1000.0, 1.0 + np.log1p(np.exp(-1.0))],
        rtol=1e-6,
    )

    rng = np.random.default_rng(3)
    z = (rng.normal(size=(6, 5)) * 3).astype("float32")
    ids = rng.integers(0, 5, size=6)
    p = np.exp(np_log_softmax(z)).astype("float32")
    for from_logits, pred in ((True, z), (False, p)):
        expected = -np_log_softmax(pred if from_logits else np.log(pred))[np.arange(6), ids]
        for labels in (ids, ids[:, None], ids.astype("float32")):
            got = losses.sparse_categorical_crossentropy(labels, pred, from_logits=from_logits)
            np.testing.assert_allclose(got, expected, rtol=1e-5)
        ours = losses.SparseCategoricalCrossentropy(from_logits=from_logits)(ids[:, None], pred)
        theirs = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)(
            ids[:, None], pred
        )
        assert float(ours) == pytest.approx(float(theirs), rel=1e-6)


def test_config_and_bad_arguments():
    classes = {
        losses.BinaryCrossentropy: losses.binary_crossentropy,
        losses.CategoricalCrossentropy: losses.categorical_crossentropy,
        losses.SparseCategoricalCrossentropy: losses.sparse_categorical_crossentropy,
    }
    for cls, fn in classes.items():
        revived = run_serialization_test(cls(from_logits=True, reduction="sum", name="xent"))
        assert type(revived) is cls
        assert (revived.from_logits, revived.reduction, revived.name) == (True, "sum", "xent")
        assert run_serialization_test(cls()).from_logits is False
        with pytest.raises(
            ValueError, match="`from_logits` must be a bool. Received: from_logits=1"
        ):
            cls(from_logits=1)
        with pytest.raises(ValueError, match="Received: from_logits='yes'"):
            fn([[1.0]], [[0.5]], from_logits="yes")
