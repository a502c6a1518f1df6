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
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks import git_commit
from benchmarks.cli_query import VENV_BIN, _env
from benchmarks.data import DATA, vector_library
from benchmarks.encoders import load_average, machine
from benchmarks.http_query import Server, _cpu_seconds, queries
from benchmarks.modelcache import tiny_model_dir

RESULTS = Path(__file__).resolve().parent / "results"
TOKEN = "load-benchmark-token"
SESSION_COOKIE = "imagefind_session"
LOCKED = "database is locked"
Log = Callable[[str], object]

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
UPLOAD_SEEDS = 1_000_000  # generated uploads start here; each seed is used once
QUERY_IMAGE_SEEDS = 900_000  # the images sent as image-search queries
_EXTRA_QUERIES = ["beach + sunset - people", "2:dog + cat", "a red car - night", "#1 + snow"]


def jpeg(seed: int) -> bytes:
    """A small natural-looking JPEG, different for every seed."""
    from tests.crashkit import jpeg as photo

    return photo(seed, (96, 72))


# --- the library ----------------------------------------------------------------------------


def base_library(images: int, model_dir: Path, data: Path, log: Log) -> Path:
    """A library of ``images`` inserted rows bound to the model, each with a thumbnail so
    that any id can be fetched; built once under ``data``, then copied for each run."""
    import sqlite3

    from imagefind.files import LibraryFiles
    from imagefind.models import load_model
    from tests.synth import natural_image

    model = load_model(str(model_dir))
    folder = vector_library(
        images, model.name, model.fingerprint(), dim=model.dim, log=log, data=data
    )
    marker = folder / "bench-thumbs.json"
    if not marker.is_file():
        log(f"writing {images:,} thumbnails in {folder} ...")
        variants = []
        for seed in range(16):
            buf = io.BytesIO()
            natural_image(64, 48, seed=seed).save(buf, "WEBP", quality=60)
            variants.append(buf.getvalue())
        files = LibraryFiles(folder)
        with closing(sqlite3.connect(folder / "catalog.sqlite3")) as conn:
            for i, (sha,) in enumerate(conn.execute("SELECT sha256 FROM images")):
                files.put_thumb(sha, variants[i % len(variants)])
        marker.write_text(json.dumps({"thumbnails": images}))
    return folder


def fresh_copy(base: Path, dest: Path) -> Path:
    """A copy of the base library to change freely (uploads, deletes, kills)."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(base, dest, ignore=shutil.ignore_patterns("bench-serve.log"))
    return dest


def id_range(library: Path) -> tuple[int, int]:
    import sqlite3

    with closing(sqlite3.connect(library / "catalog.sqlite3")) as conn:
        low, high = conn.execute("SELECT min(id), max(id) FROM images").fetchone()
    return int(low), int(high)


def auth_args() -> list[str]:
    """The token, and the server's option that forces auth on loopback when it has one
    (read from ``imagefind serve --help``: ``--require-auth`` or an ``--auth`` flag)."""
    help_text = subprocess.run(
        [str(VENV_BIN / "imagefind"), "serve", "--help"],
        env={**_env(), "COLUMNS": "200", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    args = ["--token", TOKEN]
    for flag in ("--require-auth", "--auth"):
        # A flag, not an option taking a value (typer writes those as `--auth TEXT`).
        if re.search(rf"(?<![\w-]){flag}(?![\w-])(?!\s+[A-Z]{{2,}})", help_text):
            args.append(flag)
            break
    return args


@contextmanager
def serving(library: Path, model_dir: Path, args: list[str]) -> Iterator[Server]:
    with Server(
        library, ["--model", str(model_dir), *args], headers={"Authorization": f"Bearer {TOKEN}"}
    ) as server:
        yield server


# --- what the clients record ----------------------------------------------------------------


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


@dataclass
class Shared:
    """What all clients draw from: the base library's ids and the live uploads."""

    first_id: int
    last_id: int
    seeds: Iterator[int]
    live_uploads: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_seed(self) -> int:
        with self.lock:
            return next(self.seeds)

    def thumbnail_id(self, rng: random.Random) -> int:
        with self.lock:
            if self.live_uploads and rng.random() < 0.3:
                return rng.choice(self.live_uploads)
        return rng.randint(self.first_id, self.last_id)


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


# --- the server's memory --------------------------------------------------------------------


def _family(pid: int) -> list[int]:
    """A process and its descendants (Linux ``/proc/<pid>/task/*/children``)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            with suppress(OSError):
                todo += [int(c) for c in task.read_text().split()]
    return out


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class MemorySampler:
    """The server's resident memory (with its children's), sampled every 0.2 s; the kernel's
    own peak (VmHWM) read at the end covers spikes between samples."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            rss = sum(_status_kib(p, "VmRSS") for p in _family(self.pid))
            self.peak_kib = max(self.peak_kib, rss)

    def __enter__(self) -> MemorySampler:
        self.start_kib = sum(_status_kib(p, "VmRSS") for p in _family(self.pid))
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.hwm_kib = sum(_status_kib(p, "VmHWM") for p in _family(self.pid))

    def result(self) -> dict[str, float]:
        return {
            "rss_before_load_mib": round(self.start_kib / 1024, 1),
            "peak_rss_sampled_mib": round(self.peak_kib / 1024, 1),
            "peak_vmhwm_mib": round(self.hwm_kib / 1024, 1),
        }


def _log_problems(library: Path, since: int = 0) -> dict[str, int]:
    """Tracebacks and "database is locked" in the server's log, after byte ``since``."""
    log_file = library / "bench-serve.log"
    text = log_file.read_bytes()[since:].decode(errors="replace") if log_file.is_file() else ""
    return {"tracebacks": text.count("Traceback"), "database_locked": text.count(LOCKED)}


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


def _family_cpu(pid: int) -> float:
    return sum(_cpu_seconds(p) for p in _family(pid))


# --- the kill test --------------------------------------------------------------------------


def _uploader(base: str, shared: Shared, acked: dict[int, str], stop: threading.Event) -> None:
    """Uploads until told to stop or the server dies; an upload counts once answered 2xx."""
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
    ) as http:
        while not stop.is_set():
            n = shared.next_seed()
            data = jpeg(n)
            files = [("files", (f"kill-{n}.jpg", data, "image/jpeg"))]
            try:
                r = http.post("/api/images", files=files)
            except httpx.HTTPError:
                return  # killed mid-request: never acknowledged
            if r.is_success:
                with shared.lock:
                    acked.update(
                        {a["id"]: hashlib.sha256(data).hexdigest() for a in r.json()["added"]}
                    )


def run_kills(
    base_lib: Path, model_dir: Path, rounds: int, uploaders: int, data: Path, log: Log
) -> dict[str, Any]:
    """SIGKILL the server mid-uploads ``rounds`` times on one library; after each kill the
    catalog checks clean and every acknowledged upload is there, by id and by content."""
    from imagefind.files import LibraryFiles
    from tests.crashkit import catalog_rows, integrity, kill

    library = fresh_copy(base_lib, data / "load-kills")
    rng = random.Random(20241127)
    shared = Shared(0, 0, iter(range(2 * UPLOAD_SEEDS, 3 * UPLOAD_SEEDS)))
    acked: dict[int, str] = {}  # id -> sha256 of the bytes sent, every round
    args = auth_args()
    per_round = []
    for n in range(rounds):
        before = len(acked)
        log_offset = (library / "bench-serve.log").stat().st_size if n else 0
        with serving(library, model_dir, args) as server:
            stop = threading.Event()
            threads = [
                threading.Thread(target=_uploader, args=(server.base, shared, acked, stop))
                for _ in range(uploaders)
            ]
            for t in threads:
                t.start()
            delay = rng.uniform(1.0, 4.0)
            time.sleep(delay)
            killed = kill(server.proc)
            stop.set()
            for t in threads:
                t.join(60)
            startup = server.startup_s
        rows = catalog_rows(library)
        files = LibraryFiles(library)
        missing = [i for i in acked if i not in rows]
        wrong = [i for i, sha in acked.items() if i in rows and rows[i][1] != sha]
        no_file = [
            i
            for i, sha in acked.items()
            if (p := files.find_upload(sha)) is None or _file_sha(p) != sha
        ]
        per_round.append(
            {
                "round": n + 1,
                "startup_s": round(startup, 2),
                "killed_after_s": round(delay, 2),
                "sigkill_while_running": killed,
                "acknowledged": len(acked) - before,
                "acknowledged_total": len(acked),
                "integrity_check": integrity(library),
                "missing": len(missing),
                "wrong_content": len(wrong),
                "original_missing": len(no_file),
                "server_log": _log_problems(library, log_offset),
            }
        )
        log(f"  kill {n + 1}: {per_round[-1]}")
    with (
        serving(library, model_dir, args) as server,
        httpx.Client(base_url=server.base, headers=server.headers, timeout=60) as http,
    ):
        over_http = sum(
            http.get(f"/api/images/{i}").json().get("sha256") == sha for i, sha in acked.items()
        )
    return {
        "rounds": per_round,
        "uploaders": uploaders,
        "kills": sum(r["sigkill_while_running"] for r in per_round),
        "acknowledged": len(acked),
        "lost": sum(r["missing"] + r["wrong_content"] for r in per_round[-1:]),
        "integrity_ok": all(r["integrity_check"] == "ok" for r in per_round),
        "present_over_http_after_restart": over_http,
    }


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- report ---------------------------------------------------------------------------------


def _lscpu() -> dict[str, str]:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    keep = ("Model name", "CPU(s)", "Thread(s) per core", "Flags")
    return {k: fields[k].strip() for k in keep if k in fields}


def render(result: dict[str, Any]) -> str:
    """Markdown: the README's "Load and faults" figures."""
    lines = []
    m = result["machine"]
    lines.append(
        f"Run of {result['when']}, commit {result['commit']}, {m['cpu']} with "
        f"{m['cpu_count']} CPUs, {result['model']}; `{result['command']}`."
    )
    load = result.get("load")
    if load:
        mem = load["memory"]
        lines.append(
            f"\n**Load**: {load['clients']} clients for {load['seconds']:.0f} s on "
            f"{load['images_at_start']:,} images: {load['requests']:,} requests "
            f"({load['requests_per_s']}/s), server cores busy {load['server_cores_busy']}, "
            f"**{load['responses_5xx']} responses 5xx**, {load['transport_errors']} dropped "
            f"connections, **{load['database_locked']} "
            f"'database is locked'** (server log: {load['server_log']}), peak server memory "
            f"**{mem['peak_vmhwm_mib']:.0f} MiB** (VmHWM; {mem['rss_before_load_mib']:.0f} MiB "
            f"before the load).\n"
        )
        lines.append("| endpoint | requests | statuses | p50 ms | p95 ms | p99 ms |")
        lines.append("|---|---|---|---|---|---|")
        for row in load["endpoints"].values():
            statuses = ", ".join(f"{k}: {v}" for k, v in row["statuses"].items())
            lines.append(
                f"| `{row['endpoint']}` | {row['count']:,} | {statuses} | {row['p50_ms']:.0f} "
                f"| {row['p95_ms']:.0f} | {row['p99_ms']:.0f} |"
            )
        v = load["verify"]
        lines.append(
            f"\nUploads: {v['acknowledged_uploads']} answered 2xx, {v['deleted']} of them "
            f"deleted; of the {v['expected_present']} left, {v.get('present by id', 0)} found "
            f"by id and {v.get('top hit of its own bytes', 0)} the top hit (score >= 0.99) of "
            f"an image search with their own bytes (all checked): **{v['lost']} lost**. "
            f"Login probe: {load['login_probe']}."
        )
    kills = result.get("kills")
    if kills:
        lines.append(
            f"\n**Kills**: {kills['kills']} SIGKILLs mid-upload ({kills['uploaders']} "
            f"uploaders), {kills['acknowledged']} uploads answered 2xx, **{kills['lost']} "
            f"lost**, integrity_check ok every time: {kills['integrity_ok']}; after a last "
            f"restart {kills['present_over_http_after_restart']} found over HTTP.\n"
        )
        lines.append("| round | killed after s | acknowledged | integrity | missing | restart s |")
        lines.append("|---|---|---|---|---|---|")
        for r in kills["rounds"]:
            lines.append(
                f"| {r['round']} | {r['killed_after_s']} | {r['acknowledged']} | "
                f"{r['integrity_check']} | {r['missing'] + r['wrong_content']} | "
                f"{r['startup_s']} |"
            )
    return "\n".join(lines) + "\n"


def failures(result: dict[str, Any]) -> list[str]:
    """What the issue says must be zero, where it is not."""
    out = []
    load = result.get("load")
    if load:
        if load["responses_5xx"]:
            out.append(f"{load['responses_5xx']} responses 5xx: {load['examples_5xx'][:3]}")
        if load["transport_errors"] or load["server_log"]["tracebacks"]:
            out.append(
                f"{load['transport_errors']} connections dropped, "
                f"{load['server_log']['tracebacks']} tracebacks in the server log"
            )
        if load["database_locked"] or load["server_log"]["database_locked"]:
            out.append("'database is locked' seen")
        if load["verify"]["lost"] or load["verify"]["problems"]:
            out.append(f"uploads lost or not found: {load['verify']['problems'][:3]}")
    kills = result.get("kills")
    if kills and (kills["lost"] or not kills["integrity_ok"]):
        out.append(f"kill test: {kills['lost']} lost, integrity ok: {kills['integrity_ok']}")
    if kills and kills["present_over_http_after_restart"] != kills["acknowledged"]:
        out.append("kill test: not every acknowledged upload found over HTTP after restart")
    return out


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
