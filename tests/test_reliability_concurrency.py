"""Concurrency: a running server answers searches from 8 clients (and takes uploads) while
`imagefind index` adds 500 images to the same library in another process. No request may
fail, no "database is locked" may reach a user, and the new images must become searchable
without a restart."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.test_reliability_crash import (
    catalog_rows,
    cli_env,
    imagefind_exe,
    integrity,
    jpeg,
    server,
)

CLIENTS = 8
NEW_IMAGES = 500
QUERIES = ["a red car", "beach + sunset - people", "2:cat + dog", "mountain lake", "x"]


@pytest.mark.slow
def test_searches_during_a_concurrent_index(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "new"
    folder.mkdir()
    for i in range(NEW_IMAGES):
        (folder / f"n{i:04d}.jpg").write_bytes(jpeg(50_000 + i, (64, 48)))
    library = tmp_path / "lib"

    with server(library, tiny_model_dir) as (base, _proc):
        stop = threading.Event()
        failures: list[str] = []
        statuses: Counter[int] = Counter()
        latencies: list[float] = []
        uploaded: list[int] = []
        lock = threading.Lock()

        def record(r: httpx.Response, started: float) -> None:
            with lock:
                statuses[r.status_code] += 1
                latencies.append(time.monotonic() - started)
                if r.status_code >= 400 or "locked" in r.text:
                    failures.append(f"{r.request.method} {r.request.url}: {r.status_code} {r.text}")

        def searcher(n: int) -> None:
            with httpx.Client(base_url=base, timeout=60) as http:
                i = 0
                while not stop.is_set():
                    i += 1
                    started = time.monotonic()
                    try:
                        if i % 7 == 0:
                            r = http.get("/api/images", params={"limit": 50})
                            record(r, started)
                            items = r.json()["items"]
                            if items:
                                started = time.monotonic()
                                r = http.get(f"/api/images/{items[-1]['id']}/similar")
                        elif i % 11 == 0:
                            r = http.get("/api/stats")
                        else:
                            q = QUERIES[(n + i) % len(QUERIES)]
                            r = http.get("/api/search", params={"q": q, "k": 1000})
                    except httpx.HTTPError as exc:
                        failures.append(f"client {n}: {type(exc).__name__}: {exc}")
                        return
                    record(r, started)

        def uploader() -> None:
            with httpx.Client(base_url=base, timeout=60) as http:
                for seed in range(90_000, 90_030):
                    if stop.is_set():
                        return
                    started = time.monotonic()
                    files = [("files", (f"u{seed}.jpg", jpeg(seed, (64, 48)), "image/jpeg"))]
                    try:
                        r = http.post("/api/images", files=files)
                    except httpx.HTTPError as exc:
                        failures.append(f"uploader: {type(exc).__name__}: {exc}")
                        return
                    record(r, started)
                    if r.status_code == 201:
                        uploaded.extend(a["id"] for a in r.json()["added"])

        threads = [threading.Thread(target=searcher, args=(n,)) for n in range(CLIENTS)]
        threads.append(threading.Thread(target=uploader))
        for t in threads:
            t.start()
        time.sleep(0.5)
        index_started = time.monotonic()
        run = subprocess.run(
            [imagefind_exe(), "index", str(folder), "--library", str(library),
             "--batch-size", "16", "--json"],
            env=cli_env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        index_seconds = time.monotonic() - index_started
        assert run.returncode == 0, run.stderr
        assert "locked" not in run.stderr
        summary = json.loads(run.stdout)
        assert summary["added"] == NEW_IMAGES and summary["skipped"] == []

        # The running server sees the new images without a restart.
        threads[-1].join(60)  # the uploader is done after its 30 files
        expected = NEW_IMAGES + len(uploaded)
        deadline = time.monotonic() + 10
        while True:
            hits = httpx.get(f"{base}/api/search", params={"q": "a photo", "k": 1000}).json()
            if len(hits["hits"]) >= expected or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        time.sleep(1.0)  # a little more traffic on the finished library
        stop.set()
        for t in threads:
            t.join(60)
        assert len(hits["hits"]) == expected == len(catalog_rows(library))
        paths = {h["image"]["source"] for h in hits["hits"]}
        assert {str(p) for p in folder.iterdir()} <= paths
        assert httpx.get(f"{base}/api/stats").json()["count"] == expected

    log = next(tmp_path.glob("serve-*.log")).read_text()
    assert "locked" not in log and "Traceback" not in log, log[-3000:]
    assert integrity(library) == "ok"
    total = sum(statuses.values())
    assert not failures, failures[:5]
    assert set(statuses) <= {200, 201}
    assert total > 100
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(
        f"\nconcurrency: {total} requests from {CLIENTS} search clients and 1 uploader "
        f"while `index` added {NEW_IMAGES} images in {index_seconds:.1f} s; 0 failed; "
        f"p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"
    )


def test_writes_and_searches_in_one_process_never_deadlock(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """What the server does: uploads and searches on threads over one library. A lock-order
    inversion between the catalog and its vector index once hung every thread here."""
    from imagefind.library import Library

    with Library.open(tmp_path / "lib", model=str(tiny_model_dir)) as lib:
        lib.add(jpeg(1, (64, 48)), name="first.jpg")
        errors: list[BaseException] = []
        deadline = time.monotonic() + 2.0

        def writer(offset: int) -> None:
            seed = 70_000 + offset * 1000
            try:
                while time.monotonic() < deadline:
                    seed += 1
                    lib.add(jpeg(seed, (32, 24)), name=f"{seed}.jpg")
            except BaseException as exc:
                errors.append(exc)

        def reader() -> None:
            try:
                while time.monotonic() < deadline:
                    lib.search("a red car", k=50)
                    lib.refresh()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(2)]
        threads += [threading.Thread(target=reader, daemon=True) for _ in range(4)]
        for t in threads:
            t.start()
        give_up = time.monotonic() + 30
        for t in threads:
            t.join(max(0.1, give_up - time.monotonic()))
        assert not [t for t in threads if t.is_alive()], "threads deadlocked"
        assert not errors, errors
        assert len(lib.search("anything", k=1000)) == lib.count()
