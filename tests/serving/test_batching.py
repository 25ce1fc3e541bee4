"""`Batcher`: waiting requests grouped into one model call, failures kept to their request."""

import threading

import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras.serving import Batcher, ServingError, Signature

TIMEOUT = 30.0


class _CountingSignature(Signature):
    """Doubles its input, records each call's batch size, and can hold its first call."""

    def __init__(self):
        spec = tf.TensorSpec([None, 2], tf.float32, name="x")
        super().__init__("double", None, {"x": spec}, {"y": spec})
        self.calls = []
        self.entered, self.gate = threading.Event(), threading.Event()

    def call(self, arrays):
        self.entered.set()
        self.gate.wait(TIMEOUT)
        self.calls.append(len(arrays["x"]))
        if np.isnan(arrays["x"]).any():
            raise ServingError("NaN input")
        return {"y": arrays["x"] * 2}


def test_batcher_groups_waiting_requests_and_splits_the_answers():
    signature = _CountingSignature()
    batcher = Batcher(signature, max_batch_size=8, timeout=0.01)
    assert batcher.num_threads == 1 and len(batcher._threads) == 1
    try:
        # While the first call runs, the others queue up; the next call takes them all.
        busy = batcher.submit({"x": np.zeros((1, 2), np.float32)})
        assert signature.entered.wait(TIMEOUT)
        inputs = [np.full((1 + i % 2, 2), i, np.float32) for i in range(5)]  # 7 rows in all
        futures = [batcher.submit({"x": x}) for x in inputs]
        signature.gate.set()
        busy.result(TIMEOUT)
        for x, future in zip(inputs, futures):
            np.testing.assert_array_equal(future.result(TIMEOUT)["y"], x * 2)
        assert signature.calls == [1, 7], "five waiting requests, one model call"
        assert (batcher.requests, batcher.calls) == (6, 2)

        # A failing request in a batch is retried alone; the others still get answers.
        signature.calls.clear()
        signature.entered.clear()
        signature.gate.clear()
        busy = batcher.submit({"x": np.zeros((1, 2), np.float32)})
        assert signature.entered.wait(TIMEOUT)
        inputs = [np.ones((1, 2), np.float32), np.full((1, 2), np.nan, np.float32)]
        futures = [batcher.submit({"x": x}) for x in inputs]
        signature.gate.set()
        busy.result(TIMEOUT)
        np.testing.assert_array_equal(futures[0].result(TIMEOUT)["y"], [[2, 2]])
        with pytest.raises(ServingError, match="NaN"):
            futures[1].result(TIMEOUT)
        assert signature.calls == [1, 2, 1, 1]
    finally:
        signature.gate.set()
        batcher.close()


def test_two_batch_threads_run_a_second_batch_while_the_first_is_in_the_model():
    signature = _CountingSignature()
    batcher = Batcher(signature, max_batch_size=8, timeout=0.0, num_threads=2)
    try:
        # The first thread is held inside the model; the second answers what comes next.
        busy = batcher.submit({"x": np.zeros((1, 2), np.float32)})
        assert signature.entered.wait(TIMEOUT)
        signature.entered.clear()
        later = batcher.submit({"x": np.ones((1, 2), np.float32)})
        assert signature.entered.wait(TIMEOUT), "the second thread did not take the request"
        assert not busy.done() and not later.done()
        signature.gate.set()
        np.testing.assert_array_equal(later.result(TIMEOUT)["y"], [[2, 2]])
        np.testing.assert_array_equal(busy.result(TIMEOUT)["y"], [[0, 0]])
        assert sorted(signature.calls) == [1, 1]
    finally:
        signature.gate.set()
        batcher.close()
    # Closing ends both threads; later requests are answered in the caller's thread.
    for thread in batcher._threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive()
    np.testing.assert_array_equal(
        batcher.submit({"x": np.ones((1, 2), np.float32)}).result(TIMEOUT)["y"], [[2, 2]]
    )
