"""A synthetic library with circumstance for the filter tests: rows with dates, folders,
cameras, places, formats and orientations spread so that each filter passes a known share,
and clustered vectors, written straight into a store (no model, no image files)."""

from __future__ import annotations

from pathlib import Path

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


# --- a small real library (the tiny model, real files) with known circumstance -----------

PHOTOS: tuple[tuple[str, tuple[int, int], str | None, str | None, tuple[str, ...] | None], ...] = (
    # (path under the root, size, taken_local, camera, (city, region, country, code))
    ("a/01.jpg", (160, 120), "2018-03-04T10:00:00", "Canon EOS 5D Mark IV", PLACES[1]),
    ("a/02.jpg", (120, 160), "2018-07-14T18:30:00", "Canon EOS 5D Mark IV", PLACES[1]),
    ("a/03.jpg", (160, 120), "2019-01-02T09:00:00", "NIKON D750", PLACES[0]),
    ("a/04.jpg", (128, 128), None, None, None),
    ("b/05.jpg", (160, 120), "2019-06-01T00:00:00", "NIKON D750", PLACES[2]),
    ("b/06.jpg", (120, 160), "2019-08-31T23:59:59", "Apple iPhone 12", PLACES[2]),
    ("b/07.jpg", (160, 120), "2019-09-01T00:00:00", "Apple iPhone 12", PLACES[0]),
    ("b/08.jpg", (160, 120), "2020-02-29T12:00:00", None, None),
    ("b/deep/09.jpg", (120, 160), "2021-05-05T05:05:05", "Canon EOS R5", PLACES[1]),
    ("b/deep/10.jpg", (160, 120), "2021-12-31T23:00:00", "Canon EOS R5", PLACES[2]),
    ("bb/11.jpg", (160, 120), "2022-01-01T00:00:00", "NIKON D750", PLACES[0]),
    ("bb/12.jpg", (160, 120), "2022-06-15T12:00:00", "NIKON D750", PLACES[0]),
)
"""``bb/`` is beside ``b/``, not in it: a folder filter on b must not take it."""


def write_photos(root: Path) -> None:
    from tests.synth import natural_image

    for n, (rel, (w, h), *_) in enumerate(PHOTOS):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        natural_image(w, h, seed=300 + n).save(root / rel, quality=90)


def stamp(store: Store, root: Path) -> dict[str, int]:
    """Write PHOTOS' circumstance into the indexed rows (as the metadata reader would at
    index time); their ids by relative path."""
    ids: dict[str, int] = {}
    for rel, (w, h), taken, camera, place in PHOTOS:
        rec = store.by_path(str(root / rel))
        assert rec is not None, rel
        ids[rel] = rec.id
        shape = "square" if w == h else "landscape" if w > h else "portrait"
        city, region, country, code = place or (None, None, None, None)
        values = (taken, camera, shape, city, region, country, code, rec.id)
        p = "%s" if type(store).__name__ == "PostgresStore" else "?"
        with store._guard() as conn:  # type: ignore[attr-defined]
            conn.execute(
                f"UPDATE images SET taken_local = {p}, camera = {p}, orientation = {p}, "
                f"city = {p}, region = {p}, country = {p}, country_code = {p}, "
                f"meta_version = 1 WHERE id = {p}",
                values,
            )
    with store._guard() as conn:  # type: ignore[attr-defined]
        conn.execute(  # a write: whatever caches the catalog's content must see it
            "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT) "
            "WHERE key = 'generation'"
        )
    return ids
