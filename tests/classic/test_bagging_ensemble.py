"""BaggingEnsemble, bootstrap_indices and bootstrap_fit: exact averaging, seeded resampling."""

import keras
import numpy as np
import pytest

from i2dl_keras.classic import BaggingEnsemble, bootstrap_fit, bootstrap_indices
from i2dl_keras.testing import run_serialization_test


def _mlp(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(2)]
    )


def test_config():
    revived = run_serialization_test(BaggingEnsemble([_mlp(0), _mlp(1)], name="bag"))
    assert len(revived.members) == 2 and revived.name == "bag"


def test_output_is_exactly_the_mean_of_the_members():
    members = [_mlp(seed) for seed in range(3)]
    ensemble = BaggingEnsemble(members)
    x = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    outputs = [member(x).numpy() for member in members]
    assert not np.allclose(outputs[0], outputs[1])  # the members really differ
    np.testing.assert_array_equal(
        ensemble(x).numpy(), (outputs[0] + outputs[1] + outputs[2]) / np.float32(3)
    )


class _Recorder(keras.Model):
    """A one-layer model whose `fit` records its data instead of training."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(1)

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, inputs):
        return self.dense(inputs)

    def fit(self, x, y, **kwargs):
        self.seen = (x, y, kwargs)


def test_bootstrap_indices_are_seeded_and_differ_per_member():
    samples = bootstrap_indices(50, n_members=4, seed=3)
    assert samples.shape == (4, 50) and samples.min() >= 0 and samples.max() < 50
    np.testing.assert_array_equal(samples, bootstrap_indices(50, n_members=4, seed=3))
    assert not np.array_equal(samples, bootstrap_indices(50, n_members=4, seed=4))
    assert len({tuple(row) for row in samples}) == 4
    # Sampling with replacement: each row repeats some samples and misses others
    # (about 1 - 1/e = 63% distinct on average).
    distinct = [len(np.unique(row)) for row in samples]
    assert all(20 < d < 45 for d in distinct)


def test_bootstrap_fit_trains_each_member_on_its_bootstrap_sample():
    x = np.stack([np.arange(20.0), np.zeros(20)], axis=1).astype("float32")  # column 0: index
    y = np.arange(20.0)

    def build():
        model = _Recorder()
        model.build((None, 2))
        return model

    ensemble = bootstrap_fit(build, x, y, n_members=3, seed=7, fit_kwargs={"epochs": 2})
    samples = bootstrap_indices(20, n_members=3, seed=7)
    assert isinstance(ensemble, BaggingEnsemble) and len(ensemble.members) == 3
    for member, indices in zip(ensemble.members, samples):
        seen_x, seen_y, kwargs = member.seen
        np.testing.assert_array_equal(seen_x[:, 0], indices)
        np.testing.assert_array_equal(seen_y, indices.astype("float64"))
        assert kwargs == {"verbose": 0, "epochs": 2}
    kernels = [m.dense.kernel.numpy() for m in ensemble.members]
    assert not np.array_equal(kernels[0], kernels[1])  # member i is seeded with seed + i
    again = bootstrap_fit(build, x, y, n_members=3, seed=7)
    for a, b in zip(ensemble.members, again.members):
        np.testing.assert_array_equal(a.dense.kernel.numpy(), b.dense.kernel.numpy())


def test_bad_arguments():
    model = _mlp(0)
    for members, match in [
        ([], r"non-empty list of keras.Model\. Received: members=\[\]"),
        (model, r"Received: members=<Sequential"),
        ([model, "model"], r"Received: members=\[<Sequential.*'model'\]"),
        ([model, model], r"distinct models.*Received: members="),
    ]:
        with pytest.raises(ValueError, match=match):
            BaggingEnsemble(members)
    x, y = np.zeros((4, 3)), np.zeros(4)
    with pytest.raises(ValueError, match=r"`n_members` must be an integer >= 1.*n_members=0"):
        bootstrap_fit(_Recorder, x, y, n_members=0)
    with pytest.raises(ValueError, match=r"`build_model` must be a callable.*Received: build_"):
        bootstrap_fit(None, x, y)
    with pytest.raises(ValueError, match=r"must not set \['validation_data'\]"):
        bootstrap_fit(_Recorder, x, y, fit_kwargs={"validation_data": (x, y)})
    with pytest.raises(ValueError, match=r"Received: seed=-3"):
        bootstrap_indices(4, 2, seed=-3)
