"""KNNClassifier: hand-worked votes and tie breaks, a NumPy brute-force twin, argument errors."""

import numpy as np
import pytest

from i2dl_keras.classic import KNNClassifier
from i2dl_keras.testing import run_serialization_test

# Five memorised points with integer coordinates, so float32 distances are exact.
MEMORY_X = np.array([[0, 0], [2, 0], [0, 3], [4, 4], [10, 0]], dtype="float32")
MEMORY_Y = np.array([0, 0, 1, 1, 2])
# Squared distances (worked by hand) to the memory rows, in order:
#   (0, 1): 1, 5, 4, 25, 101
#   (1, 3): 10, 10, 1, 10, 90   -> three-way distance tie at 10
#   (9, 1): 82, 50, 85, 34, 2
#   (0, 2): 4, 8, 1, 20, 104
QUERIES = np.array([[0, 1], [1, 3], [9, 1], [0, 2]], dtype="float32")


def test_config():
    run_serialization_test(KNNClassifier(k=3, num_classes=4))
    knn = KNNClassifier(k=2, num_classes=3).memorize(MEMORY_X, MEMORY_Y)
    revived = run_serialization_test(knn)
    assert (revived.memory_size, revived.num_features, revived.k) == (5, 2, 2)


def test_hand_worked_k1():
    knn = KNNClassifier(k=1, num_classes=3).memorize(MEMORY_X, MEMORY_Y)
    expected = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 0]], dtype="float32")
    np.testing.assert_allclose(knn(QUERIES), expected, atol=0)
    np.testing.assert_array_equal(knn.predict(QUERIES), [0, 1, 2, 1])


def test_hand_worked_k3_and_tie_breaks():
    knn = KNNClassifier(k=3, num_classes=3).memorize(MEMORY_X, MEMORY_Y)
    # (0, 1): rows 0, 2, 1 -> classes 0, 1, 0.
    # (1, 3): row 2, then the tie at 10 goes to the lower rows 0 and 1 (not row 3, class 1).
    # (9, 1): rows 4, 3, 1 -> classes 2, 1, 0: a three-way vote tie.
    # (0, 2): rows 2, 0, 1 -> classes 1, 0, 0.
    third = 1.0 / 3.0
    expected = np.array(
        [[2 * third, third, 0], [2 * third, third, 0], [third, third, third], [2 * third, third, 0]]
    )
    np.testing.assert_allclose(knn(QUERIES), expected, atol=1e-6)
    # The three-way vote tie goes to the nearest neighbour's class 2 (argmax would say 0).
    np.testing.assert_array_equal(knn.predict(QUERIES), [0, 0, 2, 0])


def test_vote_tie_goes_to_nearest_neighbour_class():
    knn = KNNClassifier(k=2, num_classes=3).memorize(MEMORY_X, MEMORY_Y)
    # (0, 2): rows 2 (class 1, distance^2 1) and 0 (class 0, distance^2 4).
    np.testing.assert_allclose(knn(QUERIES[3:]), [[0.5, 0.5, 0.0]], atol=0)
    np.testing.assert_array_equal(knn.predict(QUERIES[3:]), [1])


def _numpy_knn(x_train, y_train, queries, k, num_classes):
    d2 = ((queries[:, None, :].astype("float64") - x_train[None, :, :]) ** 2).sum(-1)
    order = np.argsort(d2, axis=1, kind="stable")[:, :k]
    labels = y_train[order]
    votes = np.stack([(labels == c).sum(1) for c in range(num_classes)], axis=1)
    predictions = []
    for row_votes, row_labels in zip(votes, labels):
        tied = np.flatnonzero(row_votes == row_votes.max())
        # The nearest neighbour whose class is among the tied ones decides.
        predictions.append(next(c for c in row_labels if c in tied))
    return votes / k, np.array(predictions)


def test_matches_numpy_brute_force():
    rng = np.random.default_rng(7)
    x_train = rng.normal(size=(60, 5)).astype("float32")
    y_train = rng.integers(0, 4, size=60)
    queries = rng.normal(size=(25, 5)).astype("float32")
    knn = KNNClassifier(k=5, num_classes=4).memorize(x_train, y_train)
    expected_p, expected_labels = _numpy_knn(x_train, y_train, queries, 5, 4)
    np.testing.assert_allclose(knn(queries), expected_p, atol=1e-6)
    # Uneven batches must not change the answer.
    np.testing.assert_array_equal(knn.predict(queries, batch_size=7), expected_labels)
    # Random labels with k = 5 and 4 classes: some queries must exercise the vote tie break.
    assert np.any(expected_labels != np.argmax(expected_p, axis=1))


def test_fit_is_memorize_and_memory_can_be_replaced():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 3)).astype("float32")
    y = rng.integers(0, 2, size=(10, 1))
    knn = KNNClassifier(k=1, num_classes=2)
    knn.fit(x, y, epochs=3, verbose=0, batch_size=4)
    np.testing.assert_array_equal(knn.memory_x.numpy(), x)
    np.testing.assert_array_equal(knn.memory_y.numpy(), y[:, 0])
    np.testing.assert_array_equal(knn.predict(x), y[:, 0])
    knn.memorize(x[::-1], y[::-1, 0])
    np.testing.assert_array_equal(knn.memory_y.numpy(), y[::-1, 0])


def test_bad_arguments():
    for kwargs, match in [
        ({"k": 0, "num_classes": 2}, r"`k` must be an integer >= 1\. Received: k=0"),
        ({"k": 1.5, "num_classes": 2}, r"Received: k=1\.5"),
        ({"k": 1}, r"`num_classes`.*Received: num_classes=None"),
        ({"k": 1, "num_classes": 0}, r"Received: num_classes=0"),
        ({"k": 3, "num_classes": 2, "memory_size": 2}, r"Received: memory_size=2"),
    ]:
        with pytest.raises(ValueError, match=match):
            KNNClassifier(**kwargs)
    knn = KNNClassifier(k=3, num_classes=2)
    with pytest.raises(ValueError, match=r"no memory yet.*Received: memory_size=None"):
        knn(MEMORY_X)
    with pytest.raises(ValueError, match=r"`x` must be a non-empty 2-D.*Received: x.shape=\(5,\)"):
        knn.memorize(MEMORY_Y, MEMORY_Y)
    with pytest.raises(ValueError, match=r"`y` must be integer labels in \[0, 2\)"):
        knn.memorize(MEMORY_X, MEMORY_Y)
    with pytest.raises(ValueError, match=r"`y` must hold one label.*Received: y.shape=\(4,\)"):
        knn.memorize(MEMORY_X, MEMORY_Y[:4] % 2)
    with pytest.raises(ValueError, match=r"at least `k` = 3 samples.*Received: x.shape=\(2, 2\)"):
        knn.memorize(MEMORY_X[:2], [0, 1])
    knn.memorize(MEMORY_X, MEMORY_Y % 2)
    with pytest.raises(ValueError, match=r"create a new KNNClassifier.*Received: x.shape=\(4, 2\)"):
        knn.memorize(MEMORY_X[:4], [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"Received: kwargs=\{'sample_weight'"):
        knn.fit(MEMORY_X, MEMORY_Y % 2, sample_weight=np.ones(5))
    with pytest.raises(ValueError, match=r"Received: batch_size=0"):
        knn.predict(QUERIES, batch_size=0)
