"""Benchmark inputs, made once and reused: image corpora, clustered vectors, big libraries.

Everything lands in ``.cache/bench-data/`` (git-ignored). Files are generated on demand and
kept, so a quick run makes only the first files of each corpus and a full run adds the rest.

- **Corpora** of natural-looking images (``tests.synth.natural_image`` content: gradients,
  soft shapes, sensor-like noise). A 12 MP frame is drawn at a quarter of its size, enlarged
  and given full-resolution noise, which costs ~1 s instead of ~7 s and keeps what matters
  to a decoder: photo-like entropy (about 2-3 MB per 12 MP JPEG at quality 90).
- **Clustered vectors**: a two-level Gaussian mixture on the unit sphere (a few thousand
  centres, grouped under a few dozen themes, uneven cluster sizes and spreads). Queries come
  from the same mixture with another seed, so they are new points, not copies of stored ones.
- **Libraries** of 100K images whose vectors are inserted straight into the catalog (fake
  paths, clustered vectors), bound to the benchmark model exactly as ``index`` would bind it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".cache" / "bench-data"
DATA_VERSION = "1"  # bump when a generator changes: old files are then ignored
CATALOG_FILE = "catalog.sqlite3"  # a library's catalog (DESIGN.md, storage layout)


@dataclass(frozen=True)
class Corpus:
    name: str
    label: str
    width: int
    height: int
    format: str  # PIL format name
    suffix: str
    full_count: int
    quick_count: int

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    @property
    def folder(self) -> Path:
        return DATA / f"v{DATA_VERSION}-{self.name}"


CORPORA = (
    Corpus("jpeg-12mp", "12 MP JPEG", 4000, 3000, "JPEG", ".jpg", 200, 48),
    Corpus("jpeg-1.6mp", "1.6 MP JPEG", 1472, 1104, "JPEG", ".jpg", 200, 48),
    Corpus("png-2mp", "2 MP PNG", 1920, 1080, "PNG", ".png", 100, 24),
)


def photo(width: int, height: int, seed: int) -> Image.Image:
    """A natural-looking RGB image of any size in about a second, even at 12 MP."""
    from tests.synth import natural_image

    scale = max(1, min(width, height) // 750)
    small = natural_image(max(1, width // scale), max(1, height // scale), seed=seed)
    if scale > 1:
        small = small.resize((width, height), Image.Resampling.BICUBIC)
    rng = np.random.default_rng(seed + 7919)
    arr = np.asarray(small, dtype=np.int16)
    noise = rng.standard_normal(arr.shape, dtype=np.float32) * 5.0
    return Image.fromarray(np.clip(arr + noise, 0, 255).astype(np.uint8), "RGB")


def _encode(image: Image.Image, fmt: str, seed: int) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        exif = Image.Exif()
        exif[306] = f"2024:0{1 + seed % 9}:{10 + seed % 18} 12:{seed % 60:02d}:00"  # DateTime
        image.save(out, format="JPEG", quality=90, exif=exif)
    else:
        image.save(out, format=fmt)
    return out.getvalue()


def _make_one(args: tuple[str, int, int, str, int]) -> str:
    path, width, height, fmt, seed = args
    tmp = Path(f"{path}.{os.getpid()}.tmp")
    tmp.write_bytes(_encode(photo(width, height, seed), fmt, seed))
    os.replace(tmp, path)
    return path


def corpus_files(
    corpus: Corpus, count: int, *, log: Callable[[str], object] = print, workers: int = 2
) -> list[Path]:
    """The first ``count`` files of a corpus, generating the missing ones."""
    corpus.folder.mkdir(parents=True, exist_ok=True)
    paths = [corpus.folder / f"{corpus.name}-{i:04d}{corpus.suffix}" for i in range(count)]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        log(f"generating {len(missing)} {corpus.label} files in {corpus.folder} ...")
        started = time.perf_counter()
        jobs = [
            (str(p), corpus.width, corpus.height, corpus.format, 1000 * len(corpus.name) + i)
            for i, p in enumerate(paths)
            if not p.is_file()
        ]
        with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
            list(pool.map(_make_one, jobs))
        log(f"  done in {time.perf_counter() - started:.0f} s")
    return paths


def corpus_subset(corpus: Corpus, count: int, *, log: Callable[[str], object] = print) -> Path:
    """A folder holding exactly the first ``count`` files of a corpus (hard links), so that
    ``Library.index(folder)`` sees those and nothing else."""
    files = corpus_files(corpus, count, log=log)
    folder = DATA / f"v{DATA_VERSION}-{corpus.name}-first{count}"
    if folder.is_dir() and sorted(p.name for p in folder.iterdir()) == [f.name for f in files]:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for f in files:
        try:
            os.link(f, folder / f.name)
        except OSError:
            shutil.copy2(f, folder / f.name)
    return folder


# --- clustered vectors ----------------------------------------------------------------------


def _unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


class Mixture:
    """A Gaussian mixture on the unit sphere: ``themes`` broad directions, ``centres``
    clusters around them with uneven sizes and spreads."""

    def __init__(self, dim: int = 512, centres: int = 4000, themes: int = 48, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.dim = dim
        theme = _unit(rng.standard_normal((themes, dim), dtype=np.float32))
        parent = rng.integers(0, themes, size=centres)
        spread = rng.standard_normal((centres, dim), dtype=np.float32) / np.sqrt(dim)
        self.centres = _unit(theme[parent] + 1.0 * spread)
        weights = rng.lognormal(0.0, 0.8, size=centres)
        self.weights = weights / weights.sum()
        # Per-cluster noise (norm of the offset relative to the unit centre): 0.5 to 1.0,
        # i.e. a point's cosine to its centre is between ~0.7 and ~0.9.
        self.noise = rng.uniform(0.5, 1.0, size=centres).astype(np.float32)

    def text_like(self, n: int, seed: int, cosine: float = 0.3) -> np.ndarray:
        """Queries placed the way CLIP places captions among images: each at ``cosine`` to a
        cluster centre (a caption's best image scores 0.25-0.35), the rest orthogonal noise.
        Their neighbours spread over more of the space than an image query's do."""
        from imagefind.stores.vectorindex import tilted

        rng = np.random.default_rng(seed)
        centre = self.centres[rng.choice(len(self.centres), size=n, p=self.weights)]
        return tilted(centre, rng.standard_normal((n, self.dim), dtype=np.float32), cosine)

    def sample(self, n: int, seed: int, chunk: int = 100_000) -> np.ndarray:
        """``n`` unit vectors float32 [n, dim]."""
        rng = np.random.default_rng(seed)
        out = np.empty((n, self.dim), dtype=np.float32)
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            which = rng.choice(len(self.centres), size=m, p=self.weights)
            block = rng.standard_normal((m, self.dim), dtype=np.float32)
            block *= (self.noise[which] / np.sqrt(self.dim))[:, None]
            block += self.centres[which]
            out[start : start + m] = _unit(block)
        return out


# --- libraries with inserted vectors --------------------------------------------------------


def _identity_key(name: str, fingerprint: str, count: int) -> str:
    key = f"{DATA_VERSION}|{name}|{fingerprint}|{count}".encode()
    return hashlib.sha256(key).hexdigest()[:12]


def vector_library(
    count: int,
    name: str,
    fingerprint: str,
    dim: int = 512,
    *,
    log: Callable[[str], object] = print,
    data: Path = DATA,
) -> Path:
    """A library folder of ``count`` images (fake paths, clustered vectors) bound to the model
    ``name`` with ``fingerprint``; built once (about a minute for 100K) under ``data``, then
    reused."""
    from imagefind.records import ModelIdentity, NewImage
    from imagefind.stores.embedded.catalog import Catalog

    folder = data / f"library-{count}-{_identity_key(name, fingerprint, count)}"
    marker = folder / "bench-ready.json"
    if marker.is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    log(f"building a {count:,}-image library in {folder} ...")
    started = time.perf_counter()
    vectors = Mixture(dim).sample(count, seed=11)
    catalog = Catalog.open(folder / CATALOG_FILE)
    try:
        catalog.bind_model(ModelIdentity(name=name, dim=dim, fingerprint=fingerprint))
        step = 10_000
        for start in range(0, count, step):
            rows = [
                NewImage(
                    path=f"/bench/photos/{i // 1000:03d}/IMG_{i:06d}.jpg",
                    upload_key=None,
                    sha256=hashlib.sha256(i.to_bytes(8, "little")).hexdigest(),
                    size=2_500_000 + i % 1000,
                    mtime=1.7e9 + i,
                    width=4000,
                    height=3000,
                    format="JPEG",
                    taken_at=None,
                )
                for i in range(start, min(count, start + step))
            ]
            catalog.add(rows, vectors[start : start + len(rows)])
    finally:
        catalog.close()
    seconds = time.perf_counter() - started
    marker.write_text(json.dumps({"count": count, "model": name, "seconds": round(seconds, 1)}))
    log(f"  done in {seconds:.0f} s")
    return folder
