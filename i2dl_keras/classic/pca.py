"""Principal component analysis as a Keras model whose weights are the mean and components."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from i2dl_keras.classic import _checks

__all__ = ["PCA"]


@keras.saving.register_keras_serializable(package="i2dl_keras")
class PCA(keras.Model):
    """Principal component analysis: projection onto the directions of largest variance.

    The course lists PCA with the unsupervised methods. The data are centred by their mean
    `mu`; the principal components are the eigenvectors of the covariance
    `C = (X - mu)^T (X - mu) / (n - 1)` with the largest eigenvalues, the variances along
    them. `fit` takes them from the SVD `X - mu = U S V^T` (in float64, without forming `C`):
    the components are the first rows of `V^T` and the explained variances `S^2 / (n - 1)`.
    Each component's sign is fixed so that its entry of largest magnitude is positive.

    `call(x)` projects: `z = (x - mu) V_k` with the `k = n_components` components as columns
    of `V_k`; `reconstruct(z)` maps back, `z V_k^T + mu`, the best rank-`k` approximation
    of the data in the squared error. The mean, the components, the explained variances and
    their ratios to the total variance are non-trainable weights, saved with the model.

    Args:
        n_components: Number of components `k` kept. Defaults to `2`.
        num_features: Features per sample. Set by `fit`; give it only to rebuild a model (as
            `from_config` does). Defaults to `None`.
        **kwargs: Forwarded to `keras.Model` (e.g. `name`).

    Call arguments:
        inputs: Samples of shape `(batch, num_features)`.

    Returns:
        From `call`: the projections `(batch, n_components)`.

    Raises:
        ValueError: if `n_components` or `num_features` is not a positive integer, or
            `n_components > num_features`; at `fit`, see `fit`.

    Example:

    >>> pca = i2dl_keras.classic.PCA(n_components=2).fit(x)
    >>> z = pca(x)                                      # (n, 2) projections
    >>> x_hat = pca.reconstruct(z)                      # back in input space
    >>> pca.explained_variance_ratio.numpy().sum()      # share of the variance kept
    """

    def __init__(
        self, n_components: int = 2, num_features: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.n_components = _checks.int_at_least("n_components", n_components, 1)
        self.num_features = _checks.optional_int_at_least("num_features", num_features, 1)
        if self.num_features is not None:
            self.build((None, self.num_features))

    def build(self, input_shape: tuple) -> None:
        _checks.fitted_input(self, input_shape, "no components yet: call `fit(x)`")
        if self.n_components > self.num_features:
            raise ValueError(
                f"`n_components` must be at most `num_features` = {self.num_features}. "
                f"Received: n_components={self.n_components}"
            )
        k, d = self.n_components, self.num_features
        self.mean = self.add_weight(shape=(d,), initializer="zeros", trainable=False, name="mean")
        self.components = self.add_weight(
            shape=(k, d), initializer="zeros", trainable=False, name="components"
        )
        self.explained_variance = self.add_weight(
            shape=(k,), initializer="zeros", trainable=False, name="explained_variance"
        )
        self.explained_variance_ratio = self.add_weight(
            shape=(k,), initializer="zeros", trainable=False, name="explained_variance_ratio"
        )

    def fit(self, x: Any = None, y: Any = None, **kwargs: Any) -> PCA:
        """Computes the mean and the principal components of `x`.

        Training-loop arguments of `keras.Model.fit` (`epochs`, `batch_size`, `verbose`,
        `callbacks`, `shuffle`) are accepted and ignored.

        Args:
            x: Samples, shape `(n, num_features)` with `n > n_components`. Defaults to `None`.
            y: Ignored (PCA has no targets); must be `None`. Defaults to `None`.
            **kwargs: The training-loop arguments above, ignored.

        Returns:
            The model itself.

        Raises:
            ValueError: if `x` is not a finite 2-D array with more than `n_components` rows
                and at least `n_components` columns, its width differs from an earlier `fit`,
                `y` is given, or `kwargs` holds another argument.
        """
        _checks.only_fit_loop_args(kwargs, "PCA.fit only analyses `x`")
        if y is not None:
            raise ValueError(f"PCA.fit takes no targets. Received: y with shape {np.shape(y)}")
        x = np.asarray(x, dtype="float64")
        if x.ndim != 2 or len(x) <= self.n_components or x.shape[1] < self.n_components:
            raise ValueError(
                "`x` must be a 2-D array (samples, features) with more than `n_components` = "
                f"{self.n_components} samples and at least as many features. "
                f"Received: x.shape={x.shape}"
            )
        _checks.finite_and_as_wide(x, self, "analyses")
        mean = x.mean(axis=0)
        _, singular, vt = np.linalg.svd(x - mean, full_matrices=False)
        components = vt[: self.n_components]
        # SVD leaves each sign free; make the largest-magnitude entry positive.
        largest = np.argmax(np.abs(components), axis=1)
        components *= np.sign(components[np.arange(len(components)), largest])[:, None]
        variances = singular**2 / (len(x) - 1)
        total = variances.sum()
        kept = variances[: self.n_components]
        ratios = kept / total if total > 0 else np.zeros_like(kept)
        if not self.built:
            self.num_features = int(x.shape[1])
            self.build((None, self.num_features))
        for weight, value in (
            (self.mean, mean),
            (self.components, components),
            (self.explained_variance, kept),
            (self.explained_variance_ratio, ratios),
        ):
            weight.assign(value.astype(weight.dtype))
        return self

    def call(self, inputs):
        x = ops.cast(inputs, self.mean.dtype) - self.mean
        return ops.matmul(x, ops.transpose(self.components))

    def reconstruct(self, z: Any) -> Any:
        """Maps projections back to the input space: `z V_k^T + mu`.

        Args:
            z: Projections, shape `(batch, n_components)`.

        Returns:
            A tensor `(batch, num_features)`.
        """
        z = ops.cast(z, self.components.dtype)
        return ops.matmul(z, self.components) + self.mean

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"n_components": self.n_components, "num_features": self.num_features})
        return config
