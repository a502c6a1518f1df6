"""The embedded store's vector index: kept in step in place, cached on disk by generation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from imagefind.records import ModelIdentity, NewImage
from imagefind.stores import EmbeddedStore

DIM = 8


def _rows(n: int, start: int = 0) -> tuple[list[NewImage], np.ndarray]:
    rng = np.random.default_rng(start)
    vecs = rng.normal(size=(n, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    items = [
        NewImage(
            path=f"/x/{start + i}.jpg",
            upload_key=None,
            sha256=f"{start + i:064d}",
            size=1,
            mtime=0.0,
            width=1,
            height=1,
            format="JPEG",
            taken_at=None,
        )
        for i in range(n)
    ]
    return items, vecs


def _store(folder: Path) -> EmbeddedStore:
    store = EmbeddedStore.open(folder / "catalog.sqlite3")
    if store.model() is None:
        store.bind_model(ModelIdentity("m", DIM, "f"))
    return store


def test_cache_is_named_by_generation_and_reused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    items, vecs = _rows(5)
    ids = store.add(items, vecs)
    _, found = store.search(vecs[:1], 1)  # builds and saves the index
    assert found[0, 0] == ids[0]
    meta = json.loads((tmp_path / "index.json").read_text())
    assert meta["generation"] == store.generation() and meta["count"] == 5
    assert (tmp_path / f"index-{meta['generation']}.faiss").is_file()
    more, more_vecs = _rows(3, start=100)
    store.add(more, more_vecs)  # applied in place, saved on close
    store.close()
    assert sorted(p.name for p in tmp_path.glob("index-*.faiss")) == [
        f"index-{meta['generation'] + 1}.faiss"
    ]
    again = _store(tmp_path)
    assert again.live._load(again.generation()) is not None  # a cold open loads, not rebuilds
    assert len(again.vector_index) == 8


def test_stale_or_mismatched_cache_is_rebuilt(tmp_path: Path) -> None:
    store = _store(tmp_path)
    items, vecs = _rows(4)
    store.add(items, vecs)
    store.search(vecs[:1], 1)
    meta_path = tmp_path / "index.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "count": 99}))  # metadata that lies
    assert store.live._load(store.generation()) is None
    other = _store(tmp_path)  # another process writes: this one's index is stale
    other.add(*_rows(2, start=50))
    other.close()
    assert len(store.vector_index) == 6


def test_cache_of_the_wrong_kind_for_its_size_is_rebuilt(tmp_path: Path, monkeypatch) -> None:
    """A library that grew past a size limit in place gets the right kind on its next load."""
    import imagefind.stores.vectorindex as vi

    store = _store(tmp_path)
    items, vecs = _rows(30)
    store.add(items, vecs)
    store.search(vecs[:1], 1)
    assert json.loads((tmp_path / "index.json").read_text())["kind"] == "flat"
    assert store.live._load(store.generation()) is not None
    monkeypatch.setattr(vi, "SMALL_LIMIT", 10)  # as if 30 vectors had crossed the limit
    assert store.live._load(store.generation()) is None
    store.live.invalidate()
    assert store.vector_index.kind == "flat-fp16"
    assert json.loads((tmp_path / "index.json").read_text())["kind"] == "flat-fp16"


def test_a_read_only_library_uses_its_cache_of_the_old_kind(tmp_path: Path, monkeypatch) -> None:
    """Rebuilding (and failing to save) on every query would cost more than the old kind."""
    import imagefind.stores.embedded.liveindex as live
    import imagefind.stores.vectorindex as vi

    store = _store(tmp_path)
    store.add(*_rows(30))
    store.search(_rows(1)[1], 1)
    monkeypatch.setattr(vi, "SMALL_LIMIT", 10)
    monkeypatch.setattr(live.os, "access", lambda path, mode: False)
    loaded = store.live._load(store.generation())
    assert loaded is not None and loaded.kind == "flat"
