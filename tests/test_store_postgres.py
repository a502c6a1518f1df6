"""What only the PostgreSQL store has: several workers and replicas on one database (claims,
freshness), the HNSW path, migrations and connection errors. Everything a library does is
tested on both stores by the library and CLI suites (the ``store`` fixture)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest

from imagefind import Library, LibraryError
from imagefind.records import ModelIdentity, NewImage
from imagefind.scanner import FoundFile, walk
from imagefind.stores.postgres import PostgresStore
from imagefind.stores.postgres import store as postgres
from tests.synth import natural_image

DIM = 32


@pytest.fixture
def distinct_photos(tmp_path: Path) -> Path:
    """Forty small JPEGs, no two with the same content, in two overlapping subfolders."""
    root = tmp_path / "many"
    for i in range(40):
        folder = root / ("a" if i < 20 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        natural_image(96, 72, seed=500 + i).save(folder / f"{i:03d}.jpg", quality=85)
    return root


def _rows(n: int, start: int = 0) -> list[NewImage]:
    return [
        NewImage(f"/v/{i}.jpg", None, f"{i:064x}", 1, 0.0, 1, 1, "JPEG", None)
        for i in range(start, start + n)
    ]


def _clustered(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, DIM))
    x = centres[rng.integers(0, 8, n)] + 0.3 * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _files(root: Path) -> list[FoundFile]:
    return [f for f in walk(root) if isinstance(f, FoundFile)]


def test_two_workers_on_overlapping_folders_encode_each_file_once(
    pg_url: str, tiny_model_dir: Path, distinct_photos: Path
) -> None:
    model = str(tiny_model_dir)
    libs = [
        Library.open(distinct_photos.parent / f"l{i}", model=model, store=pg_url) for i in range(3)
    ]
    libs[0].model  # noqa: B018 - bind the model once, before the race
    jobs = [[distinct_photos], [distinct_photos / "b", distinct_photos / "a"], [distinct_photos]]
    start = threading.Barrier(len(libs))
    summaries: list = [None] * len(libs)

    def work(n: int) -> None:
        start.wait()
        summaries[n] = libs[n].index(jobs[n], batch_size=4)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(len(libs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sum(s.encoded for s in summaries) == 40  # shared out, none twice
    assert sum(s.added for s in summaries) == 40 and libs[0].count() == 40
    again = libs[1].index([distinct_photos])
    assert again.encoded == 0 and again.unchanged == 40
    with psycopg.connect(pg_url) as conn:  # every claim was let go
        assert conn.execute("SELECT count(*) FROM claims").fetchone() == (0,)
    for lib in libs:
        lib.close()


def test_claims_of_a_dead_worker_go_to_the_next_one(pg_url: str, distinct_photos: Path) -> None:
    files = _files(distinct_photos / "a")
    alive, dying = PostgresStore.open(pg_url), PostgresStore.open(pg_url)
    assert dying.claim(files[:5]) == {f.path for f in files[:5]}
    assert alive.claim(files[:8]) == {f.path for f in files[5:8]}  # held by a live worker
    dying._conn.close()  # a crash: the connection goes, its liveness lock with it
    deadline = time.monotonic() + 10  # the server notices the lost connection at once,
    while not alive.claim(files[:5]) and time.monotonic() < deadline:  # ends it a moment later
        time.sleep(0.05)
    assert alive.claim(files[:5]) == {f.path for f in files[:5]}
    alive.release_claims()
    other = PostgresStore.open(pg_url)
    assert other.claim(files) == {f.path for f in files}
    other.close()
    alive.close()


def test_a_catalogued_file_is_not_claimed_again(pg_url: str, distinct_photos: Path) -> None:
    files = _files(distinct_photos / "a")[:3]
    store = PostgresStore.open(pg_url)
    store.bind_model(ModelIdentity("m", DIM, "f"))
    done = files[0]
    item = NewImage(done.path, None, "0" * 64, done.size, done.mtime, 1, 1, "JPEG", None)
    store.add([item], _clustered(1))
    assert store.claim(files) == {f.path for f in files[1:]}
    store.close()


def test_a_replica_sees_every_write_through_the_generation(pg_url: str) -> None:
    writer, replica = PostgresStore.open(pg_url), PostgresStore.open(pg_url)
    writer.bind_model(ModelIdentity("m", DIM, "f"))
    assert replica.refresh() is True  # the writer bound a model
    assert replica.refresh() is False
    ids = writer.add(_rows(3), _clustered(3))
    assert writer.refresh() is False  # its own writes are no news to it
    assert replica.refresh() is True and replica.count() == 3
    scores, found = replica.search(_clustered(3)[:1], 3)
    assert sorted(found[0].tolist()) == sorted(ids) and scores[0, 0] > 0.99
    writer.remove(ids[:1])
    assert replica.refresh() is True and replica.count() == 2
    writer.close()
    replica.close()


def test_hnsw_search_agrees_with_exact_search(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = PostgresStore.open(pg_url)
    store.bind_model(ModelIdentity("m", DIM, "f"))
    vectors = _clustered(600, seed=1)
    ids = np.array(
        [i for s in range(0, 600, 200) for i in store.add(_rows(200, s), vectors[s : s + 200])]
    )
    queries = _clustered(20, seed=2)
    _, exact_ids = store.search(queries, 10)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    overlap = [len(set(e) & set(t)) / 10 for e, t in zip(exact_ids, ids[truth], strict=True)]
    assert np.mean(overlap) >= 0.98  # float16 storage may swap near-ties at the edge
    with store._guard() as conn:
        conn.execute("ANALYZE vectors")
    monkeypatch.setattr(postgres, "EXACT_BELOW", 1)
    approx_scores, approx_ids = store.search(queries, 10)
    assert _index_scans(store) >= len(queries)  # the HNSW index answered them
    recall = np.mean(
        [len(set(a) & set(e)) / 10 for a, e in zip(approx_ids, exact_ids, strict=True)]
    )
    assert recall >= 0.95
    assert np.all(np.diff(approx_scores, axis=1) <= 1e-6)  # best first
    _, many = store.search(queries[:1], 500)  # past ef_search: iterative scans fill it up
    assert many.shape[1] >= 400
    store.close()


def _index_scans(store: PostgresStore) -> int:
    with store._guard() as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        row = conn.execute(
            "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'vectors_hnsw'"
        ).fetchone()
    return int(row[0]) if row else 0


def test_schema_is_migrated_once_and_foreign_tables_are_refused(pg_url: str) -> None:
    stores = []
    threads = [
        threading.Thread(target=lambda: stores.append(PostgresStore.open(pg_url))) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stores) == 3  # concurrent first opens: one migrates, the others wait
    for s in stores:
        s.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(LibraryError, match="schema version 99 is newer"):
        PostgresStore.open(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP TABLE meta, claims, vectors")
    with pytest.raises(LibraryError, match="not an imagefind database"):
        PostgresStore.open(pg_url)


def test_unreachable_server_is_one_clear_error(tmp_path: Path) -> None:
    url = f"postgresql://nobody@/imagefind?host={tmp_path}&connect_timeout=2"
    with pytest.raises(LibraryError, match=r"^postgresql://localhost/imagefind: cannot connect"):
        Library.open(tmp_path / "lib", store=url)
