"""Crash safety: SIGKILL an indexer, a remover and a server at random moments, then check that
the catalog is intact, nothing committed was lost, a rerun finishes the job without encoding
anything twice, and no orphan thumbnail or upload survives the next run."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

import httpx
import pytest

from imagefind.library import Library
from imagefind.storage import FileStore
from tests.synth import natural_image

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = 300
TRIALS = 8
CATALOG_NAME = "catalog.sqlite3"  # the documented layout of a library folder
SEED = int(os.environ.get("IMAGEFIND_CRASH_SEED", "20240917"))

# -- helpers shared with the other reliability tests -----------------------------------------


def imagefind_exe() -> str:
    """The console script of the interpreter running the tests (the dev venv's)."""
    beside = Path(sys.executable).with_name("imagefind")
    return str(beside) if beside.exists() else shutil.which("imagefind") or "imagefind"


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEFIND_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return env


def jpeg(seed: int, size: tuple[int, int] = (128, 96)) -> bytes:
    buf = BytesIO()
    natural_image(*size, seed=seed).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def write_photos(folder: Path, count: int, first_seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"img{i:04d}.jpg").write_bytes(jpeg(first_seed + i))
    return folder


def catalog_rows(library: Path) -> dict[int, tuple[str | None, str]]:
    """id -> (path or upload key, sha256), read with plain sqlite3 (no imagefind code)."""
    path = library / CATALOG_NAME
    if not path.exists():
        return {}
    with sqlite3.connect(path, timeout=30) as conn:
        try:
            rows = conn.execute("SELECT id, coalesce(path, upload_key), sha256 FROM images")
            return {int(i): (p, sha) for i, p, sha in rows}
        except sqlite3.OperationalError as exc:  # before the schema exists
            if "no such table" in str(exc):
                return {}
            raise


def integrity(library: Path) -> str:
    with sqlite3.connect(library / CATALOG_NAME, timeout=30) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def stored_files(library: Path) -> dict[str, set[str]]:
    """Content hashes of the thumbnails and uploads on disk (temporary files included)."""
    out: dict[str, set[str]] = {}
    for kind in ("thumbs", "uploads"):
        folder = library / kind
        out[kind] = (
            {p.name.split(".", 1)[0] for p in folder.glob("*/*")} if folder.is_dir() else set()
        )
        out[kind] |= {p.name for p in folder.glob("*/.tmp-*")} if folder.is_dir() else set()
    return out


def orphans(library: Path) -> dict[str, set[str]]:
    """Stored files whose content no catalog row uses."""
    live = {sha for _, sha in catalog_rows(library).values()}
    return {kind: names - live for kind, names in stored_files(library).items()}


def assert_files_behind_rows(library: Path) -> None:
    """Every row has its thumbnail, and every upload row its original (files come first)."""
    store = FileStore(library)
    for _, (source, sha) in catalog_rows(library).items():
        assert store.thumb_path(sha).exists(), f"row for {source} has no thumbnail"
        if source is not None and not source.startswith("/"):
            assert store.find_upload(sha) is not None, f"upload {source} has no original"


def assert_searchable(library: Path, model_dir: Path, ids: set[int]) -> None:
    """Every id comes back from one search over the whole library, and a sample of images,
    given as bytes, each find themselves (or an exact copy) first."""
    if not ids:
        return
    with Library.open(library, model=str(model_dir)) as lib:
        first = min(ids)
        found = {h.id for h in lib.similar(first, k=len(ids) + 50)} | {first}
        assert ids <= found, f"committed but not searchable: {sorted(ids - found)[:10]}"
        for image_id in sorted(ids)[:: max(1, len(ids) // 12)]:
            hit = lib.similar(lib.original_path(image_id).read_bytes(), k=1)[0]
            assert lib.get(hit.id).sha256 == lib.get(image_id).sha256, image_id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(library: Path, model_dir: Path, *extra: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """``imagefind serve`` in a subprocess; yields its base URL once it answers."""
    port = free_port()
    log = open(library.parent / f"serve-{port}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [imagefind_exe(), "serve", "--library", str(library), "--model", str(model_dir),
         "--port", str(port), *extra],
        env=cli_env(), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {Path(log.name).read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("server did not start in 60 s")
            time.sleep(0.1)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def kill(proc: subprocess.Popen) -> bool:
    """SIGKILL; True when the process was still running (a real mid-flight kill)."""
    alive = proc.poll() is None
    if alive:
        proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    return alive and proc.returncode == -signal.SIGKILL


def wait_for_rows(library: Path, proc: subprocess.Popen, at_least: int, timeout: float) -> bool:
    """Poll the catalog until it has ``at_least`` rows; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if len(catalog_rows(library)) >= at_least:
                return True
        except sqlite3.Error:
            pass
        time.sleep(0.005)
    return False


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 small natural-looking JPEGs, generated once for the module."""
    return write_photos(tmp_path_factory.mktemp("crash") / "photos", PHOTOS)


def index_cmd(photos: Path, library: Path, model_dir: Path) -> list[str]:
    return [
        imagefind_exe(), "index", str(photos), "--library", str(library),
        "--model", str(model_dir), "--batch-size", "8", "--json",
    ]  # fmt: skip


# -- indexing --------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigkill_during_index_loses_nothing(
    photos: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Kill `imagefind index` at random moments (some at a random time after start, some just
    after a random number of rows has landed); after each kill the catalog is intact and
    every committed image is searchable; rows never disappear; the final rerun encodes only
    what was never committed and leaves no orphan files."""
    import json

    rng = random.Random(SEED)
    library = tmp_path / "lib"
    before: dict[int, tuple[str | None, str]] = {}
    kills, lost, orphaned_after_kill = 0, 0, 0
    trial = 0
    while kills < TRIALS and trial < TRIALS * 3:
        trial += 1
        proc = subprocess.Popen(
            index_cmd(photos, library, tiny_model_dir),
            env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if trial % 3 == 1:  # by the clock: may land in start-up, walking or a batch
            # Short: a fast run must not finish most of the corpus before the kill lands.
            time.sleep(rng.uniform(0.2, 1.0))
        else:  # by progress: mid-run, right around a commit
            remaining = PHOTOS - len(before)
            wait_for_rows(library, proc, len(before) + rng.randint(1, min(12, remaining - 24)), 60)
            time.sleep(rng.uniform(0, 0.08))
        kills += kill(proc)
        if not (library / CATALOG_NAME).exists():
            continue
        after = catalog_rows(library)  # read straight after the kill: what was committed
        assert integrity(library) == "ok"
        missing = {i: row for i, row in before.items() if after.get(i) != row}
        lost += len(missing)
        assert not missing, f"trial {trial}: rows lost or changed by a crash: {missing}"
        assert_files_behind_rows(library)
        assert_searchable(library, tiny_model_dir, set(after))
        orphaned_after_kill += sum(len(v) for v in orphans(library).values())
        before = after
        if len(before) >= PHOTOS - 30:
            break  # keep a rest for the final rerun to encode
    assert kills >= 5, f"only {kills} kills landed mid-run in {trial} trials"

    done = subprocess.run(
        index_cmd(photos, library, tiny_model_dir),
        env=cli_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["encoded"] == PHOTOS - len(before), summary
    assert summary["unchanged"] == len(before) and summary["skipped"] == []
    final = catalog_rows(library)
    assert len(final) == PHOTOS
    assert all(final[i] == row for i, row in before.items())
    assert integrity(library) == "ok"
    assert orphans(library) == {"thumbs": set(), "uploads": set()}
    assert_files_behind_rows(library)
    assert_searchable(library, tiny_model_dir, set(final))
    print(
        f"\nindex: {trial} runs, {kills} SIGKILLs mid-run, {lost} rows lost, "
        f"{orphaned_after_kill} orphan files seen after kills (all collected by the rerun)"
    )


# -- removing --------------------------------------------------------------------------------

REMOVE_LOOP = """
import sys
from imagefind.library import Library
lib = Library.open(sys.argv[1])
for image_id in sys.argv[2:]:
    lib.remove([int(image_id)])
"""


@pytest.mark.slow
def test_sigkill_during_remove(photos: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    """Kill removals (one by one through the library, and `imagefind remove` of a folder) at
    random moments: each removal is all-or-nothing, what is not removed stays searchable,
    and files of removed rows are gone after the next index run."""
    rng = random.Random(SEED + 1)
    library = tmp_path / "lib"
    subset = tmp_path / "subset"
    subset.mkdir()
    for p in sorted(photos.iterdir())[:120]:
        os.link(p, subset / p.name)
    run = subprocess.run(
        index_cmd(subset, library, tiny_model_dir), env=cli_env(), capture_output=True
    )
    assert run.returncode == 0, run.stderr
    kills = 0
    for trial in range(5):
        rows = catalog_rows(library)
        ids = sorted(rows)[:15]
        proc = subprocess.Popen(
            [sys.executable, "-c", REMOVE_LOOP, str(library), *map(str, ids)], env=cli_env()
        )
        wait_for_rows_below(library, proc, len(rows) - rng.randint(1, 10), 30)
        time.sleep(rng.uniform(0, 0.02))
        kills += kill(proc)
        after = catalog_rows(library)
        assert integrity(library) == "ok", f"trial {trial}"
        assert {i: r for i, r in rows.items() if i not in ids} == {
            i: r for i, r in after.items() if i not in ids
        }, "a removal touched rows it was not asked to remove"
        assert_files_behind_rows(library)
        assert_searchable(library, tiny_model_dir, set(after))

    # `imagefind remove FOLDER`: one transaction, so all or nothing whatever the moment.
    for _ in range(3):
        rows = catalog_rows(library)
        proc = subprocess.Popen(
            [imagefind_exe(), "remove", str(subset), "--library", str(library)],
            env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(rng.uniform(0.2, 2.0))
        kills += kill(proc)
        after = catalog_rows(library)
        assert integrity(library) == "ok"
        assert after in (rows, {}), "a folder removal was half applied"
        if not after:
            break
    assert kills >= 5

    # The next index run brings the folder back and collects every orphan.
    run = subprocess.run(
        index_cmd(subset, library, tiny_model_dir), env=cli_env(), capture_output=True
    )
    assert run.returncode == 0, run.stderr
    assert len(catalog_rows(library)) == 120
    assert orphans(library) == {"thumbs": set(), "uploads": set()}
    assert_files_behind_rows(library)


def wait_for_rows_below(library: Path, proc: subprocess.Popen, target: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if len(catalog_rows(library)) <= target:
            return
        time.sleep(0.002)


def test_files_of_a_removal_cut_short_are_collected(
    photos: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic twin of the kill test: the process dies after the catalog commit and
    before the files go; the next `index` removes them."""
    folder = tmp_path / "few"
    folder.mkdir()
    for p in sorted(photos.iterdir())[:6]:
        os.link(p, folder / p.name)
    with Library.open(tmp_path / "lib", model=str(tiny_model_dir)) as lib:
        assert lib.index([folder]).added == 6
        upload = lib.add(jpeg(9000), name="up.jpg")

        def crash(_: object) -> None:
            raise KeyboardInterrupt  # stands in for the process dying here

        monkeypatch.setattr(lib.store, "discard", crash)
        with pytest.raises(KeyboardInterrupt):
            lib.remove([upload.id, lib.images(0, 10)[-1].id])
        monkeypatch.undo()
        assert lib.count() == 5
        assert sum(len(v) for v in orphans(lib.path).values()) == 3  # 2 thumbs, 1 upload
        lib.index([folder])
        assert orphans(lib.path) == {"thumbs": set(), "uploads": set()}


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
        "import sys, time\nfrom pathlib import Path\nfrom imagefind.storage import FileStore\n"
        "with FileStore(Path(sys.argv[1])).writing():\n"
        "    print('held', flush=True)\n    time.sleep(60)\n"
    )
    with Library.open(tmp_path / "lib", model=str(tiny_model_dir)) as lib:
        pending = lib.store.thumb_path("a" * 64)
        pending.parent.mkdir(parents=True)
        pending.write_bytes(b"written, commit not yet done")
        with lib.store.writing():  # another thread of this process
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
