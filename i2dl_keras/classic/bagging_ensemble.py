"""Bagging: an ensemble that averages its members, each trained on a bootstrap sample."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from i2dl_keras.classic import _checks

__all__ = ["BaggingEnsemble", "bootstrap_fit", "bootstrap_indices"]


@keras.saving.register_keras_serializable(package="i2dl_keras")
class BaggingEnsemble(keras.Model):
    """Averages the outputs of several Keras models: the prediction of a bagged ensemble.

    The course's "Bagging and Ensemble Methods": several models, each trained on its own
    bootstrap sample of the training set (see `bootstrap_fit`), are combined by averaging
    their predictions, which lowers the variance of the prediction. The output is
    `(m_1(x) + m_2(x) + ... + m_M(x)) / M`, summed in member order; members with nested
    outputs (lists, dicts) are averaged leaf by leaf.

    The ensemble is one model: `get_config` serializes every member with
    `keras.saving.serialize_keras_object` and `from_config` rebuilds them, so a single `.keras`
    file holds all members and their weights.

    Args:
        members: A non-empty sequence of distinct `keras.Model`s with the same input and output
            structure.
        **kwargs: Forwarded to `keras.Model` (e.g. `name`).

    Call arguments:
        inputs: Whatever the members take.

    Returns:
        From `call`: the mean of the members' outputs, with their structure and shapes.

    Raises:
        ValueError: if `members` is empty, holds something other than a `keras.Model`, or holds
            the same model twice.

    Example:

    >>> ensemble = i2dl_keras.classic.BaggingEnsemble([model_a, model_b, model_c])
    >>> y_hat = ensemble(x)   # (model_a(x) + model_b(x) + model_c(x)) / 3
    """

    def __init__(self, members: Sequence[keras.Model], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(members, keras.Model) or not isinstance(members, (list, tuple)):
            raise ValueError(
                f"`members` must be a non-empty list of keras.Model. Received: members={members!r}"
            )
        if not members or not all(isinstance(m, keras.Model) for m in members):
            raise ValueError(
                f"`members` must be a non-empty list of keras.Model. Received: members={members!r}"
            )
        if len({id(m) for m in members}) != len(members):
            raise ValueError(
                "`members` must be distinct models; the same model twice would share weights. "
                f"Received: members={members!r}"
            )
        self.members = list(members)

    def build(self, input_shape: Any) -> None:
        for member in self.members:
            if not member.built:
                member.build(input_shape)

    def call(self, inputs, training=None):
        total = None
        for member in self.members:
            output = member(inputs, training=training)
            total = output if total is None else keras.tree.map_structure(_add, total, output)
        count = float(len(self.members))
        return keras.tree.map_structure(lambda t: t / keras.ops.cast(count, t.dtype), total)

    def get_config(self) -> dict:
        config = super().get_config()
        members = []
        for member in self.members:
            member_config = keras.saving.serialize_keras_object(member)
            # The members' optimizers are not part of the ensemble; only the ensemble compiles.
            member_config.pop("compile_config", None)
            members.append(member_config)
        config["members"] = members
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> BaggingEnsemble:
        config = dict(config)
        config["members"] = [
            keras.saving.deserialize_keras_object(m, custom_objects=custom_objects)
            for m in config["members"]
        ]
        return cls(**config)


def _add(a, b):
    return keras.ops.add(a, b)


def bootstrap_indices(n: int, n_members: int, seed: int = 0) -> np.ndarray:
    """Draws one bootstrap sample of `range(n)` per member: `n` indices with replacement.

    Args:
        n: Number of training samples.
        n_members: Number of bootstrap samples.
        seed: Seed of the NumPy generator. Defaults to `0`.

    Returns:
        An `int64` array of shape `(n_members, n)`; row `i` indexes member `i`'s sample.

    Raises:
        ValueError: if `n` or `n_members` is not a positive integer or `seed` is negative.

    Example:

    >>> i2dl_keras.classic.bootstrap_indices(5, n_members=2, seed=0).shape
    (2, 5)
    """
    n = _checks.int_at_least("n", n, 1)
    n_members = _checks.int_at_least("n_members", n_members, 1)
    seed = _checks.seed("seed", seed)
    return np.random.default_rng(seed).integers(0, n, size=(n_members, n), dtype="int64")


def bootstrap_fit(
    build_model: Callable[[], keras.Model],
    x: Any,
    y: Any = None,
    n_members: int = 5,
    seed: int = 0,
    fit_kwargs: dict | None = None,
) -> BaggingEnsemble:
    """Bagging: trains `n_members` fresh models on bootstrap samples and averages them.

    Member `i` is built by `build_model()` after `keras.utils.set_random_seed(seed + i)` (so
    the run is reproducible; this resets the global seeds) and fitted on the samples
    `bootstrap_indices(n, n_members, seed)[i]`.

    Args:
        build_model: A function of no arguments returning a compiled `keras.Model`.
        x: Inputs: an array, or a list/dict of arrays with a common first dimension.
        y: Targets in the same form, or `None`. Defaults to `None`.
        n_members: Number of members. Defaults to `5`.
        seed: Seed of the bootstrap samples and of each member. Defaults to `0`.
        fit_kwargs: Extra arguments of `model.fit`, e.g. `{"epochs": 5}`; `verbose` defaults
            to `0`. Defaults to `None`.

    Returns:
        A `BaggingEnsemble` of the trained members (uncompiled).

    Raises:
        ValueError: if `build_model` is not callable, `n_members` is not a positive integer,
            `fit_kwargs` sets the data, or `x` and `y` differ in length.

    Example:

    >>> ensemble = i2dl_keras.classic.bootstrap_fit(build, x, y, n_members=5,
    ...                                             fit_kwargs={"epochs": 10})
    """
    build_model = _checks.callable_arg("build_model", build_model)
    fit_kwargs = {"verbose": 0, **_checks.fit_kwargs(fit_kwargs)}
    x, y = _checks.as_arrays(x), _checks.as_arrays(y)
    n = _checks.num_samples(x, y)
    samples = bootstrap_indices(n, n_members, seed)
    members = []
    for i, indices in enumerate(samples):
        keras.utils.set_random_seed(seed + i)
        model = build_model()
        model.fit(_checks.take(x, indices), _checks.take(y, indices), **fit_kwargs)
        members.append(model)
    return BaggingEnsemble(members)
