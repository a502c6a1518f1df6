"""PostgreSQL's mirror of the vectors (the exact path of a broad filtered search): it follows
every write another process commits, whatever order writers commit in, drops what was
deleted, reads a re-embed afresh (even one committing mid-read), reads only what changed
while a long transaction runs elsewhere, and is not held for a library past its limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest

import imagefind.stores.postgres.filtered as pg_filtered
import imagefind.stores.postgres.mirror as pg_mirror
from imagefind.errors import LibraryError, ModelMismatchError
from imagefind.filters import Filters
from imagefind.records import ModelIdentity, NewImage
from imagefind.stores.postgres import PostgresStore
from imagefind.stores.postgres.schema import Half
from imagefind.stores.vectorindex import VectorIndex
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


def test_read_in_chunks_the_mirror_holds_exactly_the_stored_vectors(
    stores: tuple[PostgresStore, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_mirror, "CHUNK", 7)  # rows split across COPY messages and chunks
    reader = stores[0]
    mirror = reader.mirrored()
    ids, vectors = reader.vectors()
    assert mirror is not None and sorted(mirror.ids().tolist()) == ids.tolist()
    for image_id, vector in zip(ids[::37], vectors[::37], strict=True):
        np.testing.assert_array_equal(mirror.reconstruct(int(image_id)), vector)


def test_a_reembed_committing_during_a_read_is_read_whole(
    stores: tuple[PostgresStore, ...], pg_url: str
) -> None:
    """A re-embed to another dimension rewrites the table: a reader that took its snapshot
    before the commit would find it empty. The reader waits for the commit, then reads."""
    reader, writer, _ = stores
    reader.search(_unit(50), 10, BROAD)
    writer.add([_landscape("/before.jpg", 10**10)], _unit(51))  # news: the reader will read
    got: list[object] = []
    with psycopg.connect(pg_url, autocommit=True) as switch:
        with switch.transaction():
            switch.execute("DELETE FROM vectors")
            switch.execute("ALTER TABLE vectors ALTER COLUMN embedding TYPE halfvec(48)")
            switch.execute(
                "INSERT INTO vectors (image_id, embedding) SELECT id, "
                "array_fill(0.125, ARRAY[48])::halfvec FROM images"
            )
            switch.execute("UPDATE meta SET value = '48' WHERE key = 'model_dim'")
            switch.execute(
                "UPDATE meta SET value = (value::bigint + 1)::text WHERE key = 'generation'"
            )
            reading = threading.Thread(target=lambda: got.append(reader.mirrored()))
            reading.start()
            waited = time.monotonic() + 30
            waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass"
            while not switch.execute(waiting, ("vectors",)).fetchone()[0]:  # type: ignore[index]
                if time.monotonic() > waited:
                    pytest.fail("the reader never waited for the re-embed")
                time.sleep(0.02)
        reading.join(10)
    [mirror] = got
    assert isinstance(mirror, VectorIndex) and mirror.dim == 48 and len(mirror) == N + 1


def test_a_long_transaction_elsewhere_does_not_make_each_catch_up_read_more(
    stores: tuple[PostgresStore, ...], pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader, writer, _ = stores
    reader.mirrored()
    read: list[int] = []
    chunks = pg_mirror._vector_chunks

    def counted(*args: object) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for ids, vectors in chunks(*args):  # type: ignore[arg-type]
            read.append(len(ids))
            yield ids, vectors

    monkeypatch.setattr(pg_mirror, "_vector_chunks", counted)
    with psycopg.connect(pg_url, autocommit=True) as idle, idle.transaction():
        idle.execute("SELECT pg_current_xact_id()")  # holds the cluster's xmin back
        for i in range(3):
            read.clear()
            writer.add([_landscape(f"/later/{i}.jpg", 10**9 + i)], _unit(60 + i))
            assert len(reader.mirrored() or []) == N + 1 + i
            assert sum(read) == 1  # the new row only, not every row since the idle began


def test_a_library_too_large_to_mirror_is_not_read_again_until_a_write(
    stores: tuple[PostgresStore, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = stores[0]
    monkeypatch.setattr(pg_mirror, "LIMIT", N - 1)
    monkeypatch.setattr(pg_mirror, "row_estimate", lambda conn: 0)  # statistics behind
    reads: list[str] = []
    copy_rows = pg_mirror._copy_rows

    def counted(*args: Any) -> Iterator[np.ndarray]:
        reads.append("read")
        return copy_rows(*args)

    monkeypatch.setattr(pg_mirror, "_copy_rows", counted)
    assert reader.mirrored() is None and reader.mirrored() is None
    assert reads == ["read"]


def test_a_query_of_another_dimension_is_refused_with_words(
    stores: tuple[PostgresStore, ...],
) -> None:
    with pytest.raises(ModelMismatchError, match=r"32-d, the query 48-d"):
        stores[0].search(np.ones((1, 48), np.float32) / np.sqrt(48), 10, BROAD)


def test_a_second_process_cannot_bind_another_model_over_the_first(
    stores: tuple[PostgresStore, ...],
) -> None:
    """Two first indexes racing: the loser's model would throw away the winner's vectors."""
    late = stores[2]
    with pytest.raises(ModelMismatchError, match="another process bound this library"):
        late.bind_model(ModelIdentity("other", 48, "o"))
    assert len(late.vectors()[0]) == N
    late.bind_model(ModelIdentity("synthetic", filterkit.DIM, "f"))  # the same: fine


def test_a_server_older_than_13_is_refused_by_name() -> None:
    from types import SimpleNamespace

    from imagefind.stores.postgres import schema

    old = SimpleNamespace(info=SimpleNamespace(server_version=120017))
    with pytest.raises(LibraryError, match=r"PostgreSQL 12\.17 is too old.*13 or later"):
        schema.migrate(old, "postgresql://db/photos")  # type: ignore[arg-type]


@pytest.mark.parametrize("how", ["a restore bringing its own written_by", "replication role"])
def test_every_write_is_stamped_whatever_the_writer_says(
    stores: tuple[PostgresStore, ...], how: str
) -> None:
    """The stamp comes from a trigger that always runs: a row copied in with an old (or a
    future) ``written_by``, or written with ordinary triggers off, is still read."""
    reader, writer, _ = stores
    query = _unit(70)
    reader.mirrored()
    target = int(writer.ids()[0])
    with writer._transaction() as conn:
        if how == "replication role":
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute(
                "UPDATE vectors SET embedding = %s WHERE image_id = %s", (Half(query[0]), target)
            )
        else:
            conn.execute("DELETE FROM vectors WHERE image_id = %s", (target,))
            conn.execute(
                "INSERT INTO vectors (image_id, embedding, written_by) VALUES (%s, %s, '3')",
                (target, Half(query[0])),
            )
        writer._bump(conn)
    assert _top(reader, query) == (target, pytest.approx(1.0, abs=1e-3))
