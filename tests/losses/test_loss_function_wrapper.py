"""LossFunctionWrapper: every loss class equals its function, and configs saved before load."""

import keras
import numpy as np
import pytest

from i2dl_keras import losses
from i2dl_keras.losses.dice import _weighted_crossentropy
from i2dl_keras.testing import run_serialization_test

RNG = np.random.default_rng(0)
REAL = RNG.normal(size=(6, 4)).astype("float32")
TARGET = RNG.normal(size=(6, 4)).astype("float32")
BINARY = RNG.integers(0, 2, size=(6, 4)).astype("float32")
IDS = RNG.integers(0, 4, size=6)
PROBS = keras.ops.convert_to_numpy(keras.ops.softmax(REAL))
PIXELS = RNG.normal(size=(2, 3, 3, 2)).astype("float32")
PIXEL_IDS = RNG.integers(0, 2, size=(2, 3, 3))

# (class instance, its function with the same arguments, y_true, y_pred)
CASES = [
    (losses.L1(), losses.l1, TARGET, REAL),
    (losses.L2(), losses.l2, TARGET, REAL),
    (losses.MeanSquaredError(), losses.mean_squared_error, TARGET, REAL),
    (
        losses.BinaryCrossentropy(from_logits=True),
        lambda y, p: losses.binary_crossentropy(y, p, from_logits=True),
        BINARY,
        REAL,
    ),
    (losses.BinaryCrossentropy(), losses.binary_crossentropy, BINARY, PROBS),
    (
        losses.CategoricalCrossentropy(from_logits=True),
        lambda y, p: losses.categorical_crossentropy(y, p, from_logits=True),
        np.eye(4, dtype="float32")[IDS],
        REAL,
    ),
    (
        losses.SparseCategoricalCrossentropy(),
        losses.sparse_categorical_crossentropy,
        IDS,
        PROBS,
    ),
    (
        losses.MulticlassHinge(margin=0.5),
        lambda y, p: losses.multiclass_hinge(y, p, margin=0.5),
        IDS,
        REAL,
    ),
    (
        losses.Dice(from_logits=True, smooth=0.5),
        lambda y, p: losses.dice(y, p, from_logits=True, smooth=0.5),
        PIXEL_IDS,
        PIXELS,
    ),
    (
        losses.Dice(dice_weight=2.0, crossentropy_weight=3.0, class_weights=[1.0, 4.0]),
        lambda y, p: (
            2.0 * losses.dice(y, p) + 3.0 * _weighted_crossentropy(y, p, False, [1.0, 4.0])
        ),
        PIXEL_IDS,
        keras.ops.convert_to_numpy(keras.ops.softmax(PIXELS)),
    ),
]


@pytest.mark.parametrize(
    "loss, fn, y_true, y_pred", CASES, ids=[type(case[0]).__name__ for case in CASES]
)
def test_each_class_calls_its_function(loss, fn, y_true, y_pred):
    assert isinstance(loss, losses.LossFunctionWrapper)
    expected = keras.ops.convert_to_numpy(fn(y_true, y_pred))
    np.testing.assert_allclose(loss.call(y_true, y_pred), expected, rtol=1e-6)
    # The Loss base class averages the per-sample values over the batch.
    assert float(loss(y_true, y_pred)) == pytest.approx(float(expected.mean()), rel=1e-6)


# Configs as the hand-written `get_config` of each class wrote them into `.keras` files.
OLD_CONFIGS = [
    ("L1Loss", {"name": "a", "reduction": "sum", "dtype": "float32"}),
    ("L2Loss", {"name": "l2", "reduction": "sum_over_batch_size", "dtype": "float32"}),
    (
        "MeanSquaredError",
        {"name": "mean_squared_error", "reduction": "sum_over_batch_size", "dtype": "float64"},
    ),
    (
        "BinaryCrossentropy",
        {
            "name": "binary_crossentropy",
            "reduction": "sum_over_batch_size",
            "from_logits": True,
            "dtype": "float32",
        },
    ),
    (
        "CategoricalCrossentropy",
        {
            "name": "categorical_crossentropy",
            "reduction": "sum_over_batch_size",
            "from_logits": False,
            "dtype": "float32",
        },
    ),
    (
        "SparseCategoricalCrossentropy",
        {
            "name": "sparse_categorical_crossentropy",
            "reduction": "sum_over_batch_size",
            "from_logits": True,
            "dtype": "float32",
        },
    ),
    (
        "MulticlassHinge",
        {
            "name": "multiclass_hinge",
            "reduction": "sum_over_batch_size",
            "margin": 0.5,
            "dtype": "float32",
        },
    ),
    (
        "Dice",
        {
            "name": "dice",
            "reduction": "sum_over_batch_size",
            "from_logits": True,
            "smooth": 0.5,
            "dice_weight": 1.0,
            "crossentropy_weight": 1.0,
            "class_weights": [1.0, 3.0],
            "dtype": "float32",
        },
    ),
]


@pytest.mark.parametrize("registered_name, config", OLD_CONFIGS, ids=[n for n, _ in OLD_CONFIGS])
def test_configs_saved_by_the_hand_written_classes_load(registered_name, config):
    cls = keras.saving.get_registered_object(f"i2dl_keras>{registered_name}")
    assert cls is getattr(losses, cls.__name__)
    revived = keras.saving.deserialize_keras_object(
        {
            "module": cls.__module__,
            "class_name": cls.__name__,
            "config": dict(config),
            "registered_name": f"i2dl_keras>{registered_name}",
        }
    )
    assert type(revived) is cls
    assert revived.get_config() == config
    for key, value in config.items():
        assert getattr(revived, key) == value, key


def test_direct_use_saves_the_function():
    loss = losses.LossFunctionWrapper(losses.multiclass_hinge, reduction="sum", margin=0.5)
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]], dtype="float32")
    # By hand with margin 0.5: 5.1 - 3.2 + 0.5 = 2.4; car wins by more; 5.8 + 6.1 = 11.9.
    np.testing.assert_allclose(loss.call([0, 1, 2], scores), [2.4, 0.0, 11.9], atol=1e-5)
    assert float(loss([0, 1, 2], scores)) == pytest.approx(14.3, abs=1e-5)
    assert loss.margin == 0.5 and loss.name == "loss_function_wrapper"
    config = loss.get_config()
    assert config["fn"]["config"] == "i2dl_keras>multiclass_hinge"
    revived = run_serialization_test(loss)
    assert revived.fn is losses.multiclass_hinge
    assert (revived.margin, revived.reduction) == (0.5, "sum")
    # The arguments are read on every call: changing one changes the loss and the config.
    revived.margin = 0.0
    np.testing.assert_allclose(revived.call([0, 1, 2], scores), [1.9, 0.0, 10.9], atol=1e-5)
    assert revived.get_config()["margin"] == 0.0
    # A subclass fixes its function: its config does not carry one.
    assert "fn" not in losses.MulticlassHinge().get_config()


def test_direct_use_in_a_saved_model(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)])
    model.compile(optimizer="sgd", loss=losses.LossFunctionWrapper(losses.l1, name="abs"))
    model.save(tmp_path / "m.keras")
    loss = keras.saving.load_model(tmp_path / "m.keras").loss
    assert type(loss) is losses.LossFunctionWrapper
    assert (loss.fn, loss.name) == (losses.l1, "abs")


def test_bad_arguments():
    with pytest.raises(ValueError, match="`fn` must be callable. Received: fn='l1'"):
        losses.LossFunctionWrapper("l1")
    with pytest.raises(ValueError, match="`call` of `fn` would shadow .* Received: call=1"):
        losses.LossFunctionWrapper(losses.l1, call=1)
    with pytest.raises(ValueError, match="Received: reduction=average"):
        losses.LossFunctionWrapper(losses.l1, reduction="average")
