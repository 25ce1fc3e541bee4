"""NBSVM: logistic regression on word n-grams scaled by their naive-Bayes log-count ratios."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from i2dl_keras.classic import _checks
from i2dl_keras.data.vocabulary import adapt_vocabulary

__all__ = ["NBSVMClassifier"]

STANDARDIZE = ("lower", "lower_and_strip_punctuation", "strip_punctuation", None)


@keras.saving.register_keras_serializable(package="i2dl_keras")
class NBSVMClassifier(keras.Model):
    """A linear classifier of raw strings: naive-Bayes-weighted word n-grams (NBSVM).

    Wang & Manning (2012), "Baselines and Bigrams": a text becomes a binary bag of word n-grams
    `f` in `{0, 1}^V`. With `p` one plus the sum of `f` over the positive texts and `q` the same
    over the negative ones, the log-count ratio `r = log(p / |p|_1) - log(q / |q|_1)` scales the
    features, and an L2-regularised logistic regression is fitted on `f * r` (the paper's
    NBSVM uses the hinge loss; the logistic loss gives probabilities). `solve` does this exactly
    with scikit-learn's solver and stores `w * r` in one sigmoid unit, so that
    `p(y = 1 | text) = sigmoid(f(text) . (w * r) + b)` with no scaling layer.

    The vocabulary holds the `max_tokens - 1` most frequent n-grams of the texts `solve` sees
    (kept by `i2dl_keras.data.adapt_vocabulary`, so it survives a reload); any other n-gram
    falls into the out-of-vocabulary column, which weighs nothing. Two classes only. The
    weights come from `solve`, not from gradient steps.

    Args:
        max_tokens: Width of the bag: the n-grams kept plus one out-of-vocabulary column.
            Defaults to `200000`.
        ngrams: Longest n-gram in words; all shorter ones count too. Defaults to `2`.
        standardize: How `keras.layers.TextVectorization` prepares the text before splitting
            it at white space: `"lower"` (punctuation stays, as words),
            `"lower_and_strip_punctuation"`, `"strip_punctuation"` or `None`. Defaults to
            `"lower"`.
        c: Inverse strength of the L2 penalty of the logistic regression (scikit-learn's `C`).
            Defaults to `1.0`.
        **kwargs: Forwarded to `keras.Model` (e.g. `name`).

    Call arguments:
        inputs: A `(batch,)` string tensor of raw texts.

    Returns:
        From `call`: `p(y = 1 | text)`, shape `(batch, 1)`.

    Raises:
        ValueError: if `max_tokens` or `ngrams` is out of range, `standardize` is unknown or
            `c` is not positive.

    Example:

    >>> model = i2dl_keras.classic.NBSVMClassifier().solve(train_texts, train_labels)
    >>> model(tf.constant(["a gripping , funny film"]))   # p(positive), shape (1, 1)
    """

    def __init__(
        self,
        max_tokens: int = 200_000,
        ngrams: int = 2,
        standardize: str | None = "lower",
        c: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_tokens = _checks.int_at_least("max_tokens", max_tokens, 2)
        self.ngrams = _checks.int_at_least("ngrams", ngrams, 1)
        if standardize not in STANDARDIZE:
            raise ValueError(
                f"`standardize` must be one of {STANDARDIZE}. Received: standardize={standardize!r}"
            )
        self.standardize = standardize
        self.c = _checks.non_negative_float("c", c)
        if self.c == 0.0:
            raise ValueError(f"`c` must be a float > 0. Received: c={c!r}")
        # Padded to the full width, so that the unit after it has one shape whatever the data;
        # sparse, so that a batch costs its n-grams, not `max_tokens` numbers per text.
        self.vectorizer = keras.layers.TextVectorization(
            max_tokens=self.max_tokens,
            standardize=self.standardize,
            ngrams=self.ngrams,
            output_mode="multi_hot",
            pad_to_max_tokens=True,
            sparse=True,
            name="vectorize",
        )
        self.linear = keras.layers.Dense(1, activation="sigmoid", name="probability")
        self.build((None,))

    def build(self, input_shape: tuple) -> None:
        if not self.linear.built:
            self.linear.build((None, self.max_tokens))

    @property
    def input_dtype(self) -> str:
        """The inputs are raw strings (what `model.export` declares as the input)."""
        return "string"

    def call(self, inputs):
        return self.linear(self.vectorizer(inputs))

    @property
    def num_ngrams(self) -> int:
        """How many n-grams the vocabulary holds (0 before `solve`)."""
        return max(0, self.vectorizer.vocabulary_size() - 1)

    def solve(self, texts: Any, labels: Any) -> NBSVMClassifier:
        """Adapts the vocabulary to `texts` and sets the weights to the fitted NBSVM.

        Args:
            texts: `n` raw texts (`str` or UTF-8 `bytes`), a list or a 1-D array.
            labels: `n` labels, 0 (negative) or 1 (positive), shape `(n,)` or `(n, 1)`; both
                classes must occur.

        Returns:
            The model itself.

        Raises:
            ValueError: if `texts` is not 1-D, `labels` does not match it, holds values other
                than 0 and 1, or only one class.
        """
        from scipy import sparse
        from sklearn.linear_model import LogisticRegression

        texts = np.asarray(texts, dtype=object)
        if texts.ndim != 1 or not len(texts):
            raise ValueError(
                f"`texts` must be a non-empty 1-D sequence of strings. Received: "
                f"texts.shape={texts.shape}"
            )
        y = np.asarray(labels)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.shape != texts.shape:
            raise ValueError(
                f"`labels` must hold one label per text, shape ({len(texts)},) or "
                f"({len(texts)}, 1). Received: labels.shape={np.shape(labels)}"
            )
        if not np.isin(y, (0, 1)).all() or len(np.unique(y)) != 2:
            raise ValueError(
                "`labels` must be 0 or 1, with both classes present. Received: "
                f"labels={np.unique(y).tolist()} (distinct values)"
            )
        y = y.astype(np.int64)
        adapt_vocabulary(self.vectorizer, tf.data.Dataset.from_tensor_slices(texts).batch(256))
        bag = self.vectorizer(tf.constant(texts))
        rows, columns = bag.indices.numpy().T
        x = sparse.csr_matrix((bag.values.numpy(), (rows, columns)), shape=bag.dense_shape.numpy())
        # The ratios cover the adapted n-grams only: not the out-of-vocabulary column 0, which
        # then weighs nothing, nor the padding columns past the vocabulary.
        size = self.vectorizer.vocabulary_size()
        x = x[:, 1:size]
        positive = 1.0 + np.asarray(x[y == 1].sum(0)).ravel()
        negative = 1.0 + np.asarray(x[y == 0].sum(0)).ravel()
        ratio = np.log(positive / positive.sum()) - np.log(negative / negative.sum())
        regression = LogisticRegression(C=self.c, max_iter=2000)
        regression.fit(x.multiply(ratio).tocsr(), y)
        kernel = np.zeros((self.max_tokens, 1), np.float32)
        kernel[1:size, 0] = regression.coef_.ravel() * ratio
        self.linear.kernel.assign(kernel)
        self.linear.bias.assign(regression.intercept_.astype(np.float32))
        return self

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "max_tokens": self.max_tokens,
                "ngrams": self.ngrams,
                "standardize": self.standardize,
                "c": self.c,
            }
        )
        return config
