"""Shared pieces of the catalog tests: a small model, unit vectors, rows, and open catalogs
(and stores)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from imagefind.records import ModelIdentity, NewImage
from imagefind.stores.embedded import EmbeddedStore
from imagefind.stores.embedded.catalog import Catalog

DIM = 8
MODEL = ModelIdentity(name="test-model", dim=DIM, fingerprint="abc123")


def unit(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def fake_encode(pixels: np.ndarray) -> np.ndarray:
    """A stand-in for the model's visual encoder: one unit vector per image."""
    return unit(len(pixels))


def item(path: str | None = None, sha: str = "s0", upload_key: str | None = None) -> NewImage:
    return NewImage(
        path=path,
        upload_key=upload_key,
        sha256=sha,
        size=123,
        mtime=1.5 if path else None,
        width=640,
        height=480,
        format="JPEG",
        taken_at="2020-01-02T03:04:05",
    )


@pytest.fixture(name="db_path")
def db_path_fixture(tmp_path: Path) -> Path:
    return tmp_path / "lib" / "catalog.sqlite3"


@pytest.fixture(name="cat")
def cat_fixture(db_path: Path) -> Catalog:
    with Catalog.open(db_path) as c:
        c.bind_model(MODEL)
        yield c


@pytest.fixture(name="catalog")
def catalog_fixture(tmp_path: Path) -> Iterator[EmbeddedStore]:
    """The embedded store of a library at ``tmp_path / "lib"``, bound to the small model."""
    with EmbeddedStore.open(tmp_path / "lib" / "catalog.sqlite3") as store:
        store.bind_model(MODEL)
        yield store
