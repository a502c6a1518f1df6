"""Filters in SQL on both stores, with the ANN indexes in place (IVF on the embedded store,
HNSW on PostgreSQL): every filter kind, exact filtered top-k against brute force over the
passing rows (0.1 % and 50 % of the library, on the selective and on the broad path), a
filtered page, and the facets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import imagefind.stores.embedded.filtered as embedded_filtered
import imagefind.stores.postgres.filtered as pg_filtered
import imagefind.stores.postgres.mirror as pg_mirror
import imagefind.stores.vectorindex as vi
from imagefind.filters import Filters
from imagefind.records import NewImage
from imagefind.stores import open_store
from imagefind.stores.base import Store
from tests import filterkit

N = 2000
Library = tuple[Store, list[NewImage], np.ndarray, np.ndarray]


@pytest.fixture
def library(
    store: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Library]:
    """2000 rows on the store under test, its approximate index in use."""
    monkeypatch.setattr(vi, "SMALL_LIMIT", 10)
    monkeypatch.setattr(vi, "EXACT_LIMIT", 100)
    opened = open_store(store, tmp_path)
    rows, ids, vectors = filterkit.fill(opened, N)
    if store is None:
        assert opened.vector_index.kind == "ivf"  # type: ignore[attr-defined]
    else:
        from imagefind.stores.postgres import store as postgres

        with opened._guard() as conn:  # type: ignore[attr-defined]
            conn.execute("ANALYZE")
        monkeypatch.setattr(postgres, "EXACT_BELOW", 1)
    yield opened, rows, ids, vectors
    opened.close()


def _passing(rows: list[NewImage], test: Callable[[NewImage], bool]) -> set[int]:
    return {i for i, r in enumerate(rows) if test(r)}


FILTERS: list[tuple[str, Filters, Callable[[NewImage], bool]]] = [
    ("rare camera (0.1 %)", Filters.parse(camera="leica"), lambda r: "Leica" in (r.camera or "")),
    ("landscape (50 %)", Filters.parse(orientation="landscape"), lambda r: r.width > r.height),
    (
        "2019 (9 %)",
        Filters.parse(after="2019", before="2019"),
        lambda r: (r.taken_local or "").startswith("2019"),
    ),
    (
        "a folder, recursive",
        Filters.parse(folders=["/lib/f03"]),
        lambda r: (r.path or "").startswith("/lib/f03/"),
    ),
    (
        "place without accents, and PNG",
        Filters.parse(place="sao paulo", format="png"),
        lambda r: r.city == "São Paulo" and r.format == "PNG",
    ),
    ("a country code", Filters.parse(place="de"), lambda r: r.country_code == "DE"),
    ("a region", Filters.parse(place="BAVARIA"), lambda r: r.region == "Bavaria"),
    (
        "June 2016 to March 2017, canon",
        Filters.parse(after="2016-06", before="2017-03-31", camera="CANON"),
        lambda r: (
            "2016-06" <= (r.taken_local or "0")[:7] <= "2017-03" and "Canon" in (r.camera or "")
        ),
    ),
]


@pytest.mark.parametrize("path", ["selective", "broad", "past the mirror"])
@pytest.mark.parametrize(("name", "filters", "test"), FILTERS, ids=[f[0] for f in FILTERS])
def test_filtered_top_k_equals_brute_force_over_passing_rows(
    library: Library,
    store: str | None,
    path: str,
    name: str,
    filters: Filters,
    test: Callable[[NewImage], bool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if path == "past the mirror" and store is None:
        pytest.skip("PostgreSQL's path for libraries too large to mirror")
    opened, rows, ids, vectors = library
    # The selective path: exact among the passing ids; the broad one: every vector searched
    # exactly (the index, or PostgreSQL's mirror), over-fetched; past the mirror, HNSW.
    limit = 100_000 if path == "selective" else 1
    monkeypatch.setattr(embedded_filtered, "SELECTIVE", limit)
    monkeypatch.setattr(pg_filtered, "EXACT_FILTERED", limit)
    monkeypatch.setattr(pg_filtered, "EXACT_SCAN", limit)
    if path == "past the mirror":
        monkeypatch.setattr(pg_mirror, "LIMIT", 0)
    passing = sorted(_passing(rows, test))
    assert passing, name
    assert opened.passing_count(filters) == len(passing)
    assert sorted(opened.passing_ids(filters).tolist()) == sorted(ids[passing].tolist())
    # Near queries come from the library's own clusters (seed 0: the same centres), far ones
    # from elsewhere, as text queries lie. Exact paths are exact for both; PostgreSQL's HNSW
    # path is as exact as the HNSW index is, which far queries in 32-d defeat unfiltered too.
    near, far = filterkit.clustered(5, seed=0), filterkit.clustered(5, seed=7)
    queries = near if path == "past the mirror" else np.concatenate([near, far])
    k = 10
    scores, found = opened.search(queries, k, filters)
    truth_scores = queries @ vectors[passing].T
    allowed = set(ids[passing].tolist())
    for q in range(len(queries)):
        order = np.argsort(-truth_scores[q], kind="stable")[:k]
        got = [i for i in found[q].tolist() if i >= 0]
        assert len(got) == min(k, len(passing))  # never a short list
        assert set(got) <= allowed and len(set(got)) == len(got), name
        # Brute force's scores, rank by rank: the same hits, up to the order of exact ties
        # (float16 vectors summed in another order may swap two scores 1e-5 apart).
        position = {int(i): j for j, i in enumerate(ids[passing])}
        rescored = np.array([truth_scores[q][position[i]] for i in got])
        np.testing.assert_allclose(rescored, truth_scores[q][order], atol=1e-4, err_msg=name)
        np.testing.assert_allclose(scores[q, : len(got)], rescored, atol=2e-3, err_msg=name)


def test_a_filter_nothing_passes_finds_nothing(library: Library) -> None:
    store = library[0]
    for filters in (Filters.parse(place="Atlantis"), Filters.parse(after="2030")):
        assert store.passing_count(filters) == 0
        _, found = store.search(filterkit.clustered(2), 10, filters)
        assert (found < 0).all() or found.shape[1] == 0


def test_browse_pages_filtered_rows_by_date(library: Library) -> None:
    store, rows, ids, _ = library
    folders = ["/lib/f08/s1", "/lib/f09/s1"]  # f09: undated
    filters = Filters.parse(folders=folders)
    expected = sorted(
        (r.taken_local or "", int(ids[i])) for i, r in enumerate(rows) if r.folder in folders
    )
    dated = [e for e in expected if e[0]]
    page = store.browse(0, 5, filters, "date")
    assert [r.id for r in page] == [i for _, i in dated[:5]]
    newest = store.browse(0, 3, filters, "-date")
    assert [r.taken_local for r in newest] == [t for t, _ in sorted(dated, reverse=True)[:3]]
    everything = store.browse(0, 1000, filters, "-date")
    assert len(everything) == len(expected) and everything[-1].taken_local is None  # undated last
    assert [r.id for r in store.browse(0, 2, filters)] == sorted(
        (i for _, i in expected), reverse=True
    )[:2]  # newest added first


def test_facets_count_every_value(library: Library) -> None:
    store, rows, _, _ = library
    facets = store.facets()
    assert facets.total == N and facets.undated == sum(r.taken_local is None for r in rows)
    years = {y.year: y.count for y in facets.years}
    assert years["2019"] == sum((r.taken_local or "").startswith("2019") for r in rows)
    assert sum(m.count for y in facets.years for m in y.months) == N - facets.undated
    cameras = {c.value: c.count for c in facets.cameras}
    assert cameras["Leica M Rare"] == filterkit.RARE
    places = {(p.city, p.country_code): p.count for p in facets.places}
    assert places[("Munich", "DE")] == sum(r.city == "Munich" for r in rows)
    assert {f.value for f in facets.formats} == {"JPEG", "PNG"}
    assert len(facets.folders) == 60
    assert {o.value: o.count for o in facets.orientations} == {
        "landscape": N // 2,
        "portrait": N // 2,
    }


def test_postgres_answers_a_broad_filter_past_the_mirror_from_the_hnsw_index(
    library: Library, store: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if store is None:
        pytest.skip("PostgreSQL's plan")
    opened = library[0]
    monkeypatch.setattr(pg_filtered, "EXACT_FILTERED", 10)
    monkeypatch.setattr(pg_filtered, "EXACT_SCAN", 10)
    monkeypatch.setattr(pg_mirror, "LIMIT", 0)  # a library too large to mirror
    with opened._guard() as conn:  # type: ignore[attr-defined]
        conn.execute("SELECT pg_stat_force_next_flush()")
        before = conn.execute(
            "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'vectors_hnsw'"
        ).fetchone()[0]
    opened.search(filterkit.clustered(3, seed=9), 10, Filters.parse(orientation="portrait"))
    with opened._guard() as conn:  # type: ignore[attr-defined]
        conn.execute("SELECT pg_stat_force_next_flush()")
        after = conn.execute(
            "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'vectors_hnsw'"
        ).fetchone()[0]
    assert after - before >= 3


def test_passing_count_is_remembered_until_the_library_changes(library: Library) -> None:
    """Counted once per filter (a filter bar held while queries are typed), afresh after any
    write: a removed image is no longer counted."""
    store, rows, ids, _ = library
    filters = Filters.parse(orientation="landscape")
    passing = sorted(_passing(rows, lambda r: r.width > r.height))
    assert store.passing_count(filters) == len(passing)
    assert store.passing_count(filters, 10) == 11  # counts no further than limit + 1
    assert store.passing_count(filters) == len(passing)
    store.remove([int(ids[passing[0]])])
    assert store.passing_count(filters) == len(passing) - 1
