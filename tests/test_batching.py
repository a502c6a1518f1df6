"""batching: concurrent callers share calls, each gets its own answer or its own error."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import pytest

from imagefind.batching import Batcher


def _all_at_once(batcher: Batcher, calls: list[Callable[[], None]], gate: threading.Event) -> None:
    """Start every call, wait until all but the first (held in ``fn`` by ``gate``) queue in
    the batcher, then open the gate and let them finish."""
    threads = [threading.Thread(target=call) for call in calls]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(batcher._queue) < len(calls) - 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    gate.set()
    for t in threads:
        t.join(5)


def _outcomes(batcher: Batcher, keys: Sequence[int], gate: threading.Event) -> dict[int, object]:
    """Each key's value, or the exception its caller got, with all callers at once."""
    outcomes: dict[int, object] = {}

    def call(k: int) -> None:
        try:
            outcomes[k] = batcher(k)
        except BaseException as exc:
            outcomes[k] = exc

    _all_at_once(batcher, [lambda k=k: call(k) for k in keys], gate)
    return outcomes


def test_one_caller_runs_at_once() -> None:
    calls: list[list[int]] = []
    batcher = Batcher(lambda keys: calls.append(list(keys)) or [k * 2 for k in keys])
    assert batcher(3) == 6 and batcher(4) == 8
    assert calls == [[3], [4]]


def test_callers_arriving_during_a_call_share_the_next_one() -> None:
    started, release = threading.Event(), threading.Event()
    calls: list[list[int]] = []

    def fn(keys: Sequence[int]) -> list[int]:
        calls.append(list(keys))
        if keys == [0]:
            started.set()
            release.wait(5)
        return [k * 10 for k in keys]

    batcher = Batcher(fn)
    results: dict[int, int] = {}
    first = threading.Thread(target=lambda: results.__setitem__(0, batcher(0)))
    first.start()
    assert started.wait(5)
    others = [
        threading.Thread(target=lambda k=k: results.__setitem__(k, batcher(k))) for k in range(1, 8)
    ]
    for t in others:
        t.start()
    deadline = time.monotonic() + 10
    while len(batcher._queue) < 7 and time.monotonic() < deadline:  # all wait behind call 1
        time.sleep(0.01)
    release.set()
    for t in [first, *others]:
        t.join(5)
    assert results == {k: k * 10 for k in range(8)}
    assert calls[0] == [0] and sorted(calls[1]) == list(range(1, 8)) and len(calls) == 2


def test_max_batch_splits_and_everyone_is_answered() -> None:
    gate = threading.Event()
    sizes: list[int] = []

    def fn(keys: Sequence[int]) -> list[int]:
        gate.wait(5)
        sizes.append(len(keys))
        return list(keys)

    batcher = Batcher(fn, max_batch=3)
    results: dict[int, int] = {}
    _all_at_once(batcher, [lambda k=k: results.__setitem__(k, batcher(k)) for k in range(10)], gate)
    assert results == {k: k for k in range(10)}
    assert max(sizes) <= 3 and sum(sizes) == 10


def test_a_bad_key_fails_only_its_caller() -> None:
    gate = threading.Event()

    def fn(keys: Sequence[int]) -> list[int]:
        gate.wait(5)
        if 13 in keys:
            raise ValueError("13 is unlucky")
        return [k + 1 for k in keys]

    results = _outcomes(Batcher(fn), (1, 13, 2, 3), gate)
    assert isinstance(results.pop(13), ValueError)
    assert results == {1: 2, 2: 3, 3: 4}


def test_wrong_number_of_values_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="gave 0 values for 1 keys"):
        Batcher(lambda keys: [])(1)


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Batcher(lambda keys: keys, max_batch=0)


def test_a_shared_failure_is_not_retried_key_by_key() -> None:
    """A database that is down fails every key: after two keys fail alone just as the batch
    did, the rest get the failure without a call each."""
    gate = threading.Event()
    calls: list[int] = []

    def fn(keys: Sequence[int]) -> list[int]:
        gate.wait(5)
        calls.append(len(keys))
        raise ConnectionError("database is down")

    errors = _outcomes(Batcher(fn), range(10), gate)
    assert all(isinstance(errors[k], ConnectionError) for k in range(10))
    assert calls == [1, 9, 1, 1]  # the first caller alone, the batch, two keys alone


def test_an_interrupt_reaches_every_caller_of_its_batch() -> None:
    gate = threading.Event()

    def fn(keys: Sequence[int]) -> list[int]:
        gate.wait(5)
        if len(keys) > 1:
            raise KeyboardInterrupt
        return list(keys)

    outcomes = _outcomes(Batcher(fn), range(4), gate)
    assert outcomes[0] == 0  # ran alone first
    assert all(isinstance(outcomes[k], KeyboardInterrupt) for k in (1, 2, 3))
