"""Filtered search: text-query latency unfiltered against a 1 % and a 50 % date filter and a
1 % and a 50 % folder filter, on the embedded store and on PostgreSQL, and whether each
filtered top-10 equals brute force over the passing images.

    .venv/bin/python -m benchmarks.filters [--count 100000] [--pg-count 100000]

The library: ``--count`` rows with synthetic circumstance of realistic spreads (dates over
ten years, more in recent ones, in bursts of events; ~300 event folders under year folders;
a few cameras and places, unevenly used) and clustered 512-d unit vectors
(``benchmarks.data.Mixture``, CLIP-like) written straight into each store, so the ANN
indexes are the real ones (IVF at 100K on the embedded store, HNSW on PostgreSQL). Queries
are text-like (cosine ~0.3 to a cluster centre, as CLIP puts captions). What is timed is
the library's search after the text encoder (cached in practice): ``Searcher.search_vector``
with k=10, hits built from catalog rows. Results go to ``benchmarks/results/filters.json``
with the CPU's flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from benchmarks.data import Mixture
from benchmarks.models import cpu_flags
from imagefind.records import ImageRecord, NewImage
from imagefind.stores.columns import NEW_COLUMNS
from imagefind.stores.postgres import PostgresStore

RESULTS = Path(__file__).resolve().parent / "results" / "filters.json"
K = 10
QUERIES = 100
CAMERAS = ("Apple iPhone 13", "Google Pixel 7", "Canon EOS R6", "Sony ILCE-7M3", "Fujifilm X-T4")
PLACES = (
    ("Lisbon", "Lisbon", "Portugal", "PT"),
    ("Porto", "Porto", "Portugal", "PT"),
    ("Berlin", "Berlin", "Germany", "DE"),
    ("Munich", "Bavaria", "Germany", "DE"),
    ("São Paulo", "São Paulo", "Brazil", "BR"),
    ("Kyoto", "Kyoto", "Japan", "JP"),
    ("New York City", "New York", "United States", "US"),
)


def synthetic_rows(n: int, seed: int = 5) -> list:
    """ImageRecords with circumstance: ~300 events (a folder each, a few days long) over ten
    years, twice as many in the last years as in the first."""
    from imagefind.records import ImageRecord

    rng = np.random.default_rng(seed)
    events = 300
    start = datetime(2015, 1, 1)
    # Later years take more photos: event days drawn with a rising density.
    days = np.sort((np.sqrt(rng.uniform(0.25, 1.0, events)) - 0.5) / 0.5 * 3650).astype(int)
    sizes = rng.lognormal(0, 1.0, events)
    event_of = rng.choice(events, size=n, p=sizes / sizes.sum())
    camera_p = np.array([0.4, 0.2, 0.2, 0.15, 0.05])
    rows = []
    for i in range(n):
        e = int(event_of[i])
        when = start + timedelta(days=int(days[e]) + int(rng.integers(0, 4)))
        when += timedelta(seconds=int(rng.integers(7 * 3600, 22 * 3600)))
        folder = f"/photos/{when.year}/event-{e:03d}"
        city, region, country, code = PLACES[e % len(PLACES)]
        undated = rng.random() < 0.03
        landscape = rng.random() < 0.7
        taken = None if undated else when.strftime("%Y-%m-%dT%H:%M:%S")
        rows.append(
            ImageRecord(
                id=i + 1,
                path=f"{folder}/IMG_{i:06d}.jpg",
                upload_key=None,
                sha256=f"{i:064x}",
                size=3_000_000,
                mtime=0.0,
                width=4032 if landscape else 3024,
                height=3024 if landscape else 4032,
                format="JPEG",
                taken_at=taken,
                added_at=0.0,
                taken_at_source=None if undated else "exif",
                taken_local=taken,
                camera=str(CAMERAS[rng.choice(len(CAMERAS), p=camera_p)]),
                orientation="landscape" if landscape else "portrait",
                city=city,
                region=region,
                country=country,
                country_code=code,
                folder=folder,
                meta_version=1,
            )
        )
    return rows


def filter_cases(rows: list) -> dict:
    """A 1 % and a 50 % date range (from the dates' quantiles) and a 1 % and ~50 % set of
    folders (whole events, and whole years), with the share each passes."""
    from imagefind.filters import Filters

    dates = sorted(r.taken_local for r in rows if r.taken_local)
    n = len(rows)

    def at(q: float) -> str:
        return str(dates[int(q * (len(dates) - 1))])

    by_folder: dict[str, int] = {}
    for r in rows:
        by_folder[r.folder] = by_folder.get(r.folder, 0) + 1
    few: list[str] = []  # the fewest whole events that make up to 1 %
    for folder, count in sorted(by_folder.items(), key=lambda kv: -kv[1]):
        if sum(by_folder[f] for f in few) + count <= 0.01 * n:
            few.append(folder)
    years = sorted({r.folder.split("/")[2] for r in rows}, reverse=True)
    half: list[str] = []
    for year in years:  # newest years first until about half the library
        if sum(c for f, c in by_folder.items() if f.split("/")[2] in half) >= 0.5 * n:
            break
        half.append(year)
    cases = {
        "date 1%": Filters(after=at(0.60), before=at(0.61)),
        "date 50%": Filters(after=at(0.25), before=at(0.75)),
        "folder 1%": Filters(folders=tuple(few)),
        "folder 50%": Filters(folders=tuple(f"/photos/{y}" for y in half)),
    }
    return cases


def measure(searcher, queries: np.ndarray, filters) -> dict:
    times = []
    for query in queries:
        started = time.perf_counter()
        searcher.search_vector(query, K, filters=filters)
        times.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p95_ms": round(float(np.percentile(times, 95)), 2),
    }


def exact_share(store, queries: np.ndarray, filters, vectors: np.ndarray, ids: np.ndarray) -> float:
    """Share of queries whose filtered top-10 equals brute force over the passing rows
    (float16 vectors, as stored): the same scores, rank by rank (ties may swap ids)."""
    passing = np.isin(ids, store.passing_ids(filters)) if filters else np.ones(len(ids), bool)
    sub = vectors[passing]
    position = {int(i): j for j, i in enumerate(ids)}
    same = 0
    for query in queries:
        _, found = store.search(query[None], K, filters)
        truth = np.sort(sub @ query)[::-1][:K]
        got = np.array([vectors[position[int(i)]] @ query for i in found[0] if i >= 0])
        same += len(got) == len(truth) and bool(np.allclose(got, truth, atol=1e-4))
    return same / len(queries)


def bench_store(
    name: str, store, rows: list, vectors: np.ndarray, queries: np.ndarray, log
) -> dict:
    from imagefind.search import Searcher

    def no_model():
        raise RuntimeError("no model in this benchmark")

    searcher = Searcher(store, no_model)
    ids = np.array([r.id for r in rows], dtype=np.int64)
    stored = vectors.astype(np.float16).astype(np.float32)
    for query in queries[:5]:  # warm: the index loaded, caches filled
        searcher.search_vector(query, K)
    out: dict = {"unfiltered": measure(searcher, queries, None)}
    out["unfiltered"]["exact"] = exact_share(store, queries[:20], None, stored, ids)
    log(f"  {name} unfiltered: {out['unfiltered']}")
    for label, filters in filter_cases(rows).items():
        started = time.perf_counter()  # the first query under a filter counts its rows
        searcher.search_vector(queries[0], K, filters=filters)
        first = round((time.perf_counter() - started) * 1000, 2)
        share = store.passing_count(filters) / len(rows)
        result = {"share": round(share, 4), "first_ms": first}
        result |= measure(searcher, queries, filters)
        result["exact"] = exact_share(store, queries[:20], filters, stored, ids)
        out[label] = result
        log(f"  {name} {label}: {result}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="embedded store's images")
    parser.add_argument("--pg-count", type=int, default=100_000, help="PostgreSQL's (0: skip)")
    args = parser.parse_args()
    from imagefind.records import ModelIdentity
    from imagefind.stores.embedded.store import EmbeddedStore

    mix = Mixture()
    made = max(args.count, args.pg_count)  # each store takes the first rows it needs
    all_rows = synthetic_rows(made)
    all_vectors = mix.sample(made, seed=11)
    rows, vectors = all_rows[: args.count], all_vectors[: args.count]
    queries = mix.text_like(QUERIES, seed=12)
    identity = ModelIdentity("bench", mix.dim, "bench")
    results: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "lscpu": cpu_flags(),
        "k": K,
        "queries": QUERIES,
        "what": "Searcher.search_vector (after the text encoder), text-like queries",
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    work = Path(tempfile.mkdtemp(prefix="imagefind-filters-"))
    try:
        print(f"embedded store: {args.count:,} images ...")
        store = EmbeddedStore.open(work / "catalog.sqlite3")
        store.bind_model(identity)
        for s in range(0, args.count, 10_000):
            store.restore(rows[s : s + 10_000], vectors[s : s + 10_000])
        with store._guard() as conn:
            conn.execute("ANALYZE")
        started = time.perf_counter()
        kind = store.vector_index.kind
        results["embedded"] = {
            "images": args.count,
            "index": kind,
            "index_build_s": round(time.perf_counter() - started, 1),
            **bench_store("embedded", store, rows, vectors, queries, print),
        }
        store.close()
        if args.pg_count:
            results["postgres"] = bench_postgres(
                args.pg_count, all_rows, all_vectors, queries, identity
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


def mirror_costs(store: PostgresStore, fresh: np.ndarray) -> dict:
    """What a broad filter's mirror of the vectors costs a PostgreSQL process: the first
    read of every vector, and catching up after another process wrote (five rounds of
    ``len(fresh) / 5`` new rows)."""
    started = time.perf_counter()
    mirror = store.mirrored()
    load = time.perf_counter() - started
    writer = PostgresStore.open(store.spec)
    base = _new_image(store.get(1))
    added: list[int] = []
    catch_up = []
    for batch in np.array_split(np.arange(len(fresh)), 5):
        rows = [dataclasses.replace(base, path=f"/new/{i}.jpg", sha256=f"{i:064x}") for i in batch]
        added += writer.add(rows, fresh[batch])
        started = time.perf_counter()
        mirror = store.mirrored()
        catch_up.append(round((time.perf_counter() - started) * 1000, 1))
    writer.remove(added)
    writer.close()
    out = {
        "mirror_load_s": round(load, 2),
        "mirror_catch_up_ms": catch_up,
        "mirror_mb": round(len(mirror) * mirror.dim * 2 / 2**20, 1),
    }
    print(f"  postgres mirror: {out}")
    return out


def _new_image(record: ImageRecord) -> NewImage:
    return NewImage(**{name: getattr(record, name) for name in NEW_COLUMNS})


def bench_postgres(n: int, rows: list, vectors: np.ndarray, queries: np.ndarray, identity) -> dict:
    from tests.pg import PgServer

    server = PgServer()
    try:
        store = PostgresStore.open(server.new_database())
        store.bind_model(identity)
        print(f"postgres: {n:,} images ...")
        started = time.perf_counter()
        with store.bulk_load():
            for s in range(0, n, 5000):
                store.restore(rows[s : min(n, s + 5000)], vectors[s : min(n, s + 5000)])
            loaded = time.perf_counter()
        with store._guard() as conn:
            conn.execute("ANALYZE")
        built = time.perf_counter()
        mirror = mirror_costs(store, Mixture().sample(500, seed=13))
        with store._guard() as conn:
            conn.execute("VACUUM ANALYZE")  # after the writes above, not during the timings
        out = {
            "images": n,
            "load_s": round(loaded - started, 1),
            "hnsw_build_s": round(built - loaded, 1),
            **mirror,
            **bench_store("postgres", store, rows[:n], vectors[:n], queries, print),
        }
        store.close()
        return out
    finally:
        server.stop()


if __name__ == "__main__":
    main()
