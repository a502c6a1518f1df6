"""What the load and the kill benchmarks share: the library they serve, the server they start
(loopback only, with a token) and the uploads they make."""

from __future__ import annotations

import io
import json
import random
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.cli_query import VENV_BIN, _env
from benchmarks.data import vector_library
from benchmarks.http_query import Server

TOKEN = "load-benchmark-token"
SESSION_COOKIE = "imagefind_session"
LOCKED = "database is locked"
UPLOAD_SEEDS = 1_000_000  # generated uploads start here; each seed is used once
Log = Callable[[str], object]


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


