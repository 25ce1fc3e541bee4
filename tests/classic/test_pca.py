"""PCA: hand-worked components and variances, scikit-learn up to sign, saving, bad arguments."""

import numpy as np
import pytest
from sklearn.decomposition import PCA as SklearnPCA

import i2dl_keras
from i2dl_keras.classic.kmeans import KMeans
from i2dl_keras.classic.pca import PCA
from i2dl_keras.testing import run_export_test, run_model_saving_test, run_serialization_test

# Points on the line y = 2x: the mean is 0, the first component (1, 2) / sqrt(5), and the
# projections -sqrt(5), 0, sqrt(5) have variance (5 + 0 + 5) / (3 - 1) = 5; nothing is left
# for the second component.
LINE = np.array([[-1, -2], [0, 0], [1, 2]], "float32")
# A cross: (+-3, 0) and (0, +-1) around the mean (1, 1). Covariance diag(18, 2) / 3 = diag(6,
# 2/3): components e1 and e2, variance ratios 6 / (20/3) = 0.9 and 0.1.
CROSS = np.array([[4, 1], [-2, 1], [1, 2], [1, 0]], "float32")


def _correlated(n=60, d=5, seed=0):
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d)) * np.array([3.0, 2.0, 1.0, 0.5, 0.1])[:, None]
    return rng.normal(size=(n, d)) @ mixing + rng.normal(size=d)


def test_config():
    assert run_serialization_test(PCA(n_components=3)).get_config()["n_components"] == 3
    revived = run_serialization_test(PCA(n_components=1).fit(LINE))
    assert revived.num_features == 2 and revived.components.shape == (1, 2)


def test_hand_worked_examples():
    pca = PCA(n_components=2).fit(LINE)
    np.testing.assert_allclose(pca.mean.numpy(), [0, 0], atol=1e-7)
    np.testing.assert_allclose(
        pca.components.numpy()[0], np.array([1, 2]) / np.sqrt(5), atol=1e-6, rtol=0
    )
    np.testing.assert_allclose(pca.explained_variance.numpy(), [5, 0], atol=1e-5, rtol=0)
    np.testing.assert_allclose(pca.explained_variance_ratio.numpy(), [1, 0], atol=1e-6)
    np.testing.assert_allclose(
        pca(LINE).numpy()[:, 0], [-np.sqrt(5), 0, np.sqrt(5)], atol=1e-5, rtol=0
    )

    pca = PCA(n_components=2).fit(CROSS)
    np.testing.assert_allclose(pca.mean.numpy(), [1, 1], atol=1e-6)
    np.testing.assert_allclose(np.abs(pca.components.numpy()), np.eye(2), atol=1e-6)
    # The sign convention: the largest entry of each component is positive.
    np.testing.assert_allclose(pca.components.numpy(), np.eye(2), atol=1e-6)
    np.testing.assert_allclose(pca.explained_variance.numpy(), [6, 2 / 3], atol=1e-5)
    np.testing.assert_allclose(pca.explained_variance_ratio.numpy(), [0.9, 0.1], atol=1e-6)
    np.testing.assert_allclose(pca(CROSS), [[3, 0], [-3, 0], [0, 1], [0, -1]], atol=1e-5)
    # One component keeps the x-axis: (4, 1) -> 3 -> (4, 1); (1, 2) -> 0 -> the mean (1, 1).
    one = PCA(n_components=1).fit(CROSS)
    np.testing.assert_allclose(
        one.reconstruct(one(CROSS)), [[4, 1], [-2, 1], [1, 1], [1, 1]], atol=1e-5, rtol=0
    )


def test_matches_scikit_learn_up_to_sign():
    x = _correlated()
    ours = PCA(n_components=3).fit(x)
    reference = SklearnPCA(n_components=3).fit(x)
    np.testing.assert_allclose(
        ours.explained_variance.numpy(), reference.explained_variance_, rtol=1e-5
    )
    np.testing.assert_allclose(
        ours.explained_variance_ratio.numpy(), reference.explained_variance_ratio_, rtol=1e-5
    )
    np.testing.assert_allclose(ours.mean.numpy(), reference.mean_, atol=1e-5, rtol=0)
    components = ours.components.numpy()
    signs = np.sign(np.sum(components * reference.components_, axis=1))
    np.testing.assert_allclose(components, signs[:, None] * reference.components_, atol=1e-5)
    np.testing.assert_allclose(ours(x), reference.transform(x) * signs, atol=1e-4, rtol=0)
    np.testing.assert_allclose(
        ours.reconstruct(ours(x)), reference.inverse_transform(reference.transform(x)), atol=1e-4
    )
    # The components are orthonormal, and the projections uncorrelated with those variances.
    np.testing.assert_allclose(components @ components.T, np.eye(3), atol=1e-6)
    z = ours(x).numpy().astype("float64")
    np.testing.assert_allclose(
        np.cov(z, rowvar=False), np.diag(reference.explained_variance_), atol=1e-3
    )


def test_reconstruction_error_is_the_discarded_variance():
    # Rank-k PCA is the best rank-k fit: its squared error is (n - 1) times the variances of
    # the components it drops.
    x = _correlated(seed=1)
    full = PCA(n_components=5).fit(x).explained_variance.numpy().astype("float64")
    for k in (1, 2, 4):
        pca = PCA(n_components=k).fit(x)
        error = np.sum((pca.reconstruct(pca(x)).numpy() - x) ** 2)
        assert error == pytest.approx((len(x) - 1) * full[k:].sum(), rel=1e-3), k


def test_saving_and_export(save_and_reload):
    x = _correlated().astype("float32")
    pca = PCA(n_components=2).fit(x)
    reloaded = save_and_reload(pca, x)
    np.testing.assert_allclose(
        reloaded.explained_variance_ratio.numpy(), pca.explained_variance_ratio.numpy()
    )
    run_export_test(pca, x[:8], atol=1e-5)


@pytest.mark.skipif(
    not (hasattr(i2dl_keras.classic, "PCA") and hasattr(i2dl_keras.classic, "KMeans")),
    reason="a fresh process finds PCA and KMeans only once i2dl_keras.classic exports them",
)
def test_fresh_process_reload():
    # PCA and KMeans in one subprocess.
    x = _correlated().astype("float32")
    run_model_saving_test(
        {
            "pca": (PCA(n_components=2).fit(x), x[:8]),
            "kmeans": (KMeans(n_clusters=3).fit(x), x[:8]),
        }
    )


def test_bad_arguments(check_rejected_arguments, check_unsupervised_fit):
    cases = [
        ({"n_components": 0}, "n_components"),
        ({"n_components": 2.0}, "n_components"),
        ({"num_features": -1}, "num_features"),
        ({"n_components": 3, "num_features": 2}, "n_components"),
    ]
    check_rejected_arguments(PCA, cases)
    pca = PCA(n_components=2)
    with pytest.raises(ValueError, match=r"no components yet.*Received: num_features=None"):
        pca(LINE)
    with pytest.raises(ValueError, match=r"more than `n_components` = 2.*Received: x.shape="):
        pca.fit(LINE[:2])
    with pytest.raises(ValueError, match=r"Received: x.shape=\(4, 1\)"):
        pca.fit(CROSS[:, :1])
    check_unsupervised_fit(pca, CROSS, np.inf, {"validation_split": 0.5})
    with pytest.raises(ValueError, match=r"create a new PCA.*Received: x.shape=\(3, 3\)"):
        pca.fit(np.eye(3))
