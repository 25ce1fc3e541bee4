"""k_fold, k_fold_indices and train_val_split: partitions, data routing, scores, errors."""

import keras
import numpy as np
import pytest

from i2dl_keras.classic import (
    KNNClassifier,
    LinearRegression,
    k_fold,
    k_fold_indices,
    train_val_split,
)


def test_k_fold_indices_partition():
    folds = k_fold_indices(11, k=3, seed=0)
    assert [len(val) for _, val in folds] == [4, 4, 3]
    every_val = np.concatenate([val for _, val in folds])
    np.testing.assert_array_equal(np.sort(every_val), np.arange(11))
    for train, val in folds:
        assert not set(train) & set(val)
        np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(11))
    again = k_fold_indices(11, k=3, seed=0)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    other = k_fold_indices(11, k=3, seed=1)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, other))
    contiguous = k_fold_indices(7, k=2, shuffle=False)
    np.testing.assert_array_equal(contiguous[0][1], [0, 1, 2, 3])
    np.testing.assert_array_equal(contiguous[1][1], [4, 5, 6])


class _MeanPredictor:
    """Predicts the training mean of y; records what it was trained and scored on."""

    def __init__(self, log):
        self.log = log

    def fit(self, x, y, **kwargs):
        self.log.append({"train": x[:, 0].astype(int), "fit_kwargs": kwargs})
        self.mean = float(np.mean(y))

    def predict(self, x, verbose="auto"):
        self.log[-1]["val"] = x[:, 0].astype(int)
        return np.full(len(x), self.mean)


def test_k_fold_routes_every_sample_to_exactly_one_validation_fold():
    n = 13
    x = np.stack([np.arange(n), np.zeros(n)], axis=1)  # column 0 is the sample index
    y = np.random.default_rng(3).normal(size=n)
    log = []

    def mse(y_true, y_pred):
        return np.mean((y_true - y_pred) ** 2)

    result = k_fold(
        lambda: _MeanPredictor(log), x, y, k=4, fit_kwargs={"epochs": 2}, seed=5, metric=mse
    )
    assert len(log) == 4
    seen_val = np.concatenate([entry["val"] for entry in log])
    np.testing.assert_array_equal(np.sort(seen_val), np.arange(n))
    expected_scores = []
    for entry, val in zip(log, result.val_indices):
        np.testing.assert_array_equal(entry["val"], val)
        np.testing.assert_array_equal(np.setdiff1d(np.arange(n), entry["val"]), entry["train"])
        assert entry["fit_kwargs"] == {"verbose": 0, "epochs": 2}
        expected_scores.append(np.mean((y[val] - y[entry["train"]].mean()) ** 2))
    np.testing.assert_allclose(result.scores, expected_scores, atol=1e-12)
    assert result.mean == pytest.approx(np.mean(expected_scores), abs=1e-12)
    assert result.std == pytest.approx(np.std(expected_scores), abs=1e-12)


class _EvaluateOnly:
    def fit(self, x, y, **kwargs):
        pass

    def evaluate(self, x, y, verbose="auto", return_dict=False):
        return {"loss": 1.0, "sum_y": float(np.sum(y))}


def test_k_fold_named_metric():
    y = np.arange(6.0)
    result = k_fold(_EvaluateOnly, np.zeros((6, 1)), y, k=3, shuffle=False, metric="sum_y")
    assert result.scores == [1.0, 5.0, 9.0]
    with pytest.raises(ValueError, match=r"\['loss', 'sum_y'\]\. Received: metric='accuracy'"):
        k_fold(_EvaluateOnly, np.zeros((6, 1)), y, k=3, metric="accuracy")


def test_k_fold_of_a_knn_matches_numpy_one_nearest_neighbour():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(30, 2)).astype("float32")
    y = (x[:, 0] * x[:, 1] > 0).astype("int64")  # XOR-like quadrants: kNN, not a line

    def accuracy(y_true, labels):
        return np.mean(y_true == labels)

    result = k_fold(lambda: KNNClassifier(k=1, num_classes=2), x, y, k=3, seed=2, metric=accuracy)
    expected = []
    for train, val in k_fold_indices(30, k=3, seed=2):
        d2 = ((x[val, None, :] - x[None, train, :]) ** 2).sum(-1)
        expected.append(np.mean(y[train][np.argmin(d2, axis=1)] == y[val]))
    np.testing.assert_allclose(result.scores, expected, atol=1e-12)
    assert result.mean > 0.7


def _build_linear():
    model = LinearRegression(num_features=2)
    # Eager steps: tracing costs more than three epochs of 16 samples.
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", run_eagerly=True)
    return model


def test_k_fold_with_keras_models_is_reproducible():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 2)).astype("float32")
    y = (x @ np.array([1.5, -2.0]) + 0.5).astype("float32")
    fit_kwargs = {"epochs": 3, "batch_size": 8, "shuffle": False}
    result = k_fold(_build_linear, x, y, k=2, fit_kwargs=fit_kwargs, seed=4)
    # Redo fold 1 by hand: same seed (4 + 1), same data; its MSE in NumPy must match.
    train, val = k_fold_indices(16, k=2, seed=4)[1]
    keras.utils.set_random_seed(5)
    model = _build_linear()
    model.fit(x[train], y[train], verbose=0, **fit_kwargs)
    kernel, bias = model.get_weights()
    expected = np.mean((x[val] @ kernel[:, 0] + bias[0] - y[val]) ** 2)
    assert result.scores[1] == pytest.approx(expected, rel=1e-5)
    # Three epochs of SGD learn something: the loss is below that of predicting 0.
    assert result.scores[1] < np.mean(y[val] ** 2)
    assert np.all(np.isfinite(result.scores)) and result.scores[0] != result.scores[1]


def test_train_val_split():
    x = {"a": np.arange(10) * 10, "b": np.arange(20).reshape(10, 2)}
    y = np.arange(10)
    (x_train, y_train), (x_val, y_val) = train_val_split(x, y, seed=3)
    assert len(y_train) == 8 and len(y_val) == 2
    np.testing.assert_array_equal(np.sort(np.concatenate([y_train, y_val])), np.arange(10))
    np.testing.assert_array_equal(x_train["a"], y_train * 10)
    np.testing.assert_array_equal(x_val["b"][:, 0], y_val * 2)
    (_, y_train_again), _ = train_val_split(x, y, seed=3)
    np.testing.assert_array_equal(y_train, y_train_again)
    (_, y_other), _ = train_val_split(x, y, seed=4)
    assert not np.array_equal(y_train, y_other)
    (_, none_y), (x_last, _) = train_val_split(np.arange(5), val_fraction=0.4, shuffle=False)
    assert none_y is None
    np.testing.assert_array_equal(x_last, [3, 4])


def test_bad_arguments():
    x, y = np.zeros((10, 1)), np.zeros(10)
    for k in (1, 11, 2.0, None):
        with pytest.raises(ValueError, match=rf"2 <= k <= n.*\(10\)\. Received: k={k}"):
            k_fold(_EvaluateOnly, x, y, k=k)
        with pytest.raises(ValueError, match=rf"Received: k={k}"):
            k_fold_indices(10, k=k)
    with pytest.raises(ValueError, match=r"`build_model` must be a callable.*Received: build_"):
        k_fold("model", x, y)
    with pytest.raises(ValueError, match=r"must not set \['x'\].*Received: fit_kwargs="):
        k_fold(_EvaluateOnly, x, y, fit_kwargs={"x": x})
    with pytest.raises(ValueError, match=r"Received: metric=3"):
        k_fold(_EvaluateOnly, x, y, metric=3)
    with pytest.raises(ValueError, match=r"`y` must have as many samples as `x` \(10\)"):
        k_fold(_EvaluateOnly, x, y[:9])
    with pytest.raises(ValueError, match=r"Received: seed=-1"):
        k_fold(_EvaluateOnly, x, y, seed=-1)
    for fraction in (0.0, 1.0, "0.2"):
        with pytest.raises(ValueError, match=rf"in \(0, 1\)\. Received: val_fraction={fraction!r}"):
            train_val_split(x, y, val_fraction=fraction)
    with pytest.raises(ValueError, match=r"at least one sample.*Received: val_fraction=0.01"):
        train_val_split(x, y, val_fraction=0.01)
