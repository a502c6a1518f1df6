"""Scaling out: search on PostgreSQL + pgvector (HNSW) against the embedded store, and
indexing on Ray against the in-process pipeline, on this machine.

    .venv/bin/python -m benchmarks.scaling [--quick]

Search: clustered synthetic vectors (``benchmarks.data.Mixture``, 512-d, like CLIP's), 200
new query points, top-10; recall@10 against exact numpy search; p50/p95 latency of one query
as the library runs it (Python call to scores). ``--quick`` measures 100K vectors only; the
full run adds 1M (the HNSW build alone takes a long while on 2 cores). Indexing: the same
JPEG folder indexed with the ViT-B/32-size benchmark model, in process and on a local Ray
(started before the clock: a cluster is up before a job), same cores. Results go to
``benchmarks/results/scaling.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.data import CORPORA, Mixture, corpus_subset
from benchmarks.modelcache import b32_model_dirs

RESULTS = Path(__file__).resolve().parent / "results" / "scaling.json"
QUERIES = 200
K = 10
EF_SEARCH = (40, 100, 200)


def _truth(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k ids (row numbers), chunked so 1M vectors fit in memory."""
    best_s = np.full((len(queries), 0), -np.inf, np.float32)
    best_i = np.zeros((len(queries), 0), np.int64)
    for start in range(0, len(base), 100_000):
        s = queries @ base[start : start + 100_000].T
        top = np.argpartition(-s, k, axis=1)[:, :k]
        best_s = np.hstack([best_s, np.take_along_axis(s, top, 1)])
        best_i = np.hstack([best_i, top + start])
        keep = np.argsort(-best_s, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
    return best_i


def _measure(search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray, truth: set) -> dict:
    """p50/p95 latency in ms and recall@K of one-query searches."""
    for q in queries[:10]:
        search(q)  # warm caches and the connection
    times, hits = [], 0
    for n, q in enumerate(queries):
        started = time.perf_counter()
        ids = search(q)
        times.append((time.perf_counter() - started) * 1000)
        hits += len(set(ids[:K].tolist()) & truth[n])
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p95_ms": round(float(np.percentile(times, 95)), 2),
        "recall_at_10": round(hits / (K * len(queries)), 4),
    }


def search_bench(n: int, log: Callable[[str], object]) -> dict:
    from imagefind.records import ImageRecord, ModelIdentity
    from imagefind.stores.postgres import PostgresStore
    from imagefind.stores.postgres import store as postgres
    from imagefind.stores.vectorindex import build_for
    from tests.pg import PgServer

    mix = Mixture()
    log(f"search at {n:,} vectors: sampling and exact ground truth ...")
    base = mix.sample(n, seed=11)
    queries = mix.sample(QUERIES, seed=12)
    truth = [set(row.tolist()) for row in _truth(base, queries, K)]
    ids = np.arange(1, n + 1, dtype=np.int64)
    out: dict = {"vectors": n, "dim": mix.dim, "queries": QUERIES}

    started = time.perf_counter()
    index = build_for(ids, base)
    out["embedded"] = {"kind": index.kind, "build_s": round(time.perf_counter() - started, 1)}
    out["embedded"] |= _measure(lambda q: index.search(q[None], K)[1][0] - 1, queries, truth)
    log(f"  embedded ({index.kind}): {out['embedded']}")
    index = None  # free it before PostgreSQL starts

    server = PgServer()
    try:
        store = PostgresStore.open(server.new_database())
        store.bind_model(ModelIdentity("bench", mix.dim, "bench"))
        started = time.perf_counter()
        with store.bulk_load():
            for s in range(0, n, 5000):
                rows = [
                    ImageRecord(
                        int(i),
                        f"/bench/{i}.jpg",
                        None,
                        f"{i:064x}",
                        1,
                        0.0,
                        1,
                        1,
                        "JPEG",
                        None,
                        0.0,
                    )
                    for i in ids[s : s + 5000]
                ]
                store.restore(rows, base[s : s + 5000])
            loaded = time.perf_counter()
            log(f"  postgres: {n:,} rows loaded in {loaded - started:.0f} s; building HNSW ...")
        built = time.perf_counter()
        pg: dict = {
            "load_s": round(loaded - started, 1),
            "hnsw_build_s": round(built - loaded, 1),
            "hnsw": {"m": 16, "ef_construction": 64},
            "size_mb": round(store.size_on_disk() / 1e6, 1),
        }
        for ef in EF_SEARCH:
            postgres.EF_SEARCH = ef
            result = _measure(lambda q: store.search(q[None], K)[1][0] - 1, queries, truth)
            pg[f"ef_search_{ef}"] = result
            log(f"  postgres HNSW ef_search={ef}: {result}")
        store.close()
        out["postgres"] = pg
    finally:
        server.stop()
    return out


def indexing_bench(count: int, log: Callable[[str], object]) -> dict:
    import ray

    from imagefind import Library
    from imagefind.distributed import RayLibrary

    folder = corpus_subset(CORPORA[1], count, log=log)
    fp32, _ = b32_model_dirs(log=log)
    work = Path(tempfile.mkdtemp(prefix="imagefind-scaling-"))
    os.environ.pop("IMAGEFIND_STORE", None)
    try:
        results = {}
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        runs = (
            ("in_process", Library),
            ("ray_local_cold", RayLibrary),  # first job: worker processes start, import
            ("ray_local_warm", RayLibrary),  # a later job on the same cluster
            ("in_process_again", Library),
        )
        for name, opener in runs:
            with opener.open(work / name, model=str(fp32)) as lib:
                lib.model.encode_pixels(np.zeros((1, 3, 224, 224), np.float32))  # load once
                started = time.perf_counter()
                summary = lib.index([folder], batch_size=16)
                seconds = time.perf_counter() - started
            results[name] = {
                "images": summary.encoded,
                "seconds": round(seconds, 2),
                "images_per_s": round(summary.encoded / seconds, 2),
            }
            log(f"  {name}: {results[name]}")
        ray.shutdown()
        local = max(results[r]["images_per_s"] for r in ("in_process", "in_process_again"))
        for run in ("cold", "warm"):
            rate = results[f"ray_local_{run}"]["images_per_s"]
            results[f"ray_over_in_process_{run}"] = round(rate / local, 3)
        results["model"] = "random-weight ViT-B/32 (fp32 ONNX), batch 16"
        results["corpus"] = f"{count} x {CORPORA[1].label}"
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100K vectors only, fewer files")
    args = parser.parse_args()
    results: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "quick": args.quick,
        "search": [
            search_bench(n, print) for n in ((100_000,) if args.quick else (100_000, 1_000_000))
        ],
    }
    print("indexing: in process versus Ray on this machine ...")
    results["indexing"] = indexing_bench(96 if args.quick else 200, print)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
