"""Crash safety of the server: SIGKILL it during uploads and check that every acknowledged
upload survives; collection leaves alone the files of a write still in flight."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from imagefind.library import Library
from tests.crashkit import (
    SEED,
    assert_files_behind_rows,
    assert_searchable,
    catalog_rows,
    cli_env,
    imagefind_exe,
    integrity,
    jpeg,
    kill,
    orphans,
    server,
)

# -- the server ------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigkill_server_during_uploads(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Upload from two clients in a loop, SIGKILL the server: every upload it acknowledged is
    in the catalog, the catalog is intact, and the next run leaves no orphan upload."""
    rng = random.Random(SEED + 2)
    library = tmp_path / "lib"
    acknowledged: set[int] = set()
    failures: list[str] = []
    seeds = iter(range(10_000, 20_000))
    lock = threading.Lock()
    kills = 0
    for _ in range(3):
        with server(library, tiny_model_dir) as (base, proc):
            stop = threading.Event()

            def client(base: str = base, stop: threading.Event = stop) -> None:
                with httpx.Client(base_url=base, timeout=30) as http:
                    while not stop.is_set():
                        with lock:
                            seed = next(seeds)
                        files = [("files", (f"{seed}.jpg", jpeg(seed, (96, 72)), "image/jpeg"))]
                        try:
                            r = http.post("/api/images", files=files)
                        except httpx.HTTPError:
                            return  # the server died mid-request: not acknowledged
                        if r.status_code != 201:
                            failures.append(f"{r.status_code} {r.text[:200]}")
                            return
                        with lock:
                            acknowledged.update(a["id"] for a in r.json()["added"])

            threads = [threading.Thread(target=client) for _ in range(2)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(1.0, 3.0))
            kills += kill(proc)
            stop.set()
            for t in threads:
                t.join(30)
        assert not failures, failures
        rows = catalog_rows(library)
        assert integrity(library) == "ok"
        assert acknowledged <= set(rows), "an acknowledged upload was lost"
        assert_files_behind_rows(library)
    assert kills == 3 and len(acknowledged) > 10

    empty = tmp_path / "empty"
    empty.mkdir()
    run = subprocess.run(
        [imagefind_exe(), "index", str(empty), "--library", str(library), "--json"],
        env=cli_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert orphans(library) == {"thumbs": set(), "uploads": set()}
    assert_searchable(library, tiny_model_dir, set(catalog_rows(library)))
    print(f"\nserver: {kills} SIGKILLs during uploads, {len(acknowledged)} acknowledged, 0 lost")


def test_garbage_collection_leaves_files_of_a_write_in_flight(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Files written ahead of a commit (an upload in the server while `index` runs in another
    process) are not orphans yet: collection skips the store while any writer holds it."""
    holder = (
        "import sys, time\nfrom pathlib import Path\nfrom imagefind.files import LibraryFiles\n"
        "with LibraryFiles(Path(sys.argv[1])).writing():\n"
        "    print('held', flush=True)\n    time.sleep(60)\n"
    )
    with Library.open(tmp_path / "lib", model=str(tiny_model_dir)) as lib:
        pending = lib.files.thumb_path("a" * 64)
        pending.parent.mkdir(parents=True)
        pending.write_bytes(b"written, commit not yet done")
        with lib.files.writing():  # another thread of this process
            assert lib.collect_garbage() == 0 and pending.exists()
        proc = subprocess.Popen(
            [sys.executable, "-c", holder, str(lib.path)],
            env=cli_env(), stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
            assert lib.collect_garbage() == 0 and pending.exists()
            lib.index([tmp_path / "nothing-here"])
            assert pending.exists()
        finally:
            kill(proc)  # a writer that dies releases the store
        assert lib.collect_garbage() == 1 and not pending.exists()
