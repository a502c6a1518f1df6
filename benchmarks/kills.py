"""The kill test: SIGKILL a server mid-uploads, restart it on the same library, and check
that the catalog is clean and every acknowledged upload is there."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.loadkit import (
    TOKEN,
    UPLOAD_SEEDS,
    Log,
    Shared,
    auth_args,
    fresh_copy,
    jpeg,
    serving,
)
from benchmarks.serverproc import _log_problems


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


