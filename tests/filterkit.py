"""A synthetic library with circumstance for the filter tests: rows with dates, folders,
cameras, places, formats and orientations spread so that each filter passes a known share,
and clustered vectors, written straight into a store (no model, no image files)."""

from __future__ import annotations

import numpy as np

from imagefind.records import ModelIdentity, NewImage
from imagefind.stores.base import Store

DIM = 32
CAMERAS = ("Canon EOS 5D Mark IV", "NIKON D750", "Apple iPhone 12")
PLACES = (
    ("São Paulo", "São Paulo", "Brazil", "BR"),
    ("Lisbon", "Lisbon", "Portugal", "PT"),
    ("Munich", "Bavaria", "Germany", "DE"),
)
RARE = 2  # rows with the rare camera (0.1 % of 2000)


def row(i: int, n: int) -> NewImage:
    """Row i of n: dates over ten years (one a day, wrapping), 20 folders of 3 subfolders,
    landscape on even rows, PNG every fourth, the rare camera on the last RARE rows, every
    tenth row with no date and no place."""
    folder = f"/lib/f{i % 20:02d}/s{i % 3}"
    year, day = 2015 + (i % 10), 1 + (i * 7) % 28
    month = 1 + (i * 5) % 12
    undated = i % 10 == 9
    city, region, country, code = PLACES[i % 3]
    return NewImage(
        path=f"{folder}/{i:05d}.jpg",
        upload_key=None,
        sha256=f"{i:064x}",
        size=1000 + i,
        mtime=0.0,
        width=400 if i % 2 == 0 else 300,
        height=300 if i % 2 == 0 else 400,
        format="PNG" if i % 4 == 3 else "JPEG",
        taken_at=None if undated else f"{year:04d}-{month:02d}-{day:02d}T12:00:00+01:00",
        taken_at_source=None if undated else "exif",
        taken_local=None if undated else f"{year:04d}-{month:02d}-{day:02d}T12:00:00",
        camera="Leica M Rare" if i >= n - RARE else CAMERAS[i % 3],
        orientation="landscape" if i % 2 == 0 else "portrait",
        city=None if undated else city,
        region=None if undated else region,
        country=None if undated else country,
        country_code=None if undated else code,
        folder=folder,
        meta_version=1,
    )


def clustered(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, dim))
    x = centres[rng.integers(0, 8, n)] + 0.3 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def fill(store: Store, n: int) -> tuple[list[NewImage], np.ndarray, np.ndarray]:
    """n rows with vectors, in batches; (rows, ids, vectors as stored: float16)."""
    store.bind_model(ModelIdentity("synthetic", DIM, "f"))
    rows = [row(i, n) for i in range(n)]
    vectors = clustered(n)
    ids: list[int] = []
    for start in range(0, n, 500):
        ids += store.add(rows[start : start + 500], vectors[start : start + 500])
    stored = vectors.astype(np.float16).astype(np.float32)
    return rows, np.array(ids, dtype=np.int64), stored
