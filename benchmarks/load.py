"""Load and faults: many clients against one ``imagefind serve``, then SIGKILLs mid-upload.

    python -m benchmarks.load [--clients 50 --seconds 60 --images 10000 --kills 5] [--quick]

**Load.** A library of ``--images`` rows (vectors inserted straight into the catalog, as
``benchmarks.data`` builds its big libraries, plus a small WebP thumbnail per row) is copied
fresh for each run and served by a real ``imagefind serve`` on 127.0.0.1 with a token (and
the option that forces auth on loopback, when the server has one). ``--clients`` threads send
requests for ``--seconds`` seconds, each drawing from a weighted mix: text search, image
search, upload (a new generated JPEG each time), delete (of one of its own uploads),
thumbnail fetch, and a browser login (``POST /login``, then one read with the session cookie
alone). Per endpoint: count, status histogram, p50/p95/p99. Any 5xx or "database is locked"
is a failure. The server's peak memory is sampled from ``/proc``. Afterwards every upload
answered 2xx and not deleted is fetched by id and searched for with its own bytes (all of
them, not a sample), and every deleted one must be gone.

**Faults.** ``--kills`` rounds on another copy of the library: start the server, upload from
several threads, SIGKILL the server at a random moment, check ``PRAGMA integrity_check`` and
that every upload answered 2xx is in the catalog with the same SHA-256 and its original on
disk; the next round restarts on the same library, and a last start checks them over HTTP.

The model is the tests' tiny random CLIP (``benchmarks.modelcache.tiny_model_dir``): the
server's own work (HTTP, catalog, index, files) is measured, not the encoder's arithmetic.
Nothing leaves the machine: the server binds loopback only, and the run is bounded in
clients, seconds and requests. Results go to ``benchmarks/results/load.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks import git_commit
from benchmarks.data import DATA
from benchmarks.encoders import load_average, machine
from benchmarks.http_query import queries
from benchmarks.kills import run_kills
from benchmarks.loadkit import (
    LOCKED,
    SESSION_COOKIE,
    TOKEN,
    UPLOAD_SEEDS,
    Log,
    Shared,
    auth_args,
    base_library,
    fresh_copy,
    id_range,
    jpeg,
    serving,
)
from benchmarks.loadreport import _lscpu, failures, render
from benchmarks.modelcache import tiny_model_dir
from benchmarks.serverproc import MemorySampler, _family_cpu, _log_problems

RESULTS = Path(__file__).resolve().parent / "results"

# The mix each client draws from: weights, not counts.
MIX = {
    "search_text": 30,
    "search_image": 12,
    "upload": 15,
    "delete": 5,
    "thumbnail": 30,
    "login": 8,
}
ENDPOINTS = {
    "search_text": "GET /api/search",
    "search_image": "POST /api/search/image",
    "upload": "POST /api/images",
    "delete": "DELETE /api/images/{id}",
    "thumbnail": "GET /api/images/{id}/thumbnail",
    "login": "POST /login",
    "cookie_read": "GET /api/images (session cookie only)",
}
QUERY_IMAGE_SEEDS = 900_000  # the images sent as image-search queries
_EXTRA_QUERIES = ["beach + sunset - people", "2:dog + cat", "a red car - night", "#1 + snow"]


@dataclass
class Tally:
    """Everything the clients saw, under one lock."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, Counter[str]] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)
    locked: list[str] = field(default_factory=list)
    uploaded: dict[int, tuple[int, str]] = field(default_factory=dict)  # id -> (seed, sha256)
    deleted: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, op: str, seconds: float, response: httpx.Response | None) -> None:
        status = "transport error" if response is None else str(response.status_code)
        with self.lock:
            self.latencies.setdefault(op, []).append(seconds)
            self.statuses.setdefault(op, Counter())[status] += 1
            if response is None:
                return
            if response.status_code >= 500:
                self.server_errors.append(f"{op} {response.status_code} {response.text[:300]}")
            if response.status_code >= 400 and LOCKED in response.text:
                self.locked.append(f"{op} {response.status_code} {response.text[:300]}")

    def summary(self) -> dict[str, Any]:
        out = {}
        for op in [*MIX, "cookie_read"]:
            if op not in self.latencies:
                continue
            ms = np.asarray(self.latencies[op]) * 1000
            out[op] = {
                "endpoint": ENDPOINTS[op],
                "count": len(ms),
                "statuses": dict(sorted(self.statuses[op].items())),
                "p50_ms": round(float(np.percentile(ms, 50)), 1),
                "p95_ms": round(float(np.percentile(ms, 95)), 1),
                "p99_ms": round(float(np.percentile(ms, 99)), 1),
                "max_ms": round(float(ms.max()), 1),
            }
        return out


def _timed(
    tally: Tally, op: str, send: Callable[..., httpx.Response], *args: Any, **kwargs: Any
) -> httpx.Response | None:
    """One request, recorded; a broken connection is recorded as such, not raised."""
    started = time.perf_counter()
    try:
        response: httpx.Response | None = send(*args, **kwargs)
    except httpx.HTTPError:
        response = None
    tally.record(op, time.perf_counter() - started, response)
    return response


def client(
    base: str, seed: int, deadline: float, shared: Shared, tally: Tally, texts: list[str]
) -> None:
    """One client: weighted random requests until the deadline, one at a time."""
    rng = random.Random(seed)
    ops, weights = list(MIX), list(MIX.values())
    mine: list[int] = []
    probes = [jpeg(QUERY_IMAGE_SEEDS + i) for i in range(4)]
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    with (
        httpx.Client(base_url=base, headers=bearer, timeout=120) as api,
        httpx.Client(base_url=base, timeout=120, follow_redirects=False) as browser,
    ):
        while time.monotonic() < deadline:
            op = rng.choices(ops, weights)[0]
            if op == "delete" and not mine:
                op = "upload"
            if op == "search_text":
                q = rng.choice(texts)
                _timed(tally, op, api.get, "/api/search", params={"q": q, "k": 20})
            elif op == "search_image":
                files = {"file": ("query.jpg", rng.choice(probes), "image/jpeg")}
                _timed(tally, op, api.post, "/api/search/image", files=files)
            elif op == "upload":
                n = shared.next_seed()
                data = jpeg(n)
                upload = [("files", (f"load-{n}.jpg", data, "image/jpeg"))]
                r = _timed(tally, op, api.post, "/api/images", files=upload)
                if r is not None and r.is_success:
                    sha = hashlib.sha256(data).hexdigest()
                    ids = [a["id"] for a in r.json()["added"] + r.json()["duplicates"]]
                    with tally.lock:
                        tally.uploaded.update({i: (n, sha) for i in ids})
                    with shared.lock:
                        shared.live_uploads.extend(ids)
                    mine.extend(ids)
            elif op == "delete":
                victim = mine.pop(rng.randrange(len(mine)))
                with shared.lock:
                    shared.live_uploads.remove(victim)
                r = _timed(tally, op, api.delete, f"/api/images/{victim}")
                if r is not None and r.is_success:
                    with tally.lock:
                        tally.deleted.add(victim)
            elif op == "thumbnail":
                image_id = shared.thumbnail_id(rng)
                _timed(tally, op, api.get, f"/api/images/{image_id}/thumbnail")
            else:
                _login(browser, tally)


def _login(browser: httpx.Client, tally: Tally) -> None:
    """``POST /login`` as a browser would; with a session cookie back, one read with the
    cookie alone. Counted by status: before the server has a login, this is a 404/405."""
    r = _timed(tally, "login", browser.post, "/login", data={"secret": TOKEN})
    browser.cookies.clear()
    cookie = r.cookies.get(SESSION_COOKIE) if r is not None else None
    if r is not None and r.status_code == 303 and cookie:
        headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"}
        _timed(
            tally, "cookie_read", browser.get, "/api/images", params={"limit": 24}, headers=headers
        )


def login_probe(base: str) -> dict[str, Any]:
    """One right and one wrong secret, before the load: what the server's login answers."""
    out: dict[str, Any] = {}
    for label, secret in (("right_secret", TOKEN), ("wrong_secret", TOKEN + "-wrong")):
        r = httpx.post(f"{base}/login", data={"secret": secret}, follow_redirects=False)
        out[label] = {"status": r.status_code, "session_cookie": SESSION_COOKIE in r.cookies}
    r = httpx.get(f"{base}/api/images", params={"limit": 1})
    out["read_without_credentials"] = r.status_code
    return out


# --- after the load: is every acknowledged upload there? ------------------------------------


def verify(base: str, tally: Tally, threads: int = 4) -> dict[str, Any]:
    """Every upload answered 2xx and not deleted: found by id with its SHA-256, and by an
    image search with its own bytes (top hit, score >= 0.99). Every deleted one: 404."""
    live = sorted(set(tally.uploaded) - tally.deleted)
    problems: list[str] = []
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    bearer = {"Authorization": f"Bearer {TOKEN}"}

    def check(ids: list[int]) -> None:
        with httpx.Client(base_url=base, headers=bearer, timeout=120) as http:
            for image_id in ids:
                seed, sha = tally.uploaded[image_id]
                got = http.get(f"/api/images/{image_id}")
                gone = image_id in tally.deleted
                if gone:
                    ok, what = got.status_code == 404, "deleted and gone"
                else:
                    ok = got.status_code == 200 and got.json()["sha256"] == sha
                    what = "present by id"
                with lock:
                    counts[what] += ok
                    if not ok:
                        problems.append(f"#{image_id} {what}: {got.status_code}")
                if gone:
                    continue
                files = {"file": (f"{seed}.jpg", jpeg(seed), "image/jpeg")}
                hits = http.post("/api/search/image", files=files, params={"k": 3}).json()["hits"]
                top = hits[0] if hits else None
                found = top is not None and top["id"] == image_id and top["score"] >= 0.99
                with lock:
                    counts["top hit of its own bytes"] += found
                    if not found:
                        problems.append(f"#{image_id} not the top hit of its own bytes: {hits}")

    ids = live + sorted(tally.deleted)
    workers = [threading.Thread(target=check, args=(ids[i::threads],)) for i in range(threads)]
    started = time.perf_counter()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return {
        "checked": "all",
        "acknowledged_uploads": len(tally.uploaded),
        "deleted": len(tally.deleted),
        "expected_present": len(live),
        **dict(counts),
        "lost": len(live) - counts["present by id"],
        "problems": problems[:20],
        "seconds": round(time.perf_counter() - started, 1),
    }


# --- the load run ---------------------------------------------------------------------------


def run_load(
    base_lib: Path, model_dir: Path, clients: int, seconds: float, data: Path, log: Log
) -> dict[str, Any]:
    library = fresh_copy(base_lib, data / "load-run")
    first, last = id_range(library)
    tally = Tally()
    shared = Shared(first, last, iter(range(UPLOAD_SEEDS, UPLOAD_SEEDS + 10_000_000)))
    texts = queries(600) + _EXTRA_QUERIES
    args = auth_args()
    with serving(library, model_dir, args) as server:
        probe = login_probe(server.base)
        with httpx.Client(base_url=server.base, timeout=120) as warm:  # sessions, index
            warm.get("/api/search", params={"q": "warm-up"}, headers=server.headers)
        log(f"  {clients} clients for {seconds:.0f} s against {server.base} ...")
        deadline = time.monotonic() + seconds
        cpu0 = _family_cpu(server.proc.pid)
        started = time.perf_counter()
        with MemorySampler(server.proc.pid) as memory:
            threads = [
                threading.Thread(
                    target=client, args=(server.base, i, deadline, shared, tally, texts)
                )
                for i in range(clients)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        wall = time.perf_counter() - started
        server_cores = (_family_cpu(server.proc.pid) - cpu0) / wall
        log("  checking every acknowledged upload ...")
        checked = verify(server.base, tally)
    requests = sum(len(v) for v in tally.latencies.values())
    return {
        "clients": clients,
        "seconds": seconds,
        "wall_s": round(wall, 1),
        "images_at_start": last - first + 1,
        "server_args": [a if a != TOKEN else "***" for a in args],
        "mix": MIX,
        "requests": requests,
        "requests_per_s": round(requests / wall, 1),
        "server_cores_busy": round(server_cores, 2),
        "endpoints": tally.summary(),
        "responses_5xx": len(tally.server_errors),
        # No server is killed during the load: a dropped connection is a failure too.
        "transport_errors": sum(c["transport error"] for c in tally.statuses.values()),
        "examples_5xx": tally.server_errors[:10],
        "database_locked": len(tally.locked),
        "server_log": _log_problems(library),
        "memory": memory.result(),
        "login_probe": probe,
        "verify": checked,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="8 clients, 10 s, 1000 images, 2 kills"
    )
    parser.add_argument("--clients", type=int, default=50, help="0: no load run")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=5, help="0: no kill test")
    parser.add_argument("--uploaders", type=int, default=4, help="upload threads in the kill test")
    parser.add_argument("--model", type=Path, help="a model directory (default: the tiny one)")
    parser.add_argument("--data", type=Path, default=DATA, help="where libraries are built")
    parser.add_argument("--out", type=Path, default=RESULTS / "load.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.seconds, args.images, args.kills = 8, 10.0, 1000, 2
    if not 0 <= args.clients <= 200 or not 0 < args.seconds <= 600 or args.kills > 20:
        parser.error("bounded runs only: at most 200 clients, 600 s and 20 kills")

    os.environ.setdefault("IMAGEFIND_CACHE", str(DATA / "model-cache"))
    model_dir = args.model or tiny_model_dir()
    base = base_library(args.images, model_dir, args.data, print)
    result: dict[str, Any] = {
        "benchmark": "load",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "command": "python -m benchmarks.load " + " ".join(argv or sys.argv[1:]),
        "machine": machine(),
        "lscpu": _lscpu(),
        "model": f"the tests' tiny random CLIP ({model_dir.name})",
        "load_before": load_average(),
    }
    if args.clients:
        print("== load ==", flush=True)
        result["load"] = run_load(base, model_dir, args.clients, args.seconds, args.data, print)
    if args.kills:
        print("== kills ==", flush=True)
        result["kills"] = run_kills(base, model_dir, args.kills, args.uploaders, args.data, print)
    result["load_after"] = load_average()
    result["failures"] = failures(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(render(result))
    for problem in result["failures"]:
        print(f"FAILED: {problem}")
    print(f"wrote {args.out}")
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
