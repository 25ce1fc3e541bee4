"""Every classic model saves as one `.keras` file and reloads in a fresh process; two export."""

import keras
import numpy as np

from i2dl_keras.classic import (
    KNNClassifier,
    LinearRegression,
    LogisticRegression,
    bootstrap_fit,
)
from i2dl_keras.testing import run_export_test, run_model_saving_test


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 3)).astype("float32")
    labels = (x[:, 0] + x[:, 1] > 0).astype("int64")
    return x, labels


def _build_logistic():
    model = LogisticRegression(num_features=3)
    # Eager steps: three tiny members train faster than their train functions trace.
    model.compile(optimizer=keras.optimizers.SGD(0.5), run_eagerly=True)
    return model


def test_fresh_process_reload_and_export():
    x, labels = _data()
    knn = KNNClassifier(k=3, num_classes=2).memorize(x, labels)
    linear = LinearRegression(units=2).solve(x, np.stack([x[:, 0], x.sum(1)], axis=1))
    binary = LogisticRegression(num_features=3, l2=0.01)
    multinomial = LogisticRegression(num_features=3, num_classes=3)
    # Bagged members trained for real (their optimizers are not part of the ensemble's file).
    bagged = bootstrap_fit(
        _build_logistic, x, labels.astype("float32"), n_members=3, fit_kwargs={"batch_size": 8}
    )
    bagged_knn = bootstrap_fit(lambda: KNNClassifier(k=1, num_classes=2), x, labels, n_members=2)
    queries = np.random.default_rng(1).normal(size=(6, 3)).astype("float32")
    # Members really differ (else the reload could not tell their weights apart).
    outputs = [member(queries).numpy() for member in bagged.members]
    assert not np.allclose(outputs[0], outputs[1])
    run_model_saving_test(
        {
            "knn": (knn, queries),
            "linear_regression": (linear, queries),
            "logistic_binary": (binary, queries),
            "logistic_multinomial": (multinomial, queries),
            "bagging_logistic": (bagged, queries),
            "bagging_knn": (bagged_knn, queries),
        },
        atol=1e-6,
    )
    run_export_test(knn, queries, atol=1e-6)
    run_export_test(bagged, queries, atol=1e-6)
