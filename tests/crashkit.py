"""Helpers shared by the crash tests and the other reliability tests: run the CLI and the
server as subprocesses, kill them, and read a library folder with plain sqlite3."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

import httpx

from imagefind.files import LibraryFiles
from imagefind.library import Library
from tests.synth import natural_image

ROOT = Path(__file__).resolve().parents[1]
CATALOG_NAME = "catalog.sqlite3"  # the documented layout of a library folder
SEED = int(os.environ.get("IMAGEFIND_CRASH_SEED", "20240917"))


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
    store = LibraryFiles(library)
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
def server(
    library: Path, model_dir: Path, *extra: str, scheme: str = "http"
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``imagefind serve`` in a subprocess; yields its base URL once it answers (``https``:
    with the certificate that ``extra`` names, not checked)."""
    port = free_port()
    log = open(library.parent / f"serve-{port}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [imagefind_exe(), "serve", "--library", str(library), "--model", str(model_dir),
         "--port", str(port), *extra],
        env=cli_env(), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"{scheme}://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {Path(log.name).read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/api/health", timeout=2, verify=False).status_code == 200:
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
