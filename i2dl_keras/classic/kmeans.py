"""k-means clustering as a Keras model whose weights are the cluster centroids."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from i2dl_keras.classic import _checks

__all__ = ["KMeans"]


def _squared_distances(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    d2 = (
        np.sum(x * x, axis=1, keepdims=True)
        - 2.0 * x @ centroids.T
        + np.sum(centroids * centroids, axis=1)[None, :]
    )
    # Rounding can push the distance of a point to itself slightly below zero.
    return np.maximum(d2, 0.0)


def _kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: each next centre drawn with probability proportional to D(x)^2."""
    centroids = [x[rng.integers(len(x))]]
    closest = _squared_distances(x, centroids[0][None])[:, 0]
    for _ in range(1, k):
        total = closest.sum()
        if total <= 0.0:  # fewer distinct points than clusters: any point will do
            index = rng.integers(len(x))
        else:
            index = rng.choice(len(x), p=closest / total)
        centroids.append(x[index])
        closest = np.minimum(closest, _squared_distances(x, x[index][None])[:, 0])
    return np.stack(centroids)


def _lloyd(x, centroids, max_iter, tol):
    """Lloyd's algorithm from `centroids`; returns (centroids, labels, inertia, iterations)."""
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        d2 = _squared_distances(x, centroids)
        labels = np.argmin(d2, axis=1)
        new = np.empty_like(centroids)
        counts = np.bincount(labels, minlength=len(centroids))
        for j in range(len(centroids)):
            if counts[j]:
                new[j] = x[labels == j].mean(axis=0)
            else:
                # An empty cluster restarts at the point worst served by its current centroid.
                farthest = int(np.argmax(d2[np.arange(len(x)), labels]))
                new[j] = x[farthest]
                d2[farthest] = 0.0
        shift = float(np.sum((new - centroids) ** 2))
        centroids = new
        if shift <= tol:
            break
    # A last assignment step, so that labels and inertia belong to the returned centroids.
    d2 = _squared_distances(x, centroids)
    labels = np.argmin(d2, axis=1)
    return centroids, labels, float(d2[np.arange(len(x)), labels].sum()), iterations


@keras.saving.register_keras_serializable(package="i2dl_keras")
class KMeans(_checks.IndexPredictor, keras.Model):
    """k-means clustering: `n_clusters` centroids that minimise the within-cluster squares.

    The course's unsupervised "clustering (k-means)": find centroids `mu_1 .. mu_k` that
    minimise the inertia `sum_i min_j |x_i - mu_j|^2`. `fit` runs Lloyd's algorithm, which
    alternates the two steps that each lower it: assign every sample to its nearest centroid,
    then move every centroid to the mean of its samples, until the centroids move by at most
    `tol` (total squared shift, scaled by the data's mean feature variance) or `max_iter`
    rounds have run. The start is k-means++ (Arthur and Vassilvitskii, 2007): the first
    centroid is a random sample, each next one a sample drawn with probability proportional
    to its squared distance to the nearest centroid so far. Lloyd's algorithm finds a local
    minimum; `n_init` starts are run and the one with the lowest inertia is kept. A cluster
    that loses all its samples restarts at the sample farthest from its centroid.

    The centroids live in a non-trainable weight, `centroids` `(n_clusters, num_features)`, so
    a saved `.keras` file carries them. `call(x)` returns the squared distance of each sample
    to each centroid; `predict(x)` the index of the nearest one.

    Args:
        n_clusters: Number of clusters `k`. Defaults to `8`.
        n_init: Number of k-means++ starts; the best run is kept. Defaults to `10`.
        max_iter: Most Lloyd rounds per start. Defaults to `300`.
        tol: Stop when the total squared centroid shift is at most `tol` times the mean
            variance of the features. Defaults to `1e-4`.
        seed: Seed of the NumPy generator that draws the starts. Defaults to `0`.
        num_features: Features per sample. Set by `fit`; give it only to rebuild a model (as
            `from_config` does). Defaults to `None`.
        **kwargs: Forwarded to `keras.Model` (e.g. `name`).

    Call arguments:
        inputs: Samples of shape `(batch, num_features)`.

    Returns:
        From `call`: squared Euclidean distances `(batch, n_clusters)`. From `predict`:
        cluster indices `(batch,)` as a NumPy `int64` array.

    Raises:
        ValueError: if an argument is out of range, or at `fit` if the data do not fit the
            model (see `fit`).

    Example:

    >>> kmeans = i2dl_keras.classic.KMeans(n_clusters=3, seed=0).fit(x)
    >>> labels = kmeans.predict(x)    # (n,) cluster indices
    >>> kmeans.inertia                # sum of squared distances to the nearest centroid
    """

    def __init__(
        self,
        n_clusters: int = 8,
        n_init: int = 10,
        max_iter: int = 300,
        tol: float = 1e-4,
        seed: int = 0,
        num_features: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.n_clusters = _checks.int_at_least("n_clusters", n_clusters, 1)
        self.n_init = _checks.int_at_least("n_init", n_init, 1)
        self.max_iter = _checks.int_at_least("max_iter", max_iter, 1)
        self.tol = _checks.non_negative_float("tol", tol)
        self.seed = _checks.seed("seed", seed)
        self.num_features = _checks.optional_int_at_least("num_features", num_features, 1)
        # Training-set figures of the last `fit`; not saved with the model.
        self.inertia: float | None = None
        self.labels: np.ndarray | None = None
        self.n_iter: int | None = None
        if self.num_features is not None:
            self.build((None, self.num_features))

    def build(self, input_shape: tuple) -> None:
        _checks.fitted_input(self, input_shape, "no centroids yet: call `fit(x)`")
        self.centroids = self.add_weight(
            shape=(self.n_clusters, self.num_features),
            initializer="zeros",
            trainable=False,
            name="centroids",
        )

    def fit(self, x: Any = None, y: Any = None, **kwargs: Any) -> KMeans:
        """Clusters `x` with Lloyd's algorithm and stores the best centroids.

        Training-loop arguments of `keras.Model.fit` (`epochs`, `batch_size`, `verbose`,
        `callbacks`, `shuffle`) are accepted and ignored. Sets `inertia`, `labels` (the
        training samples' clusters) and `n_iter` (Lloyd rounds of the kept start).

        Args:
            x: Samples, shape `(n, num_features)` with `n >= n_clusters`. Defaults to `None`.
            y: Ignored (clustering has no targets); must be `None`. Defaults to `None`.
            **kwargs: The training-loop arguments above, ignored.

        Returns:
            The model itself.

        Raises:
            ValueError: if `x` is not a finite 2-D array with at least `n_clusters` rows, its
                width differs from an earlier `fit`, `y` is given, or `kwargs` holds another
                argument.
        """
        _checks.only_fit_loop_args(kwargs, "KMeans.fit only clusters `x`")
        if y is not None:
            raise ValueError(
                "KMeans.fit takes no targets: clustering is unsupervised. "
                f"Received: y with shape {np.shape(y)}"
            )
        x = np.asarray(x, dtype="float64")
        if x.ndim != 2 or len(x) < self.n_clusters:
            raise ValueError(
                f"`x` must be a 2-D array (samples, features) with at least `n_clusters` = "
                f"{self.n_clusters} samples. Received: x.shape={x.shape}"
            )
        _checks.finite_and_as_wide(x, self, "clusters")
        tol = self.tol * float(np.mean(np.var(x, axis=0)))
        rng = np.random.default_rng(self.seed)
        best = None
        for _ in range(self.n_init):
            start = _kmeans_plus_plus(x, self.n_clusters, rng)
            run = _lloyd(x, start, self.max_iter, tol)
            if best is None or run[2] < best[2]:
                best = run
        centroids, self.labels, self.inertia, self.n_iter = best
        if not self.built:
            self.num_features = int(x.shape[1])
            self.build((None, self.num_features))
        self.centroids.assign(centroids.astype(self.centroids.dtype))
        return self

    def call(self, inputs):
        x = ops.cast(inputs, self.centroids.dtype)
        return _checks.squared_distances(x, ops.convert_to_tensor(self.centroids))

    default_predict_batch_size = 1024

    def _batch_indices(self, batch):
        return ops.argmin(self(batch), axis=-1)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "n_clusters": self.n_clusters,
                "n_init": self.n_init,
                "max_iter": self.max_iter,
                "tol": self.tol,
                "seed": self.seed,
                "num_features": self.num_features,
            }
        )
        return config
