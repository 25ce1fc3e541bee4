"""The Dice loss and its class-weighted cross-entropy term, against numbers worked out by hand."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import i2dl_keras
from i2dl_keras.losses.dice import Dice, dice
from i2dl_keras.testing import run_model_saving_test, run_serialization_test

# One image of 1x2 pixels, two classes: pixel 0 is class 0 (p = 0.8), pixel 1 class 1 (p = 0.6).
Y = np.array([[[0, 1]]])
P = np.array([[[[0.8, 0.2], [0.4, 0.6]]]], dtype="float32")


def test_config():
    loss = Dice(smooth=0.5, dice_weight=2.0, crossentropy_weight=1.0, class_weights=[1, 3])
    config = loss.get_config()
    assert config["smooth"] == 0.5 and config["dice_weight"] == 2.0
    assert config["crossentropy_weight"] == 1.0 and config["class_weights"] == [1.0, 3.0]
    revived = run_serialization_test(loss)
    assert revived.class_weights == [1.0, 3.0]
    run_serialization_test(Dice(class_weights="balanced", from_logits=True))
    assert keras.saving.get_registered_object("i2dl_keras>Dice") is Dice
    assert keras.saving.get_registered_object("i2dl_keras>dice") is dice


def test_correctness():
    # By hand: class 0 (2*0.8 + 1) / (1.2 + 1 + 1) = 0.8125, class 1 (2*0.6 + 1) / (0.8 + 1 + 1)
    # = 0.785714; loss 1 - their mean.
    expected = 1.0 - (2.6 / 3.2 + 2.2 / 2.8) / 2
    np.testing.assert_allclose(dice(Y, P), [expected], rtol=1e-6)
    # Without smoothing: 1.6 / 2.2 and 1.2 / 1.8.
    np.testing.assert_allclose(dice(Y, P, smooth=0.0), [1 - (1.6 / 2.2 + 1.2 / 1.8) / 2], rtol=1e-6)
    # Labels as (..., 1) ids, or one-hot, give the same.
    np.testing.assert_allclose(dice(Y[..., None], P), [expected], rtol=1e-6)
    np.testing.assert_allclose(dice(np.eye(2)[Y], P), [expected], rtol=1e-6)
    # Logits: softmax first.
    logits = np.log(P)
    np.testing.assert_allclose(dice(Y, logits, from_logits=True), [expected], rtol=1e-5)
    # One sigmoid channel is P(class 1): p = 0.2 and 0.6 for class 1 are the same two pixels.
    np.testing.assert_allclose(dice(Y, P[..., 1:]), [expected], rtol=1e-6)
    # Perfect predictions cost 0; a class absent from truth and prediction scores 1 (smooth).
    perfect = np.eye(3, dtype="float32")[np.array([[[0, 0], [1, 1]]])]
    np.testing.assert_allclose(dice(np.array([[[0, 0], [1, 1]]]), perfect), [0.0], atol=1e-7)
    # Per image: two images, the second all wrong with certainty -> 1 - (1/(2+1) + 1/(2+1))/2.
    y2 = np.array([[[0, 1]], [[1, 1]]])
    p2 = np.array([[[[1, 0], [0, 1]]], [[[1, 0], [1, 0]]]], dtype="float32")
    np.testing.assert_allclose(dice(y2, p2), [0.0, 1 - (1 / 3 + 1 / 3) / 2], atol=1e-6)


def test_weighted_crossentropy():
    ce = -np.log([0.8, 0.6])  # per pixel
    plain = Dice(dice_weight=0.0, crossentropy_weight=1.0)
    np.testing.assert_allclose(plain.call(Y, P), [ce.mean()], rtol=1e-6)
    ours = float(plain(Y, P))
    theirs = float(keras.losses.SparseCategoricalCrossentropy()(Y, P))
    assert ours == pytest.approx(theirs, rel=1e-6)
    weighted = Dice(dice_weight=0.0, crossentropy_weight=1.0, class_weights=[1.0, 3.0])
    np.testing.assert_allclose(weighted.call(Y, P), [(ce[0] + 3 * ce[1]) / 2], rtol=1e-6)
    # Balanced, over the whole batch: 3 pixels of class 0 and 1 of class 1 in two images, so
    # w = 4 / (2 * 3) = 2/3 and 4 / (2 * 1) = 2; the mean weight over pixels stays 1.
    y = np.array([[[0, 0]], [[0, 1]]])
    p = np.array([[[[0.9, 0.1], [0.5, 0.5]]], [[[0.7, 0.3], [0.4, 0.6]]]], dtype="float32")
    pixel = -np.log([[0.9, 0.5], [0.7, 0.6]])
    w = np.array([[2 / 3, 2 / 3], [2 / 3, 2.0]])
    balanced = Dice(dice_weight=0.0, crossentropy_weight=1.0, class_weights="balanced")
    np.testing.assert_allclose(balanced.call(y, p), (w * pixel).mean(-1), rtol=1e-6)
    # Each class's pixels together weigh the same: class 0 carries 3 * 2/3 = 2, class 1 2.
    assert float(balanced(y, p)) == pytest.approx((w * pixel).sum() / 4, rel=1e-6)
    # ce+dice is the sum of the two.
    both = Dice(crossentropy_weight=1.0)
    np.testing.assert_allclose(both.call(Y, P), dice(Y, P) + ce.mean(), rtol=1e-6)
    # Extreme logits stay finite and match the log-softmax by hand.
    z = np.array([[[[-1000.0, 1000.0], [0.0, 0.0]]]], dtype="float32")
    got = Dice(dice_weight=0.0, crossentropy_weight=1.0, from_logits=True).call(Y, z)
    np.testing.assert_allclose(got, [(2000.0 + np.log(2.0)) / 2], rtol=1e-6)


def test_gradients_are_finite_and_lower_the_loss():
    logits = tf.Variable(np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype("float32"))
    y = np.random.default_rng(1).integers(0, 3, (2, 4, 4))
    loss = Dice(from_logits=True, crossentropy_weight=1.0, class_weights="balanced")
    with tf.GradientTape() as tape:
        value = loss(y, logits)
    grad = tape.gradient(value, logits)
    assert np.all(np.isfinite(grad.numpy()))
    logits.assign_sub(0.5 * grad)
    assert float(loss(y, logits)) < float(value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"smooth": -1.0}, "smooth"),
        ({"dice_weight": 0.0}, "cannot both be 0"),
        ({"class_weights": "heavy"}, "class_weights"),
        ({"class_weights": [1.0, -2.0]}, "class_weights"),
        ({"from_logits": 1}, "from_logits"),
    ],
)
def test_bad_arguments_say_what_was_received(kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        Dice(**kwargs)
    assert "Received:" in str(info.value)


def test_wrong_number_of_class_weights():
    loss = Dice(dice_weight=0.0, crossentropy_weight=1.0, class_weights=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="3 entries but the predictions have 2 classes"):
        loss(Y, P)


def test_trains_a_segmenter_and_reloads():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(8, 8, 8, 1)).astype("float32")
    y = (x[..., 0] > 0).astype("int32")
    model = i2dl_keras.models.unet((8, 8, 1), num_classes=2, depth=1, base_filters=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=Dice(crossentropy_weight=1.0))
    first = model.train_on_batch(x, y)
    for _ in range(10):
        last = model.train_on_batch(x, y)
    assert last < first
    # A model compiled with the loss reloads without custom_objects in the same process ...
    reloaded = _reload(model)
    assert isinstance(reloaded.loss, Dice) and reloaded.loss.crossentropy_weight == 1.0
    # ... and in a fresh one that imports only i2dl_keras, once the loss is re-exported there.
    if not hasattr(i2dl_keras.losses, "Dice"):
        pytest.skip("i2dl_keras.losses does not re-export Dice yet: fresh processes miss it")
    run_model_saving_test(model, x)


def _reload(model):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.keras"
        model.save(path)
        return keras.saving.load_model(path)
