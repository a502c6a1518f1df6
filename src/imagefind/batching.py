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

SHARED_AFTER = 2  # keys failing alone like their batch before the rest get that failure too
K = TypeVar("K")
V = TypeVar("V")


class _Slot(Generic[K, V]):
    __slots__ = ("done", "error", "filled", "key", "value")

    def __init__(self, key: K) -> None:
        self.key = key
        self.done = False  # published: its caller may return
        self.filled = False  # a value or an error is set
        self.value: V | None = None
        self.error: BaseException | None = None

    def fill(self, value: V | None = None, error: BaseException | None = None) -> None:
        self.value, self.error, self.filled = value, error, True


class Batcher(Generic[K, V]):
    """``batcher(key)`` returns ``fn([..., key, ...])[i]`` for its own position ``i``.

    ``fn`` must return one value per key, in order. When a batch fails, its keys run one by
    one, each caller answered as soon as its own key is done, so one bad key fails only its
    own caller; once two keys in a row fail alone just as the batch did, the failure is shared
    (a model that cannot load, a database that is down) and the rest get it at once.
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
            batch: list[_Slot[K, V]] = []
            try:
                with self._cond:
                    while self._running and not slot.done:
                        self._cond.wait()
                    if slot.done:
                        break
                    self._running = True
                    batch, self._queue = self._queue[: self._max], self._queue[self._max :]
                self._run(batch)
            finally:
                if batch:
                    for s in batch:
                        if not s.filled:  # interrupted before its turn
                            s.fill(error=RuntimeError("the batched call was interrupted"))
                    self._publish(batch, running=False)
        if slot.error is not None:
            raise slot.error
        return slot.value  # type: ignore[return-value]

    def _publish(self, slots: list[_Slot[K, V]], *, running: bool = True) -> None:
        with self._cond:
            for s in slots:
                s.done = True
            self._running = running
            self._cond.notify_all()

    def _run(self, batch: list[_Slot[K, V]]) -> None:
        self.batches += 1
        try:
            values = self._fn([s.key for s in batch])
            if len(values) != len(batch):
                raise RuntimeError(f"batched call gave {len(values)} values for {len(batch)} keys")
        except Exception as exc:
            if len(batch) == 1:
                batch[0].fill(error=exc)
            else:
                self._one_by_one(batch, exc)
            return
        except BaseException as exc:  # an interrupt: every caller gets it, no retries
            for s in batch:
                s.fill(error=exc)
            raise
        for s, v in zip(batch, values, strict=True):
            s.fill(v)

    def _one_by_one(self, batch: list[_Slot[K, V]], failure: Exception) -> None:
        same = 0  # keys that failed alone exactly as the whole batch did
        for i, s in enumerate(batch):
            self._run([s])
            self._publish([s])
            error = s.error
            same = same + 1 if _alike(error, failure) else 0
            if same == SHARED_AFTER:  # not one bad key: a shared failure
                for rest in batch[i + 1 :]:
                    rest.fill(error=failure)
                return


def _alike(error: BaseException | None, failure: Exception) -> bool:
    return error is not None and type(error) is type(failure) and str(error) == str(failure)
