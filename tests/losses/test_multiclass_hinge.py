"""Weston-Watkins multiclass hinge loss on the CS231n-style worked example."""

import numpy as np
import pytest

from i2dl_keras import losses
from i2dl_keras.testing import run_serialization_test

# Scores for (cat, car, frog) of a cat, a car and a frog image.
SCORES = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]], dtype="float32")
LABELS = np.array([0, 1, 2])


def test_correctness():
    # Cat: max(0, 5.1 - 3.2 + 1) + max(0, -1.7 - 3.2 + 1) = 2.9 + 0.
    # Car: both wrong classes trail by more than 1: 0.
    # Frog: max(0, 2.2 + 3.1 + 1) + max(0, 2.5 + 3.1 + 1) = 6.3 + 6.6 = 12.9.
    expected = [2.9, 0.0, 12.9]
    for labels in (LABELS, LABELS[:, None], np.eye(3, dtype="float32")[LABELS]):
        np.testing.assert_allclose(losses.multiclass_hinge(labels, SCORES), expected, atol=1e-5)
        got = losses.MulticlassHinge()(labels, SCORES)
        assert float(got) == pytest.approx(15.8 / 3, abs=1e-5), labels.shape

    # Margin 0: only scores above the correct one count: 5.1 - 3.2; 2.2 and 2.5 against -3.1.
    np.testing.assert_allclose(
        losses.multiclass_hinge(LABELS, SCORES, margin=0.0), [1.9, 0.0, 5.3 + 5.6], atol=1e-5
    )
    # Margin 3: the car's frog score now falls short by 3 - (4.9 - 2.0) = 0.1.
    np.testing.assert_allclose(
        losses.MulticlassHinge(margin=3.0, reduction=None)(LABELS, SCORES),
        [4.9, 0.1, 8.3 + 8.6],
        atol=1e-5,
    )

    rng = np.random.default_rng(0)
    s = rng.normal(size=(8, 5)).astype("float32")
    y = rng.integers(0, 5, size=8)
    margins = np.maximum(0.0, s - s[np.arange(8), y][:, None] + 0.5)
    margins[np.arange(8), y] = 0.0
    np.testing.assert_allclose(
        losses.multiclass_hinge(y, s, margin=0.5), margins.sum(-1), rtol=1e-5, atol=1e-6
    )


def test_config_and_bad_arguments():
    revived = run_serialization_test(losses.MulticlassHinge(margin=0.5, name="svm"))
    assert (type(revived), revived.margin, revived.name) == (losses.MulticlassHinge, 0.5, "svm")
    for margin in (-0.1, float("inf"), "1", True):
        with pytest.raises(ValueError, match=r"`margin` must be a finite number >= 0\. Received"):
            losses.MulticlassHinge(margin=margin)
        with pytest.raises(ValueError, match=f"Received: margin={margin!r}"):
            losses.multiclass_hinge(LABELS, SCORES, margin=margin)
