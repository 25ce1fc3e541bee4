"""The losses, regularizers and initializers inside compiled models: fit, save, reload."""

import keras
import numpy as np
import pytest

import i2dl_keras
from i2dl_keras import initializers, losses, regularizers
from i2dl_keras.testing import run_model_saving_test

X = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
IDS = np.array([0, 1, 2, 0, 1, 2, 0, 1])

LOSSES = [
    (losses.L1(), X[:, :3]),
    (losses.L2(), X[:, :3]),
    (losses.MeanSquaredError(), X[:, :3]),
    (losses.BinaryCrossentropy(from_logits=True), (X[:, :3] > 0).astype("float32")),
    (losses.CategoricalCrossentropy(from_logits=True), np.eye(3, dtype="float32")[IDS]),
    (losses.SparseCategoricalCrossentropy(from_logits=True), IDS),
    (losses.MulticlassHinge(margin=1.0), IDS),
    (losses.multiclass_hinge, IDS),
]


def test_usable_in_compile():
    # train_on_batch / test_on_batch run the compiled loss as fit / evaluate do, without their
    # data-pipeline overhead; the saving test below runs fit itself.
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    for loss, y in LOSSES:
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss=loss, run_eagerly=True)
        first = model.train_on_batch(X, y)
        fn = loss if isinstance(loss, keras.losses.Loss) else keras.losses.get(loss)
        expected = float(keras.ops.mean(fn(y, model(X))))
        assert model.test_on_batch(X, y) == pytest.approx(expected, rel=1e-5), loss
        assert expected < first, loss


def test_registered_names_do_not_collide():
    get = keras.saving.get_registered_object
    assert get("i2dl_keras>L1Loss") is losses.L1
    assert get("i2dl_keras>L2Loss") is losses.L2
    assert get("i2dl_keras>L1") is regularizers.L1
    assert get("i2dl_keras>L2") is regularizers.L2
    assert get("i2dl_keras>multiclass_hinge") is losses.multiclass_hinge


def _loss_model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)], name="hinge_model")
    model.compile(optimizer="sgd", loss=losses.MulticlassHinge(margin=0.5))
    model.fit(X, IDS, epochs=1, batch_size=8, verbose=0)
    return model


def _regularized_model():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(
        5,
        activation="sigmoid",
        kernel_initializer=initializers.Xavier(mode="fan_avg", distribution="uniform", seed=1),
        kernel_regularizer=regularizers.L1L2(l1=0.01, l2=0.02),
        activity_regularizer=regularizers.Sparsity(weight=0.1, target=0.2),
        name="code",
    )(inputs)
    outputs = keras.layers.Dense(
        4,
        kernel_initializer=initializers.He(seed=2),
        kernel_regularizer=regularizers.L2(0.03),
        bias_regularizer=regularizers.L1(0.04),
        name="decoder",
    )(hidden)
    model = keras.Model(inputs, outputs, name="regularized_model")
    model.compile(optimizer="sgd", loss=losses.L2())
    model.fit(X, X, epochs=1, batch_size=8, verbose=0)
    return model


def test_model_saving(tmp_path):
    hinge_model, reg_model = _loss_model(), _regularized_model()
    # One fresh process for both models: no custom_objects, same outputs.
    run_model_saving_test({"hinge": (hinge_model, X), "regularized": (reg_model, X)})

    reg_model(X)
    reg_losses = [float(v) for v in reg_model.losses]
    assert len(reg_losses) == 4  # two kernels, one bias, one activity penalty
    for model in (hinge_model, reg_model):
        model.save(tmp_path / f"{model.name}.keras")
    keras.backend.clear_session()
    hinge = keras.saving.load_model(tmp_path / "hinge_model.keras")
    assert type(hinge.loss) is losses.MulticlassHinge and hinge.loss.margin == 0.5
    reg = keras.saving.load_model(tmp_path / "regularized_model.keras")
    assert type(reg.loss) is losses.L2
    code, decoder = reg.get_layer("code"), reg.get_layer("decoder")
    assert type(code.kernel_regularizer) is regularizers.L1L2
    assert (code.kernel_regularizer.l1, code.kernel_regularizer.l2) == (0.01, 0.02)
    assert type(code.activity_regularizer) is regularizers.Sparsity
    assert code.activity_regularizer.get_config() == {"weight": 0.1, "target": 0.2}
    assert type(decoder.kernel_regularizer) is regularizers.L2
    assert type(decoder.bias_regularizer) is regularizers.L1
    assert type(code.kernel_initializer) is initializers.Xavier
    assert code.kernel_initializer.get_config() == {
        "mode": "fan_avg",
        "distribution": "uniform",
        "seed": 1,
    }
    assert type(decoder.kernel_initializer) is initializers.He
    reg(X)
    np.testing.assert_allclose([float(v) for v in reg.losses], reg_losses, rtol=1e-5)
    assert i2dl_keras.losses is losses
