"""Helpers for the CNN builder tests: one training step on a tiny model."""

import keras
import numpy as np
import pytest


def _train_one_step(model, x, y, learning_rate=0.01):
    """Fits `model` on one batch; checks the loss is finite and that every trainable weight
    moved. Returns the loss.

    The step runs eagerly: tracing a training graph costs seconds per model on CPU. Graph-mode
    training of the blocks is checked by `run_layer_test` in tests/layers.
    """
    from_logits = model.layers[-1].name != "predictions"
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
        run_eagerly=True,
    )
    before = [w.numpy().copy() for w in model.trainable_weights]
    loss = float(model.train_on_batch(x, y))
    assert np.isfinite(loss), f"non-finite loss {loss}"
    after = [w.numpy() for w in model.trainable_weights]
    unchanged = [
        w.path for w, b, a in zip(model.trainable_weights, before, after) if np.array_equal(b, a)
    ]
    assert not unchanged, f"a training step left these weights unchanged: {unchanged}"
    return loss


@pytest.fixture
def train_one_step():
    """`train_one_step(model, x, y)`: one SGD step; asserts a finite loss and moved weights."""
    return _train_one_step
