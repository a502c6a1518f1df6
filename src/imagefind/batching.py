"""Concurrent callers served by one batched call: a web server's simultaneous queries share
one text-encoder pass and one index scan instead of queueing for the cores one by one.

There is no timer and no background thread: a caller that finds nothing running runs its own
key at once (no added latency when idle); callers that arrive while a batch runs wait, and
the first of them to wake runs all the keys that piled up meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class _Slot(Generic[K, V]):
    __slots__ = ("done", "error", "key", "value")

    def __init__(self, key: K) -> None:
        self.key = key
        self.done = False
        self.value: V | None = None
        self.error: BaseException | None = None


class Batcher(Generic[K, V]):
    """``batcher(key)`` returns ``fn([..., key, ...])[i]`` for its own position ``i``.

    ``fn`` must return one value per key, in order. When a batch fails, its keys are run one
    by one, so one bad key fails only its own caller.
    """

    def __init__(self, fn: Callable[[Sequence[K]], Sequence[V]], max_batch: int = 32) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self._fn = fn
        self._max = max_batch
        self._cond = threading.Condition()
        self._queue: list[_Slot[K, V]] = []
        self._running = False
        self.batches = 0  # calls of fn (for tests and benchmarks)

    def __call__(self, key: K) -> V:
        slot: _Slot[K, V] = _Slot(key)
        with self._cond:
            self._queue.append(slot)
        while True:
            with self._cond:
                while self._running and not slot.done:
                    self._cond.wait()
                if slot.done:
                    break
                self._running = True
                batch, self._queue = self._queue[: self._max], self._queue[self._max :]
            try:
                self._run(batch)
            finally:
                with self._cond:
                    for s in batch:
                        s.done = True
                    self._running = False
                    self._cond.notify_all()
        if slot.error is not None:
            raise slot.error
        return slot.value  # type: ignore[return-value]

    def _run(self, batch: list[_Slot[K, V]]) -> None:
        self.batches += 1
        try:
            values = self._fn([s.key for s in batch])
            if len(values) != len(batch):
                raise RuntimeError(f"batched call gave {len(values)} values for {len(batch)} keys")
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
                return
            for s in batch:  # find the culprit: each key alone
                self._run([s])
            return
        except BaseException as exc:  # an interrupt: every caller gets it, no retries
            for s in batch:
                s.error = exc
            return
        for s, v in zip(batch, values, strict=True):
            s.value = v
