"""k-nearest neighbours as a Keras model whose weights are the memorised training set."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from i2dl_keras.classic import _checks

__all__ = ["KNNClassifier"]


@keras.saving.register_keras_serializable(package="i2dl_keras")
class KNNClassifier(_checks.IndexPredictor, keras.Model):
    """k-nearest-neighbour classifier: vote shares of the `k` closest memorised samples.

    The course's kNN ("Machine Learning Basics"): training stores every sample; a query is given
    the most common class among its `k` nearest training samples by L2 distance. The memorised
    set lives in two non-trainable weights, `memory_x` `(memory_size, num_features)` and
    `memory_y` `(memory_size,)`, so a saved `.keras` file carries the memory with it and the
    model exports as a SavedModel like any other.

    `call(x)` returns, for each query, the share of the `k` neighbours' votes that each class
    got (rows sum to 1). Squared distances are computed for a whole batch at once as
    `|q|^2 - 2 q.m + |m|^2` (one matrix product); `predict` walks the queries in batches of
    `batch_size` so that the `(batch, memory_size)` distance matrix stays small.

    Ties are broken deterministically:

    - Equal distances: the neighbour memorised first (lower index in the training set) counts
      as nearer.
    - Equal votes (`predict`): the class of the nearest neighbour among the tied classes wins.
      For example with `k = 2` and neighbours of classes `[1, 0]` (nearest first) the vote
      shares are `[0.5, 0.5]` and `predict` answers `1`, where a plain argmax would answer `0`.

    Args:
        k: Number of neighbours that vote. Defaults to `1`.
        num_classes: Number of classes; labels are integers in `[0, num_classes)`.
        num_features: Features per sample. Set by `memorize`; give it only to rebuild a model
            (as `from_config` does). Defaults to `None`.
        memory_size: Number of memorised samples. Set by `memorize`, as `num_features`.
            Defaults to `None`.
        **kwargs: Forwarded to `keras.Model` (e.g. `name`).

    Call arguments:
        inputs: Queries of shape `(batch, num_features)`.

    Returns:
        From `call`: vote shares `(batch, num_classes)`. From `predict`: class indices
        `(batch,)` as a NumPy `int64` array.

    Raises:
        ValueError: if `k` or `num_classes` is not a positive integer, or at `memorize` if the
            data do not fit the model (see `memorize`).

    Example:

    >>> knn = i2dl_keras.classic.KNNClassifier(k=3, num_classes=2)
    >>> knn.memorize(x_train, y_train)
    >>> probabilities = knn(x_test)          # vote shares, (n_test, 2)
    >>> labels = knn.predict(x_test)         # argmax with the nearest-neighbour tie break
    """

    def __init__(
        self,
        k: int = 1,
        num_classes: int | None = None,
        num_features: int | None = None,
        memory_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.k = _checks.int_at_least("k", k, 1)
        if num_classes is None:
            raise ValueError(
                "`num_classes` must be an integer >= 1 (the labels are 0 .. num_classes - 1). "
                "Received: num_classes=None"
            )
        self.num_classes = _checks.int_at_least("num_classes", num_classes, 1)
        self.num_features = _checks.optional_int_at_least("num_features", num_features, 1)
        self.memory_size = _checks.optional_int_at_least("memory_size", memory_size, 1)
        if self.memory_size is not None and self.memory_size < self.k:
            raise ValueError(
                f"`memory_size` must be at least `k` = {self.k}. "
                f"Received: memory_size={memory_size}"
            )

    def build(self, input_shape: tuple) -> None:
        _checks.fitted_input(
            self,
            input_shape,
            "no memory yet: call `memorize(x, y)` (or `fit`)",
            fitted=self.memory_size is not None and self.num_features is not None,
            received=f"memory_size={self.memory_size}",
        )
        self.memory_x = self.add_weight(
            shape=(self.memory_size, self.num_features),
            initializer="zeros",
            trainable=False,
            name="memory_x",
        )
        self.memory_y = self.add_weight(
            shape=(self.memory_size,),
            initializer="zeros",
            dtype="int32",
            trainable=False,
            name="memory_y",
        )

    def memorize(self, x: Any, y: Any) -> KNNClassifier:
        """Stores the training set: kNN's whole training.

        The first call fixes `memory_size` and `num_features` and creates the weights; later
        calls overwrite the memory with a set of the same shape.

        Args:
            x: Training samples, shape `(n, num_features)`.
            y: Integer labels in `[0, num_classes)`, shape `(n,)` or `(n, 1)`.

        Returns:
            The model itself.

        Raises:
            ValueError: if `x` is not 2-D, `y` is not integer labels of the right length and
                range, `n < k`, or the shape differs from an earlier `memorize`.
        """
        x = np.asarray(x)
        y = np.asarray(y)
        if x.ndim != 2 or len(x) == 0:
            raise ValueError(
                "`x` must be a non-empty 2-D array (samples, features). "
                f"Received: x.shape={x.shape}"
            )
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or len(y) != len(x):
            raise ValueError(
                f"`y` must hold one label per sample of `x`, shape ({len(x)},). "
                f"Received: y.shape={y.shape}"
            )
        if not np.all(np.equal(np.mod(y, 1), 0)) or y.min() < 0 or y.max() >= self.num_classes:
            raise ValueError(
                f"`y` must be integer labels in [0, {self.num_classes}). "
                f"Received: y with values in [{y.min()}, {y.max()}]"
            )
        if len(x) < self.k:
            raise ValueError(
                f"`x` must hold at least `k` = {self.k} samples. Received: x.shape={x.shape}"
            )
        if self.built:
            if (self.memory_size, self.num_features) != x.shape:
                raise ValueError(
                    "This model already memorised a set of shape "
                    f"{(self.memory_size, self.num_features)}; create a new KNNClassifier "
                    f"for a set of another shape. Received: x.shape={x.shape}"
                )
        else:
            self.memory_size, self.num_features = (int(s) for s in x.shape)
            self.build((None, self.num_features))
        self.memory_x.assign(x.astype(self.memory_x.dtype))
        self.memory_y.assign(y.astype("int32"))
        return self

    def fit(self, x: Any = None, y: Any = None, **kwargs: Any) -> None:
        """Alias of `memorize`, so that `k_fold` and `bootstrap_fit` can use a kNN.

        Training-loop arguments of `keras.Model.fit` (`epochs`, `batch_size`, `verbose`,
        `callbacks`, `shuffle`) are accepted and ignored, since memorising takes one pass.

        Args:
            x: Training samples, as in `memorize`. Defaults to `None`.
            y: Integer labels, as in `memorize`. Defaults to `None`.
            **kwargs: The training-loop arguments above, ignored.

        Returns:
            `None` (there is no training history).

        Raises:
            ValueError: for any other keyword argument, or as `memorize`.
        """
        _checks.only_fit_loop_args(kwargs, "KNNClassifier.fit only memorises (x, y)")
        self.memorize(x, y)

    def _neighbour_labels(self, inputs):
        x = ops.cast(inputs, self.memory_x.dtype)
        squared = _checks.squared_distances(x, ops.convert_to_tensor(self.memory_x))
        # top_k orders equal values by index, which is the documented tie break.
        _, indices = ops.top_k(-squared, k=self.k, sorted=True)
        labels = ops.take(ops.convert_to_tensor(self.memory_y), indices)
        return ops.one_hot(labels, self.num_classes, dtype=self.compute_dtype)

    def call(self, inputs):
        votes = ops.sum(self._neighbour_labels(inputs), axis=1)
        return votes / float(self.k)

    def _tie_broken_scores(self, inputs):
        one_hot = self._neighbour_labels(inputs)
        votes = ops.sum(one_hot, axis=1)
        # A bonus below one vote, larger the nearer a class's best neighbour: it only decides
        # between classes with equal votes, and then for the class of the nearest neighbour.
        rank_bonus = (self.k - np.arange(self.k, dtype="float32")) / (self.k + 1.0) / self.k
        rank_bonus = ops.reshape(ops.convert_to_tensor(rank_bonus, one_hot.dtype), (1, -1, 1))
        return votes + ops.max(one_hot * rank_bonus, axis=1)

    def _batch_indices(self, batch):
        return ops.argmax(self._tie_broken_scores(batch), axis=-1)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "k": self.k,
                "num_classes": self.num_classes,
                "num_features": self.num_features,
                "memory_size": self.memory_size,
            }
        )
        return config
