"""DecoupledWeightDecay: the exact course update, exclusions, compile/fit, save and reload."""

import keras
import numpy as np
import pytest

from i2dl_keras.optimizers import DecoupledWeightDecay
from i2dl_keras.testing import run_model_saving_test, run_serialization_test

A = np.array([[2.0, 0.3], [0.3, 1.0]])
B = np.array([1.0, -1.0])
THETA0 = np.array([1.5, -0.8])


def grad(theta):
    return A @ theta - B


def f32(value):
    return float(np.float32(value))


def run(optimizer, steps=4, extra_grad=None):
    variable = keras.Variable(THETA0.copy(), dtype="float64")
    out = [THETA0.copy()]
    for _ in range(steps):
        theta = np.asarray(variable.numpy())
        g = grad(theta) if extra_grad is None else grad(theta) + extra_grad(theta)
        optimizer.apply([keras.ops.convert_to_tensor(g, "float64")], [variable])
        out.append(np.asarray(variable.numpy()).copy())
    return np.array(out)


def test_config():
    opt = DecoupledWeightDecay(
        keras.optimizers.Adam(2e-3, beta_1=0.8), 0.01, exclude_from_decay=["bias", "gamma"]
    )
    revived = run_serialization_test(opt)
    assert revived.weight_decay == 0.01
    assert revived.exclude_from_decay == ["bias", "gamma"]
    assert isinstance(revived.inner_optimizer, keras.optimizers.Adam)
    assert revived.inner_optimizer.beta_1 == 0.8
    np.testing.assert_allclose(float(revived.learning_rate.numpy()), 2e-3, rtol=1e-6)
    # An identifier works as the inner optimizer too.
    assert isinstance(DecoupledWeightDecay("sgd", 0.1).inner_optimizer, keras.optimizers.SGD)


def test_correctness_sgd_is_the_course_formula_and_keras_decay_over_lr():
    alpha, lam = f32(0.1), 0.05
    theta, expected = THETA0.copy(), [THETA0.copy()]
    for _ in range(4):
        theta = theta - alpha * grad(theta) - lam * theta  # the course rule (decay linear in theta)
        expected.append(theta)
    got = run(DecoupledWeightDecay(keras.optimizers.SGD(0.1), lam))
    np.testing.assert_allclose(got, np.array(expected), atol=1e-6, rtol=0)
    # Keras' built-in weight_decay is scaled by the learning rate: wd / lr gives the same steps.
    keras_builtin = run(keras.optimizers.SGD(0.1, weight_decay=lam / 0.1))
    np.testing.assert_allclose(got, keras_builtin, atol=1e-6, rtol=0)
    # ... and the same number passed to Keras decays ten times less.
    assert np.max(np.abs(run(keras.optimizers.SGD(0.1, weight_decay=lam)) - got)) > 1e-2
    # The erratum's "- lambda * theta^2" is a different update.
    theta, squared = THETA0.copy(), [THETA0.copy()]
    for _ in range(4):
        theta = theta - alpha * grad(theta) - lam * theta**2
        squared.append(theta)
    assert np.max(np.abs(np.array(squared) - got)) > 1e-2


def test_correctness_adam_decay_is_decoupled_from_the_adaptive_step():
    alpha, lam, b1, b2, eps = f32(0.05), 0.02, 0.9, 0.999, 1e-7
    theta, m, v, expected = THETA0.copy(), np.zeros(2), np.zeros(2), [THETA0.copy()]
    for t in range(1, 5):
        g = grad(theta)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        # Keras' Adam step (see test_course_update_rules.py for the bias-correction details).
        c1, c2 = 1 - f32(b1) ** t, 1 - f32(b2) ** t
        adam_step = alpha * np.sqrt(c2) / c1 * m / (np.sqrt(v) + eps)
        theta = theta - adam_step - lam * theta
        expected.append(theta)
    got = run(DecoupledWeightDecay(keras.optimizers.Adam(0.05), lam))
    np.testing.assert_allclose(got, np.array(expected), atol=1e-6, rtol=0)
    # L2 regularization under Adam (lambda * theta added to the gradient, which Adam then
    # normalizes) is not the same thing.
    l2 = run(keras.optimizers.Adam(0.05), extra_grad=lambda th: lam * th)
    assert np.max(np.abs(l2 - got)) > 1e-2


def test_excluded_variables_are_not_decayed_in_fit():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4, bias_initializer="ones"),
            keras.layers.LayerNormalization(),
            keras.layers.Dense(1, bias_initializer="ones"),
        ]
    )
    # A zero learning rate leaves only the decay: decayed weights shrink by (1 - wd) per step.
    opt = DecoupledWeightDecay(
        keras.optimizers.SGD(0.0), 0.1, exclude_from_decay=["bias", "gamma", "beta"]
    )
    model.compile(optimizer=opt, loss="mse")
    before = {v.path: np.array(v.numpy()) for v in model.trainable_variables}
    x, y = np.ones((8, 3), "float32"), np.zeros((8, 1), "float32")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)  # two steps
    decayed = []
    for v in model.trainable_variables:
        if opt.is_decayed(v):
            decayed.append(v.path)
            np.testing.assert_allclose(v.numpy(), before[v.path] * 0.81, rtol=1e-6, atol=0)
        else:
            np.testing.assert_array_equal(v.numpy(), before[v.path])
    assert sorted(decayed) == sorted(p for p in before if p.endswith("kernel"))
    assert int(opt.iterations.numpy()) == 2


def test_fit_save_and_reload_in_a_fresh_process(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]])).astype("float32")
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(8, "relu"), keras.layers.Dense(1)]
    )
    model.compile(
        optimizer=DecoupledWeightDecay(keras.optimizers.Adam(0.01), 1e-3, ["bias"]), loss="mse"
    )
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    run_model_saving_test({"decoupled_weight_decay": (model, x[:4])})

    # The optimizer (wrapper, inner optimizer and its state) comes back too.
    path = tmp_path / "m.keras"
    model.save(path)
    revived = keras.saving.load_model(path)
    opt, revived_opt = model.optimizer, revived.optimizer
    assert isinstance(revived_opt, DecoupledWeightDecay)
    assert revived_opt.exclude_from_decay == ["bias"] and revived_opt.weight_decay == 1e-3
    assert len(revived_opt.variables) == len(opt.variables) > 2
    for a, b in zip(opt.variables, revived_opt.variables):
        np.testing.assert_array_equal(np.asarray(a.numpy()), np.asarray(b.numpy()))
    assert int(revived_opt.iterations.numpy()) == 12


def test_invalid_arguments():
    cases = [
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"weight_decay": 1.0}, "weight_decay"),
        ({"weight_decay": "0.1"}, "weight_decay"),
        ({"weight_decay": 0.1, "exclude_from_decay": "bias"}, "exclude_from_decay"),
        ({"weight_decay": 0.1, "exclude_from_decay": ["("]}, "exclude_from_decay"),
        ({"weight_decay": 0.1, "clipnorm": 1.0}, "clipnorm"),
        ({"weight_decay": 0.1, "optimizer": keras.optimizers.AdamW()}, "optimizer.weight_decay"),
        (
            {"weight_decay": 0.1, "optimizer": keras.optimizers.SGD(gradient_accumulation_steps=2)},
            "optimizer.gradient_accumulation_steps",
        ),
    ]
    for kwargs, name in cases:
        optimizer = kwargs.pop("optimizer", keras.optimizers.SGD(0.1))
        with pytest.raises(ValueError, match=rf"Received: {name}="):
            DecoupledWeightDecay(optimizer, **kwargs)
