"""KMeans: hand-worked clusters, scikit-learn's inertia and assignment, saving, bad arguments."""

import numpy as np
import pytest
from sklearn.cluster import KMeans as SklearnKMeans
from sklearn.datasets import make_blobs

from i2dl_keras.classic.kmeans import KMeans
from i2dl_keras.testing import run_export_test, run_serialization_test

# Three pairs of points two apart: the optimum puts one centroid in the middle of each pair,
# (0, 1), (10, 1) and (5, 10), and every point is 1 from its centroid: inertia 6 * 1^2 = 6.
PAIRS = np.array([[0, 0], [0, 2], [10, 0], [10, 2], [5, 9], [5, 11]], "float32")


def _permutation(a, b, k):
    """The cluster map a -> b if the two labelings agree up to renaming, else None."""
    table = np.zeros((k, k), "int64")
    np.add.at(table, (a, b), 1)
    if np.count_nonzero(table) != k or np.any(np.count_nonzero(table, axis=1) != 1):
        return None
    return np.argmax(table, axis=1)


def test_config():
    config = run_serialization_test(KMeans(n_clusters=3, n_init=2, tol=0.0, seed=4)).get_config()
    assert (config["n_clusters"], config["n_init"], config["tol"], config["seed"]) == (3, 2, 0, 4)
    revived = run_serialization_test(KMeans(n_clusters=3).fit(PAIRS))
    assert revived.num_features == 2 and revived.centroids.shape == (3, 2)


def test_hand_worked_clusters():
    kmeans = KMeans(n_clusters=3, seed=0).fit(PAIRS)
    order = np.argsort(kmeans.centroids.numpy()[:, 0] + kmeans.centroids.numpy()[:, 1] * 0.01)
    np.testing.assert_allclose(
        kmeans.centroids.numpy()[order], [[0, 1], [5, 10], [10, 1]], atol=1e-6, rtol=0
    )
    assert kmeans.inertia == pytest.approx(6.0, abs=1e-9)
    labels = kmeans.predict(PAIRS)
    np.testing.assert_array_equal(labels, kmeans.labels)
    assert labels[0] == labels[1] and labels[2] == labels[3] and labels[4] == labels[5]
    assert len(set(labels.tolist())) == 3
    # call() gives squared distances: the first point is 1^2 from its centroid, and
    # 10^2 + 1^2 = 101 and 5^2 + 10^2 = 125 from the other two.
    distances = np.sort(kmeans(PAIRS[:1]).numpy()[0])
    np.testing.assert_allclose(distances, [1, 101, 125], atol=1e-4, rtol=0)
    # 1-D: {0, 1} and {10, 11}, centroids 0.5 and 10.5, inertia 4 * 0.25 = 1.
    line = KMeans(n_clusters=2).fit([[0.0], [1.0], [10.0], [11.0]])
    np.testing.assert_allclose(np.sort(line.centroids.numpy()[:, 0]), [0.5, 10.5], atol=1e-6)
    assert line.inertia == pytest.approx(1.0, abs=1e-12)


def test_matches_scikit_learn():
    x, _ = make_blobs(n_samples=200, centers=4, n_features=3, cluster_std=1.5, random_state=0)
    ours = KMeans(n_clusters=4, n_init=5, seed=0).fit(x)
    reference = SklearnKMeans(n_clusters=4, n_init=5, random_state=0).fit(x)
    assert ours.inertia == pytest.approx(reference.inertia_, rel=1e-9)
    mapping = _permutation(ours.labels, reference.labels_, 4)
    assert mapping is not None, "the assignments differ by more than a renaming"
    np.testing.assert_allclose(
        ours.centroids.numpy(), reference.cluster_centers_[mapping], atol=1e-5, rtol=0
    )
    # Predictions on new points agree up to the same renaming.
    queries = np.random.default_rng(1).uniform(x.min(0), x.max(0), size=(50, 3))
    np.testing.assert_array_equal(
        mapping[ours.predict(queries, batch_size=7)], reference.predict(queries)
    )


def test_restarts_lower_the_inertia():
    # Overlapping blobs, where single k-means++ starts settle in different local minima. A run
    # with `n_init` starts begins with the same start as a single run of the same seed and
    # keeps the best, so it is never worse, and here it is better for every seed.
    x, _ = make_blobs(n_samples=120, centers=6, cluster_std=2.0, random_state=1)
    for seed in range(3):
        single = KMeans(n_clusters=6, n_init=1, seed=seed).fit(x).inertia
        best = KMeans(n_clusters=6, n_init=6, seed=seed).fit(x).inertia
        assert best < single - 1.0, (seed, best, single)
    # Lloyd's rounds never raise the inertia: stopped after one round, the same start ends
    # higher than when it runs to convergence.
    one_round = KMeans(n_clusters=6, n_init=1, seed=0, max_iter=1).fit(x)
    converged = KMeans(n_clusters=6, n_init=1, seed=0).fit(x)
    assert one_round.n_iter == 1 and converged.n_iter > 1
    assert one_round.inertia > converged.inertia


def test_duplicate_points_and_empty_clusters():
    # Two distinct points, three clusters: a centroid is left without samples and restarts on
    # a data point; nothing becomes NaN and the inertia is 0.
    kmeans = KMeans(n_clusters=3, n_init=1).fit([[0.0], [0.0], [0.0], [5.0]])
    assert np.all(np.isfinite(kmeans.centroids.numpy()))
    assert kmeans.inertia == 0.0


def test_saving_and_export(save_and_reload):
    kmeans = KMeans(n_clusters=3).fit(PAIRS)
    reloaded = save_and_reload(kmeans, PAIRS)
    np.testing.assert_array_equal(reloaded.predict(PAIRS), kmeans.predict(PAIRS))
    run_export_test(kmeans, PAIRS, atol=1e-5)


def test_bad_arguments(check_rejected_arguments, check_unsupervised_fit):
    cases = [
        ({"n_clusters": 0}, "n_clusters"),
        ({"n_init": 0}, "n_init"),
        ({"max_iter": 1.5}, "max_iter"),
        ({"tol": -1.0}, "tol"),
        ({"seed": -1}, "seed"),
        ({"num_features": 0}, "num_features"),
    ]
    check_rejected_arguments(KMeans, cases)
    kmeans = KMeans(n_clusters=3)
    with pytest.raises(ValueError, match=r"no centroids yet.*Received: num_features=None"):
        kmeans(PAIRS)
    with pytest.raises(ValueError, match=r"at least `n_clusters` = 3.*Received: x.shape=\(2, 2\)"):
        kmeans.fit(PAIRS[:2])
    with pytest.raises(ValueError, match=r"Received: x.shape=\(6,\)"):
        kmeans.fit(PAIRS[:, 0])
    check_unsupervised_fit(kmeans, PAIRS, np.nan, {"sample_weight": np.ones(6)})
    with pytest.raises(ValueError, match=r"create a new KMeans.*Received: x.shape=\(6, 1\)"):
        kmeans.fit(PAIRS[:, :1])
    with pytest.raises(ValueError, match=r"Received: batch_size=0"):
        kmeans.predict(PAIRS, batch_size=0)
