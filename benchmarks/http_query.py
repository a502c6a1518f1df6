"""HTTP text query: latency with 8 concurrent clients on a 100K-image library.

Starts ``imagefind serve --library L --port P`` (127.0.0.1) as a subprocess, waits for
``/api/health``, sends one warm-up query (the text session and the vector index load on
first use), then:

- ``sequential``: one client, distinct queries (service time, no queueing);
- ``distinct``: 8 client threads, each with its own distinct queries (every one encoded);
- ``repeated``: the same 8 clients sending queries already asked (text-vector cache hits).

    python -m benchmarks.http_query [--quick]
"""

from __future__ import annotations

import itertools
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks import run_part
from benchmarks.cli_query import LIBRARY_SIZE, VENV_BIN, _env
from benchmarks.data import vector_library
from benchmarks.modelcache import b32_model_dirs

CLIENTS = 8
Log = Callable[[str], object]

_ADJ = ["red", "small", "old", "happy", "snowy", "dark", "bright", "wooden", "wet", "quiet"]
_NOUN = ["dog", "car", "house", "beach", "mountain", "cat", "bridge", "flower", "boat", "child"]
_PLACE = ["at sunset", "in the rain", "on a table", "in a city", "by the sea", "at night"]


def queries(n: int, offset: int = 0) -> list[str]:
    combos = itertools.product(_ADJ, _NOUN, _PLACE)
    return [" ".join(c) for c in itertools.islice(combos, offset, offset + n)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``imagefind serve`` in a subprocess; stopped (our own pid only) on exit. ``args`` go
    after the command's own (a model, a token); ``headers`` go with the health check, for a
    server that wants a token on every request."""

    def __init__(
        self, library: Path, args: Sequence[str] = (), headers: dict[str, str] | None = None
    ) -> None:
        self.library = library
        self.args = list(args)
        self.headers = headers or {}
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        cmd = [
            str(VENV_BIN / "imagefind"),
            "serve",
            "--library",
            str(self.library),
            "--port",
            str(self.port),
            *self.args,
        ]
        self.log = open(self.library / "bench-serve.log", "a")
        self.proc = subprocess.Popen(cmd, env=_env(), stdout=self.log, stderr=subprocess.STDOUT)
        started = time.perf_counter()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"imagefind serve exited: see {self.library}/bench-serve.log")
            try:
                health = httpx.get(f"{self.base}/api/health", headers=self.headers, timeout=2)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.perf_counter() - started > 120:
                raise RuntimeError("imagefind serve did not answer /api/health in 120 s")
            time.sleep(0.2)
        self.startup_s = time.perf_counter() - started
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _search(client: httpx.Client, q: str) -> float:
    t = time.perf_counter()
    r = client.get("/api/search", params={"q": q, "k": 10})
    wall = time.perf_counter() - t
    if r.status_code != 200 or len(r.json()["hits"]) != 10:
        raise RuntimeError(f"/api/search?q={q!r}: {r.status_code} {r.text[:300]}")
    return wall


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def load(base: str, per_client: list[list[str]], server_pid: int) -> dict[str, Any]:
    """Each list of queries sent in order by its own client thread, all threads at once."""
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    gate = threading.Barrier(len(per_client) + 1)

    def client(qs: list[str]) -> None:
        with httpx.Client(base_url=base, timeout=120) as c:
            gate.wait()
            for q in qs:
                try:
                    wall = _search(c, q)
                except BaseException as exc:  # reported below
                    with lock:
                        errors.append(exc)
                    return
                with lock:
                    latencies.append(wall)

    threads = [threading.Thread(target=client, args=(qs,)) for qs in per_client]
    for t in threads:
        t.start()
    gate.wait()
    started, cpu0 = time.perf_counter(), _cpu_seconds(server_pid)
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    server_cpu = _cpu_seconds(server_pid) - cpu0
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed: {errors[0]}")
    ms = np.asarray(latencies) * 1000
    return {
        "clients": len(per_client),
        "requests": len(latencies),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "mean_ms": round(float(ms.mean()), 1),
        "throughput_qps": round(len(latencies) / wall, 1),
        # How many cores the server kept busy, and its CPU time per request.
        "server_cores_busy": round(server_cpu / wall, 2),
        "server_cpu_ms_per_request": round(server_cpu / len(latencies) * 1000, 1),
    }


def encoder_floor(model: Any, texts: list[str], rounds: int = 5) -> dict[str, float]:
    """The text encoder alone on one round of distinct queries, one per client, in one call
    (as the server batches them) and one by one: with every query distinct, no server
    answers a round of 8 faster than the encoder encodes it."""
    model.encode_texts(texts)  # session load and warm-up
    batched, single = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        model.encode_texts(texts)
        batched.append(time.perf_counter() - t)
        t = time.perf_counter()
        for text in texts:
            model.encode_texts([text])
        single.append(time.perf_counter() - t)
    return {
        "texts": len(texts),
        "one_call_ms": round(statistics.median(batched) * 1000, 1),
        "one_by_one_ms": round(statistics.median(single) * 1000, 1),
    }


def bench_library(
    label: str, library: Path, per_client: int, log: Log, floor: dict[str, float]
) -> dict[str, Any]:
    with Server(library) as server:
        with httpx.Client(base_url=server.base, timeout=120) as c:
            first = _search(c, "warm-up query")
            warm = [_search(c, q) for q in queries(10, offset=300)]  # distinct, one client
        distinct = [queries(per_client, offset=i * per_client) for i in range(CLIENTS)]
        row: dict[str, Any] = {
            "library": label,
            "images": LIBRARY_SIZE,
            "startup_s": round(server.startup_s, 2),
            "first_query_ms": round(first * 1000, 1),
            "sequential": {
                "clients": 1,
                "requests": len(warm),
                "p50_ms": round(statistics.median(warm) * 1000, 1),
                "best_ms": round(min(warm) * 1000, 1),
            },
            "encoder_floor": floor,
            "distinct": load(server.base, distinct, server.proc.pid),
            # The same queries again, each client another's list: every one a cache hit.
            "repeated": load(server.base, distinct[1:] + distinct[:1], server.proc.pid),
        }
    log(
        f"  {label}: 1 client {row['sequential']['p50_ms']:.0f} ms; 8 clients distinct p50 "
        f"{row['distinct']['p50_ms']:.0f} / p95 {row['distinct']['p95_ms']:.0f} ms "
        f"({row['distinct']['throughput_qps']:.0f} q/s); repeated p50 "
        f"{row['repeated']['p50_ms']:.0f} / p95 {row['repeated']['p95_ms']:.0f} ms "
        f"({row['repeated']['throughput_qps']:.0f} q/s); the encoder alone needs "
        f"{floor['one_call_ms']:.0f} ms for {floor['texts']} distinct queries in one call"
    )
    return row


def run(quick: bool, *, log: Log = print) -> dict[str, Any]:
    env = _env()
    os.environ["IMAGEFIND_CACHE"] = env["IMAGEFIND_CACHE"]
    from imagefind.models import load_model

    fp32_dir, _ = b32_model_dirs(log=log)
    per_client = 12 if quick else 25
    rows = []
    for precision in ("fp32", "int8"):
        model = load_model(str(fp32_dir), precision=precision)
        library = vector_library(LIBRARY_SIZE, model.name, model.fingerprint(), log=log)
        floor = encoder_floor(model, queries(CLIENTS, offset=500))
        del model  # the server loads its own
        rows.append(bench_library(precision, library, per_client, log, floor))
    return {"clients": CLIENTS, "queries_per_client": per_client, "k": 10, "libraries": rows}


def main(argv: list[str] | None = None) -> int:
    return run_part("python -m benchmarks.http_query", __doc__, run, argv)


if __name__ == "__main__":
    sys.exit(main())
