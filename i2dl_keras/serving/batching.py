"""`Batcher`: concurrent requests for one signature grouped into one model call."""

from __future__ import annotations

import collections
import concurrent.futures
import queue
import threading
import time

import numpy as np

from i2dl_keras.serving.signature import Signature


class _Job:
    __slots__ = ("arrays", "rows", "key", "future")

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays
        self.rows = next(iter(arrays.values())).shape[0] if arrays else 0
        # Only requests whose inputs agree beyond the batch axis can share one model call.
        self.key = tuple((k, v.dtype.str, v.shape[1:]) for k, v in sorted(arrays.items()))
        self.future: concurrent.futures.Future = concurrent.futures.Future()


_STOP = object()


class Batcher:
    """Groups concurrent requests for one signature into one call of its function.

    A batch thread takes the first waiting request, then keeps taking requests that arrive
    within `timeout` seconds (and all that are already waiting) until `max_batch_size` rows are
    gathered, concatenates them on axis 0, calls the model once and splits the outputs back.
    With `num_threads` batch threads (TF Serving's `num_batch_threads`), the next batch gathers,
    and runs, while the previous one is still in the model.
    The window is only waited for while requests have recently been arriving together, so a
    lone client sees no added latency. If a batched call fails (one bad image among good ones),
    each request is rerun alone so that only the bad one gets the error.

    Args:
        signature: The signature whose `call` answers the batches.
        max_batch_size: Most rows in one call.
        timeout: Seconds a batch waits for more requests.
        num_threads: Batch threads, each gathering and running its own batch. Defaults to `1`.

    Example:

    ```python
    batcher = i2dl_keras.serving.Batcher(signature, max_batch_size=32, timeout=0.0)
    outputs = batcher.submit({"x": x}).result()
    batcher.close()
    ```
    """

    def __init__(
        self, signature: Signature, max_batch_size: int, timeout: float, num_threads: int = 1
    ):
        self.signature = signature
        self.max_batch_size = max_batch_size
        self.timeout = timeout
        self.num_threads = num_threads
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        # Requests answered and model calls made, for the log line at shutdown.
        self.requests = 0
        self.calls = 0
        # A running average of how many requests were waiting together.
        self._concurrency = 1.0
        self._threads = [
            threading.Thread(
                target=self._loop, name=f"i2dl-batcher-{signature.name}-{i}", daemon=True
            )
            for i in range(num_threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, arrays: dict[str, np.ndarray]) -> concurrent.futures.Future:
        """Queues one request; returns a future of its outputs (or of its `ServingError`)."""
        job = _Job(arrays)
        with self._lock:
            if not self._closed:
                self._queue.put(job)
                return job.future
        # Unloaded between lookup and submit: answer in the caller's thread.
        self._run([job])
        return job.future

    def close(self) -> None:
        """Answers what is queued, then ends the threads."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for _ in self._threads:
                self._queue.put(_STOP)

    def _loop(self) -> None:
        pending: collections.deque[_Job] = collections.deque()
        stopping = False
        while True:
            if pending:
                first = pending.popleft()
            elif stopping:
                return
            else:
                first = self._queue.get()
                if first is _STOP:
                    return
            batch, rows = [first], first.rows
            for job in list(pending):
                if rows >= self.max_batch_size:
                    break
                if job.key == first.key and rows + job.rows <= self.max_batch_size:
                    pending.remove(job)
                    batch.append(job)
                    rows += job.rows
            # Wait for company only while requests have been arriving together: a lone
            # client's request runs at once instead of paying the window every time.
            window = self.timeout if self._concurrency >= 1.5 else 0.0
            deadline = time.monotonic() + window
            while rows < self.max_batch_size and not stopping:
                remaining = deadline - time.monotonic()
                try:
                    if remaining > 0:
                        job = self._queue.get(timeout=remaining)
                    else:
                        job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is _STOP:
                    stopping = True
                elif job.key == first.key and rows + job.rows <= self.max_batch_size:
                    batch.append(job)
                    rows += job.rows
                else:
                    pending.append(job)
            self._concurrency = 0.8 * self._concurrency + 0.2 * (len(batch) + len(pending))
            self._run(batch)

    def _run(self, batch: list[_Job]) -> None:
        # A client that went away cancelled its future: leave it out.
        batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
        if not batch:
            return
        with self._lock:
            self.requests += len(batch)
            self.calls += 1
        try:
            if len(batch) == 1:
                results = [self.signature.call(batch[0].arrays)]
            else:
                merged = {
                    k: np.concatenate([job.arrays[k] for job in batch]) for k in batch[0].arrays
                }
                outputs = self.signature.call(merged)
                total = sum(job.rows for job in batch)
                if any(v.shape[:1] != (total,) for v in outputs.values()):
                    raise RuntimeError("an output does not have one row per input row")
                results, start = [], 0
                for job in batch:
                    results.append({k: v[start : start + job.rows] for k, v in outputs.items()})
                    start += job.rows
        except Exception as exc:
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            for job in batch:
                retry = _Job(job.arrays)
                self._run([retry])
                _copy_outcome(retry.future, job.future)
            return
        for job, result in zip(batch, results):
            job.future.set_result(result)


def _copy_outcome(source: concurrent.futures.Future, target: concurrent.futures.Future) -> None:
    exc = source.exception()
    if exc is not None:
        target.set_exception(exc)
    else:
        target.set_result(source.result())
