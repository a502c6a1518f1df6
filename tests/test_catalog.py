"""catalog: rows, float16 vectors, generations, concurrency (opening and migrations are in
test_catalog_migrations.py)."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from imagefind.errors import LibraryError, NotFoundError
from imagefind.records import ImageRecord, ModelIdentity
from imagefind.stores import sql as sql_module
from imagefind.stores.embedded.catalog import Catalog
from tests.catalogkit import DIM, item, unit
from tests.catalogkit import cat_fixture as cat_fixture  # fixture: cat
from tests.catalogkit import db_path_fixture as db_path_fixture  # fixture: db_path

# --- adding and reading -------------------------------------------------------------------


def test_float16_round_trip(db_path: Path) -> None:
    with Catalog.open(db_path) as c:
        c.bind_model(ModelIdentity("m", 512, "f"))
        vecs = unit(50, 512, seed=1)
        ids = c.add([item(f"/p/{i}.jpg") for i in range(50)], vecs)
        got_ids, got = c.vectors()
    assert got.dtype == np.float32
    assert got_ids.dtype == np.int64
    assert list(got_ids) == ids
    assert np.abs(got - vecs).max() < 1e-3


def test_add_and_lookups(cat: Catalog) -> None:
    items = [item("/photos/a.jpg", "s1"), item("/photos/sub/b.jpg", "s2"), item("/c.jpg", "s1")]
    ids = cat.add(items, unit(3))
    assert ids == [1, 2, 3]
    up = cat.add([item(upload_key="ab/abcdef.jpg", sha="s3")], unit(1, seed=2))
    assert up == [4]
    assert cat.count() == 4

    rec = cat.get(1)
    assert isinstance(rec, ImageRecord)
    assert (rec.path, rec.sha256, rec.size, rec.mtime) == ("/photos/a.jpg", "s1", 123, 1.5)
    assert (rec.width, rec.height, rec.format) == (640, 480, "JPEG")
    assert rec.taken_at == "2020-01-02T03:04:05"
    assert rec.source == "/photos/a.jpg"
    assert cat.get(4).source == "upload:ab/abcdef.jpg"
    assert cat.get(4).path is None

    assert cat.by_path("/photos/sub/b.jpg") == cat.get(2)
    assert cat.by_path("/nope.jpg") is None
    assert [r.id for r in cat.by_sha256("s1")] == [1, 3]
    assert cat.by_sha256("zzz") == []
    assert set(cat.get_many([1, 4, 99])) == {1, 4}
    assert cat.get_many([]) == {}


def test_get_missing(cat: Catalog) -> None:
    with pytest.raises(NotFoundError, match=r"^no image with id 42$"):
        cat.get(42)


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        ("/lib", {"/lib", "/lib/a.jpg", "/lib/sub/b.jpg", "/lib/50%_off.jpg"}),
        ("/lib/", {"/lib", "/lib/a.jpg", "/lib/sub/b.jpg", "/lib/50%_off.jpg"}),
        ("/lib/sub", {"/lib/sub/b.jpg"}),
        ("/li", set()),
        ("/LIB", set()),
        ("/lib/a.jpg", {"/lib/a.jpg"}),
    ],
)
def test_paths_under(cat: Catalog, root: str, expected: set[str]) -> None:
    if os.sep != "/":
        pytest.skip("paths in this test are POSIX")
    paths = ["/lib", "/lib/a.jpg", "/lib/sub/b.jpg", "/lib/50%_off.jpg", "/lib0.jpg", "/libx/c.jpg"]
    paths += ["/lib-old/d.jpg", "/other/e.jpg"]
    cat.add([item(p, f"s{i}") for i, p in enumerate(paths)], unit(len(paths)))
    cat.add([item(upload_key="lib/up.jpg")], unit(1))
    found = cat.paths_under(root)
    assert set(found) == expected
    assert all(rec.path == p for p, rec in found.items())


def test_page_newest_first(cat: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([100.0, 200.0, 200.0])
    monkeypatch.setattr(sql_module.time, "time", lambda: next(clock))
    cat.add([item("/a.jpg"), item("/b.jpg")], unit(2))  # t=100, ids 1, 2
    cat.add([item("/c.jpg")], unit(1))  # t=200, id 3
    cat.add([item("/d.jpg")], unit(1))  # t=200, id 4
    assert [r.id for r in cat.page(0, 10)] == [4, 3, 2, 1]
    assert [r.id for r in cat.page(1, 2)] == [3, 2]
    assert cat.page(10, 5) == []


def test_same_path_updates_in_place(cat: Catalog) -> None:
    [first] = cat.add([item("/a.jpg", "old")], unit(1, seed=1))
    added_at = cat.get(first).added_at
    new_vec = unit(1, seed=2)
    [second] = cat.add([item("/a.jpg", "new")], new_vec)
    assert second == first
    assert cat.count() == 1
    rec = cat.get(first)
    assert rec.sha256 == "new"
    assert rec.added_at == added_at
    ids, vecs = cat.vectors()
    assert list(ids) == [first]
    assert np.abs(vecs - new_vec).max() < 1e-3


def test_same_path_twice_in_one_batch(cat: Catalog) -> None:
    ids = cat.add([item("/a.jpg", "one"), item("/a.jpg", "two")], unit(2))
    assert ids[0] == ids[1]
    assert cat.count() == 1
    assert cat.get(ids[0]).sha256 == "two"


def test_same_upload_key_updates_in_place(cat: Catalog) -> None:
    a = cat.add([item(upload_key="ab/x.jpg")], unit(1))
    b = cat.add([item(upload_key="ab/x.jpg")], unit(1))
    assert a == b
    assert cat.count() == 1


def test_empty_add(cat: Catalog) -> None:
    before = cat.generation()
    assert cat.add([], np.empty((0, DIM), np.float32)) == []
    assert cat.generation() == before


@pytest.mark.parametrize(
    "vectors",
    [unit(2, DIM + 1), unit(3), unit(2)[0], np.full((2, DIM), np.nan, np.float32)],
    ids=["wrong dim", "wrong count", "1-D", "nan"],
)
def test_bad_vectors_refused(cat: Catalog, vectors: np.ndarray) -> None:
    with pytest.raises(LibraryError):
        cat.add([item("/a.jpg"), item("/b.jpg")], vectors)
    assert cat.count() == 0


def test_wrong_dim_message(cat: Catalog) -> None:
    with pytest.raises(LibraryError, match=r"expected vectors of shape \(1, 8\)"):
        cat.add([item("/a.jpg")], unit(1, 16))


def test_add_needs_bound_model(db_path: Path) -> None:
    with Catalog.open(db_path) as c, pytest.raises(LibraryError, match="no model bound"):
        c.add([item("/a.jpg")], unit(1))


def test_item_needs_path_or_upload(cat: Catalog) -> None:
    with pytest.raises(ValueError, match="neither a path nor an upload key"):
        cat.add([item(None)], unit(1))


def test_batch_is_atomic(cat: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    real = Catalog._upsert
    calls = []

    def failing(self, conn, it, now):  # type: ignore[no-untyped-def]
        calls.append(it)
        if len(calls) == 3:
            raise sqlite3.OperationalError("disk I/O error")
        return real(self, conn, it, now)

    monkeypatch.setattr(Catalog, "_upsert", failing)
    before = cat.generation()
    with pytest.raises(LibraryError, match="disk I/O error"):
        cat.add([item(f"/{i}.jpg") for i in range(5)], unit(5))
    assert cat.count() == 0
    assert cat.generation() == before


# --- relink, remove, replace ---------------------------------------------------------------


def test_relink(cat: Catalog) -> None:
    [a, _] = cat.add([item("/old.jpg"), item("/b.jpg")], unit(2))
    _, before_vecs = cat.vectors()
    gen = cat.generation()
    cat.relink(a, "/new/place.jpg", 999, 7.0)
    assert cat.by_path("/old.jpg") is None
    rec = cat.by_path("/new/place.jpg")
    assert rec is not None and rec.id == a
    assert (rec.size, rec.mtime) == (999, 7.0)
    assert cat.generation() == gen + 1
    assert np.array_equal(cat.vectors()[1], before_vecs)
    with pytest.raises(LibraryError, match="already catalogued as image"):
        cat.relink(a, "/b.jpg", 1, 1.0)
    with pytest.raises(NotFoundError, match="no image with id 77"):
        cat.relink(77, "/x.jpg", 1, 1.0)


def test_remove_cascades_and_bumps(cat: Catalog) -> None:
    ids = cat.add([item(f"/{i}.jpg") for i in range(4)], unit(4))
    gen = cat.generation()
    removed = cat.remove([ids[1], ids[3], 999])
    assert [r.id for r in removed] == [ids[1], ids[3]]
    assert removed[0].path == "/1.jpg"
    assert cat.count() == 2
    assert list(cat.vectors()[0]) == [ids[0], ids[2]]
    count = cat._conn.execute("SELECT count(*) FROM vectors").fetchone()[0]
    assert count == 2
    assert cat.generation() == gen + 1
    assert cat.remove([999]) == []
    assert cat.generation() == gen + 1  # nothing removed, nothing changed


def test_ids_not_reused(cat: Catalog) -> None:
    [a] = cat.add([item("/a.jpg")], unit(1))
    cat.remove([a])
    [b] = cat.add([item("/b.jpg")], unit(1))
    assert b > a


def test_vectors_subset(cat: Catalog) -> None:
    vecs = unit(5, seed=3)
    ids = cat.add([item(f"/{i}.jpg") for i in range(5)], vecs)
    got_ids, got = cat.vectors([ids[4], ids[0], 1234])
    assert list(got_ids) == [ids[0], ids[4]]
    assert np.abs(got - vecs[[0, 4]]).max() < 1e-3
    empty_ids, empty = cat.vectors([])
    assert empty_ids.shape == (0,) and empty.shape == (0, DIM)


def test_vectors_empty_catalog(cat: Catalog) -> None:
    ids, vecs = cat.vectors()
    assert ids.shape == (0,) and vecs.shape == (0, DIM) and vecs.dtype == np.float32


def test_switch_model_swaps_every_vector_at_once(cat: Catalog) -> None:
    ids = cat.add([item(f"/{i}.jpg") for i in range(3)], unit(3, seed=1))
    old = cat.vectors()[1]
    gen = cat.generation()
    bigger = ModelIdentity("bigger", 16, "g")
    cat.stage_vectors(bigger, [ids[1], ids[0]], unit(2, 16, seed=9))
    assert cat.generation() == gen and np.array_equal(cat.vectors()[1], old)  # unseen yet
    removed = cat.switch_model(bigger, [ids[2]])
    assert [r.id for r in removed] == [ids[2]]
    assert cat.model() == bigger and cat.generation() == gen + 1
    got_ids, got = cat.vectors()
    assert list(got_ids) == ids[:2] and got.shape == (2, 16)
    assert np.abs(got[0] - unit(2, 16, seed=9)[1]).max() < 1e-3


def test_switch_model_refuses_an_image_without_a_staged_vector(cat: Catalog) -> None:
    ids = cat.add([item(f"/{i}.jpg") for i in range(3)], unit(3, seed=1))
    before, model, gen = cat.vectors()[1], cat.model(), cat.generation()
    bigger = ModelIdentity("bigger", 16, "g")
    cat.stage_vectors(bigger, ids[:2], unit(2, 16))
    with pytest.raises(LibraryError, match="1 image\\(s\\) have no vector from bigger"):
        cat.switch_model(bigger, [])
    assert cat.model() == model and cat.generation() == gen and cat.count() == 3
    assert np.array_equal(cat.vectors()[1], before)
    with pytest.raises(LibraryError, match="3 image"):  # what was staged is gone too
        cat.switch_model(bigger, [])


def test_staged_vectors_belong_to_their_connection(db_path: Path) -> None:
    """A re-embed killed half-way leaves nothing behind for the next process."""
    with Catalog.open(db_path) as cat:
        cat.bind_model(ModelIdentity("m", DIM, "f"))
        ids = cat.add([item("/a.jpg")], unit(1))
        cat.stage_vectors(ModelIdentity("n", 16, "g"), ids, unit(1, 16))
    with Catalog.open(db_path) as again:
        with pytest.raises(LibraryError, match="no vector from n"):
            again.switch_model(ModelIdentity("n", 16, "g"), [])
        assert again.vectors()[1].shape == (1, DIM)
        with pytest.raises(LibraryError, match="expected vectors of shape \\(1, 16\\)"):
            again.stage_vectors(ModelIdentity("n", 16, "g"), ids, unit(1))


# --- across connections and threads -------------------------------------------------------


def test_generation_seen_by_other_connection(cat: Catalog, db_path: Path) -> None:
    with Catalog.open(db_path) as reader:
        start = reader.generation()
        cat.add([item("/a.jpg")], unit(1))
        assert reader.generation() == start + 1
        assert reader.count() == 1
        cat.remove([1])
        assert reader.generation() == start + 2


def test_size_on_disk(cat: Catalog) -> None:
    empty = cat.size_on_disk()
    assert empty > 0
    cat.add([item(f"/{i}.jpg") for i in range(200)], unit(200))
    assert cat.size_on_disk() > empty


@pytest.mark.parametrize("shared", [True, False], ids=["one catalog", "two connections"])
def test_concurrent_writers(cat: Catalog, db_path: Path, shared: bool) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            target = cat if shared else Catalog.open(db_path)
            for batch in range(10):
                paths = [f"/t{n}/{batch}/{i}.jpg" for i in range(5)]
                target.add([item(p) for p in paths], unit(5, seed=n))
                target.generation()
                target.vectors()
            if not shared:
                target.close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert cat.count() == 4 * 10 * 5
    assert cat.generation() == 1 + 40  # bind_model + one per batch
