"""L1, L2 and mean squared error: formulas, the L1-median erratum, rank handling and configs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras import losses
from i2dl_keras.testing import run_serialization_test

Y_TRUE = np.array([[1.0, 2.0, -1.0], [0.0, 0.5, 3.0]], dtype="float32")
Y_PRED = np.array([[0.0, 4.0, -1.5], [1.0, 0.5, 1.0]], dtype="float32")


def test_correctness():
    # Row errors: [1, -2, 0.5] and [-1, 0, 2].
    np.testing.assert_allclose(losses.l1(Y_TRUE, Y_PRED), [3.5, 3.0], atol=1e-6)
    np.testing.assert_allclose(losses.l2(Y_TRUE, Y_PRED), [5.25, 5.0], atol=1e-6)
    np.testing.assert_allclose(
        losses.mean_squared_error(Y_TRUE, Y_PRED), [1.75, 5.0 / 3.0], atol=1e-6
    )
    # The classes average the per-sample values over the batch.
    assert float(losses.L1()(Y_TRUE, Y_PRED)) == pytest.approx(3.25, abs=1e-6)
    assert float(losses.L2()(Y_TRUE, Y_PRED)) == pytest.approx(5.125, abs=1e-6)
    assert float(losses.MeanSquaredError()(Y_TRUE, Y_PRED)) == pytest.approx(
        (1.75 + 5.0 / 3.0) / 2, abs=1e-6
    )
    assert float(losses.L1(reduction="sum")(Y_TRUE, Y_PRED)) == pytest.approx(6.5, abs=1e-6)
    weighted = losses.L2()(Y_TRUE, Y_PRED, sample_weight=np.array([1.0, 0.0]))
    assert float(weighted) == pytest.approx(5.25 / 2, abs=1e-6)

    rng = np.random.default_rng(0)
    y, p = rng.normal(size=(2, 4, 5)), rng.normal(size=(2, 4, 5))
    np.testing.assert_allclose(
        losses.mean_squared_error(y, p), keras.losses.mean_squared_error(y, p), rtol=1e-6
    )
    np.testing.assert_allclose(
        losses.MeanSquaredError()(y, p), keras.losses.MeanSquaredError()(y, p), rtol=1e-6
    )


def test_trailing_axis_of_one_is_matched_not_broadcast():
    y = np.array([1.0, 2.0, 3.0], dtype="float32")
    p = np.array([[1.5], [2.0], [5.0]], dtype="float32")
    # Broadcasting (3,) against (3, 1) would give a (3, 3) error matrix and a loss of 9 or more.
    np.testing.assert_allclose(losses.l1(y, p), [0.5, 0.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(losses.l1(p, y), [0.5, 0.0, 2.0], atol=1e-6)
    assert float(losses.L2()(y, p)) == pytest.approx((0.25 + 4.0) / 3, abs=1e-6)
    # Higher ranks drop the size-1 axis, as Keras does: (2, 3, 1) against (2, 3) is per sample.
    seq_true, seq_pred = np.ones((2, 3), "float32"), np.zeros((2, 3, 1), "float32")
    np.testing.assert_allclose(losses.l1(seq_true, seq_pred), [3.0, 3.0], atol=1e-6)
    np.testing.assert_allclose(
        losses.mean_squared_error(seq_true, seq_pred),
        keras.losses.mean_squared_error(seq_true, seq_pred),
        atol=1e-6,
    )


def test_l1_minimiser_is_the_median_not_the_mean():
    # Erratum in the notes: "L1 ... optimum is the mean". Skewed targets separate the two.
    targets = np.array([0.0, 1.0, 2.0, 10.0, 100.0, 3.0, 2.5], dtype="float32")
    assert np.median(targets) == 2.5 and np.mean(targets) == pytest.approx(16.9286, abs=1e-4)
    grid = np.arange(-5.0, 105.0, 0.01, dtype="float32")
    # One row per candidate constant c: the loss of predicting c for every target.
    y = np.tile(targets, (len(grid), 1))
    p = np.tile(grid[:, None], (1, len(targets)))
    assert grid[int(np.argmin(losses.l1(y, p)))] == pytest.approx(2.5, abs=0.011)
    assert grid[int(np.argmin(losses.l2(y, p)))] == pytest.approx(16.9286, abs=0.011)

    # Subgradient descent on the L1 class: the subgradient mean(sign(c - y_i)) vanishes at the
    # median (7 here; the mean is 13.2). Between 1 and 7 it is -0.2, so lr 1 climbs 0.2 a step.
    targets = np.array([[0.0], [1.0], [7.0], [8.0], [50.0]], dtype="float32")
    c = keras.Variable(np.zeros((1, 1), "float32"))
    for lr in [1.0] * 40 + [0.1] * 40 + [0.01] * 40:
        with tf.GradientTape() as tape:
            loss = losses.L1()(targets, c * np.ones_like(targets))
        c.assign_sub(lr * tape.gradient(loss, c))
    assert float(c.numpy()[0, 0]) == pytest.approx(7.0, abs=0.02)


def test_config_and_bad_arguments():
    for cls in (losses.L1, losses.L2, losses.MeanSquaredError):
        revived = run_serialization_test(cls(reduction="sum", name="custom", dtype="float64"))
        assert type(revived) is cls
        assert (revived.reduction, revived.name, revived.dtype) == ("sum", "custom", "float64")
        with pytest.raises(ValueError, match="Received: reduction=average"):
            cls(reduction="average")
