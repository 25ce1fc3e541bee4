"""NBSVMClassifier: hand-worked weights, the same model as scikit-learn's, reload and export."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras.classic.nbsvm_classifier import NBSVMClassifier
from i2dl_keras.testing import run_export_test, run_model_saving_test, run_serialization_test

TEXTS = [
    "a wonderful , moving film",
    "dull and tedious",
    "the plot is predictable but the acting is wonderful and the score is moving",
    "boring",
    "an awful , tedious , predictable mess with a dull script",
    "wonderful",
]
LABELS = [1, 0, 1, 0, 0, 1]


def _scores(model, texts):
    return model(tf.constant(texts)).numpy()[:, 0]


def test_config():
    model = NBSVMClassifier(max_tokens=50, ngrams=3, standardize=None, c=0.5, name="nb")
    revived = run_serialization_test(model)
    assert (revived.max_tokens, revived.ngrams, revived.standardize, revived.c) == (
        50,
        3,
        None,
        0.5,
    )
    assert revived.name == "nb" and revived.num_ngrams == 0


def test_correctness_two_texts_by_hand():
    # Unigrams of "good film" (1) and "bad film" (0): p = 1 + counts = (film 2, good 2, bad 1),
    # q = (2, 1, 2), both summing to 5, so r = log(p / q) = (0, log 2, -log 2). The problem is
    # symmetric, so the bias is 0 and both words get the same regression weight u, the root of
    # u = a * sigmoid(-a u) with a = log 2 (gradient of u^2 / 2 + two logistic losses, C = 1):
    # u = 0.309536, and the kernel holds u * r = (0, 0.214554, -0.214554).
    model = NBSVMClassifier(max_tokens=10, ngrams=1).solve(["good film", "bad film"], [1, 0])
    assert model.vectorizer.get_vocabulary() == ["[UNK]", "film", "good", "bad"]
    assert model.num_ngrams == 3
    kernel = model.linear.kernel.numpy()[:, 0]
    np.testing.assert_allclose(kernel[:4], [0.0, 0.0, 0.214554, -0.214554], atol=1e-4)
    np.testing.assert_array_equal(kernel[4:], 0.0)  # the unused width weighs nothing
    np.testing.assert_allclose(model.linear.bias.numpy(), [0.0], atol=1e-4)
    # sigmoid(0.214554) = 0.553434; an unknown word and "film" alone say nothing.
    np.testing.assert_allclose(
        _scores(model, ["good film", "bad film", "film", "unseen"]),
        [0.553434, 0.446566, 0.5, 0.5],
        atol=1e-4,
    )


def test_matches_nbsvm_built_from_scikit_learn():
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    texts = np.array(TEXTS * 3 + ["Wonderful , WONDERFUL film", "a dull , dull mess"], dtype=object)
    labels = np.array(LABELS * 3 + [1, 0], dtype=np.float32)[:, None]
    model = NBSVMClassifier(c=0.5).solve(texts, labels)
    # The same model from scikit-learn alone: NB-scaled binary uni+bigram counts of the
    # lower-cased, white-space-split text, logistic regression.
    counts = CountVectorizer(ngram_range=(1, 2), binary=True, token_pattern=r"\S+")
    x = counts.fit_transform(texts)
    y = labels.ravel().astype(int)
    p = 1.0 + np.asarray(x[y == 1].sum(0)).ravel()
    q = 1.0 + np.asarray(x[y == 0].sum(0)).ravel()
    ratio = np.log(p / p.sum()) - np.log(q / q.sum())
    expected = LogisticRegression(C=0.5, max_iter=2000).fit(x.multiply(ratio).tocsr(), y)
    new = ["a wonderful , dull film", "tedious"]
    want = expected.predict_proba(counts.transform(new).multiply(ratio).tocsr())[:, 1]
    np.testing.assert_allclose(_scores(model, new), want, atol=1e-5)
    assert model.num_ngrams == len(counts.vocabulary_)


def _solved_with_line_break_tokens():
    # "mess\x85" (Latin-1's ellipsis byte) would split in two when Keras reads the saved
    # vocabulary back, shifting every n-gram after it: it is left out of the vocabulary.
    texts = [*TEXTS, "a tedious mess\x85 really", "wonderful\u2028fun"]
    model = NBSVMClassifier(max_tokens=64).solve(texts, [*LABELS, 0, 1])
    vocabulary = model.vectorizer.get_vocabulary()
    assert "tedious" in vocabulary and not any("\x85" in t or "\u2028" in t for t in vocabulary)
    queries = np.array(["a wonderful mess", "tedious , dull", "wonderful", ""])
    assert np.ptp(_scores(model, queries)) > 0.05, "the queries get different scores"
    return model, queries


def test_reload_keeps_the_vocabulary_and_the_scores(tmp_path):
    model, queries = _solved_with_line_break_tokens()
    model.save(tmp_path / "nbsvm.keras")
    reloaded = keras.saving.load_model(tmp_path / "nbsvm.keras")
    assert type(reloaded) is NBSVMClassifier and reloaded.c == model.c
    assert reloaded.vectorizer.get_vocabulary() == model.vectorizer.get_vocabulary()
    np.testing.assert_allclose(_scores(reloaded, queries), _scores(model, queries), atol=1e-6)


def test_fresh_process_reload_and_export():
    model, queries = _solved_with_line_break_tokens()
    run_model_saving_test(model, queries, atol=1e-6)
    run_export_test(model, queries, atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"`max_tokens` must be an integer >= 2\. .*=1"):
        NBSVMClassifier(max_tokens=1)
    with pytest.raises(ValueError, match=r"`ngrams` must be an integer >= 1\. .*=0"):
        NBSVMClassifier(ngrams=0)
    with pytest.raises(ValueError, match=r"Received: standardize='upper'"):
        NBSVMClassifier(standardize="upper")
    with pytest.raises(ValueError, match=r"Received: c=0"):
        NBSVMClassifier(c=0)
    model = NBSVMClassifier(max_tokens=20)
    with pytest.raises(ValueError, match=r"Received: labels=\[1\]"):
        model.solve(["good", "fine"], [1, 1])
    with pytest.raises(ValueError, match=r"Received: labels=\[0, 2\]"):
        model.solve(["good", "bad"], [2, 0])
    with pytest.raises(ValueError, match=r"Received: labels.shape=\(3,\)"):
        model.solve(["good", "bad"], [1, 0, 1])
    with pytest.raises(ValueError, match=r"Received: texts.shape=\(1, 2\)"):
        model.solve([["good", "bad"]], [1, 0])
