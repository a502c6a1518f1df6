"""PostgreSQL's mirror of the vectors (the exact path of a broad filtered search): it follows
every write another process commits, whatever order writers commit in, drops what was
deleted, reads a re-embed afresh, and is not held for a library past its limit."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

import imagefind.stores.postgres.filtered as pg_filtered
import imagefind.stores.postgres.mirror as pg_mirror
from imagefind.filters import Filters
from imagefind.records import ModelIdentity, NewImage
from imagefind.stores.postgres import PostgresStore
from tests import filterkit

N = 300
BROAD = Filters.parse(orientation="landscape")  # even rows: half the library


@pytest.fixture
def stores(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[PostgresStore, ...]]:
    """A reader and two writers on one database of N rows; every filter takes the mirror."""
    monkeypatch.setattr(pg_filtered, "EXACT_FILTERED", 1)
    opened = tuple(PostgresStore.open(pg_url) for _ in range(3))
    filterkit.fill(opened[1], N)
    yield opened
    for store in opened:
        store.close()


def _landscape(path: str, sha: int) -> NewImage:
    """A row that passes BROAD (row 0 of the kit is landscape)."""
    base = filterkit.row(0, N)
    return NewImage(**{**base.__dict__, "path": path, "sha256": f"{sha:064x}"})


def _unit(seed: int) -> np.ndarray:
    return filterkit.clustered(1, seed=seed)


def _top(store: PostgresStore, query: np.ndarray) -> tuple[int, float]:
    scores, ids = store.search(query, 10, BROAD)
    return int(ids[0, 0]), float(scores[0, 0])


def _brute_force(store: PostgresStore, query: np.ndarray) -> list[int]:
    ids, vectors = store.vectors(store.passing_ids(BROAD).tolist())
    return ids[np.argsort(-(vectors @ query[0]), kind="stable")[:10]].tolist()


def test_the_mirror_follows_adds_updates_and_removes_of_another_process(
    stores: tuple[PostgresStore, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    reader, writer, _ = stores
    query = _unit(41)
    assert reader.search(query, 10, BROAD)[1][0].tolist() == _brute_force(reader, query)
    mirror = reader.mirrored()
    assert mirror is not None and len(mirror) == N

    [added] = writer.add([_landscape("/new/a.jpg", 10**6)], query)  # the query itself
    assert _top(reader, query) == (added, pytest.approx(1.0, abs=1e-3))

    writer.add([_landscape("/new/a.jpg", 10**6 + 1)], _unit(42))  # the same path, changed
    assert _top(reader, query)[0] != added
    assert reader.search(query, 10, BROAD)[1][0].tolist() == _brute_force(reader, query)

    writer.remove([added])  # its vector stays in the mirror, a candidate that never passes
    assert added not in reader.search(_unit(42), 10, BROAD)[1][0].tolist()
    assert reader.search(query, 10, BROAD)[1][0].tolist() == _brute_force(reader, query)

    monkeypatch.setattr(pg_mirror, "RECONCILE_S", 0.0)  # due: deleted vectors are dropped
    writer.remove(writer.ids()[: N // 5])
    mirror = reader.mirrored()
    assert mirror is not None and len(mirror) == N - N // 5


def test_a_write_committed_after_a_later_one_is_not_missed(
    stores: tuple[PostgresStore, ...],
) -> None:
    """Transaction ids are handed out in one order and committed in another: the slow
    writer's row, invisible when the reader last looked, is read once it commits."""
    reader, fast, slow = stores
    query = _unit(43)
    reader.search(query, 10, BROAD)  # the mirror is filled
    params = slow._vector_params(query, 1, slow.model())
    with slow._transaction() as conn:
        [early] = [slow._upsert(conn, _landscape("/slow.jpg", 10**7), time.time())]
        slow._write_vectors(conn, "vectors", [early], params)  # its transaction id: the lower
        fast.add([_landscape("/fast.jpg", 10**7 + 1)], _unit(44))  # commits first
        assert early not in reader.search(query, 10, BROAD)[1][0].tolist()  # not committed
        slow._bump(conn)
    assert _top(reader, query) == (early, pytest.approx(1.0, abs=1e-3))


def test_a_reembed_to_another_dimension_is_read_afresh(
    stores: tuple[PostgresStore, ...],
) -> None:
    reader, writer, _ = stores
    reader.search(_unit(45), 10, BROAD)
    ids = np.array(writer.ids(), dtype=np.int64)
    rng = np.random.default_rng(3)
    wider = rng.standard_normal((len(ids), 48)).astype(np.float32)
    wider /= np.linalg.norm(wider, axis=1, keepdims=True)
    identity = ModelIdentity("wider", 48, "w")
    writer.stage_vectors(identity, ids.tolist(), wider)
    writer.switch_model(identity, [])
    query = wider[:1] * 0.9 + 0.1 * wider[1:2]
    query /= np.linalg.norm(query)
    assert reader.search(query, 10, BROAD)[1][0].tolist() == _brute_force(reader, query)
    mirror = reader.mirrored()
    assert mirror is not None and mirror.dim == 48 and len(mirror) == N


def test_a_library_past_the_limit_holds_no_mirror_and_still_answers(
    stores: tuple[PostgresStore, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = stores[0]
    reader.search(_unit(46), 10, BROAD)
    monkeypatch.setattr(pg_mirror, "LIMIT", N - 1)
    stores[1].add([_landscape("/grown.jpg", 10**8)], _unit(47))  # a write: looked at again
    assert reader.mirrored() is None
    query = _unit(48)
    assert reader.search(query, 10, BROAD)[1][0].tolist() == _brute_force(reader, query)
