"""The library's vector index, kept in step with the catalog and cached on disk.

The catalog's generation counter says whether an index is current: our own writes move it
by one and are applied in place; a larger jump means another process wrote, and the index is
rebuilt. The on-disk copy carries the generation it was built at, so a cold CLI query loads
it instead of rebuilding.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path

import numpy as np

from imagefind.errors import ImagefindError
from imagefind.stores.embedded.catalog import Catalog
from imagefind.stores.vectorindex import VectorIndex, build_for, for_size, kind_for

INDEX_META = "index.json"  # with index-<generation>.faiss: derived, safe to delete


class LiveIndex:
    def __init__(self, catalog: Catalog, folder: Path) -> None:
        self.catalog = catalog
        self.folder = folder
        self._index: VectorIndex | None = None
        self._generation = -1
        self._dirty = False
        # The catalog's own lock, not a second one: a writer holds the catalog's lock and
        # then needs this one (on_commit), a search holds this one and then needs the
        # catalog's (generation): with two locks they deadlock.
        self._lock = getattr(catalog, "_lock", None) or threading.RLock()

    def get(self) -> VectorIndex:
        """The current index: cached, loaded from disk, or rebuilt from the catalog."""
        with self._lock:
            generation = self.catalog.generation()
            if self._index is None or generation != self._generation:
                self._index = self._load(generation) or self._build(generation)
                self._generation = generation
                self._dirty = False
            return self._index

    def refresh(self) -> bool:
        """Pick up changes another process made; True when there were some."""
        changed = self.catalog.generation() != self._generation
        if changed:
            self.get()
        return changed

    def invalidate(self) -> None:
        with self._lock:
            self._index = None

    def on_commit(self, ids: list[int], vectors: np.ndarray, removed: list[int]) -> None:
        """Apply our own committed write in place."""
        with self._lock:
            if self._index is None:
                return
            if removed:
                self._index.remove(np.asarray(removed, dtype=np.int64))
            if ids:
                self._index.add(np.asarray(ids, dtype=np.int64), vectors)
            generation = self.catalog.generation()
            if generation == self._generation + 1:
                self._generation = generation
                self._dirty = True
            elif generation != self._generation:
                self._index = None  # someone else wrote too: rebuild on next use

    def save_if_dirty(self) -> None:
        with self._lock:
            current = self.catalog.generation() == self._generation
            if self._index is not None and self._dirty and current:
                self._save(self._index, self._generation)
                self._dirty = False

    def _load(self, generation: int) -> VectorIndex | None:
        try:
            meta = json.loads((self.folder / INDEX_META).read_text())
            if meta.get("generation") != generation:
                return None
            wrong_kind = meta.get("kind") != kind_for(meta.get("count", 0))
            if wrong_kind and os.access(self.folder, os.W_OK):
                return None  # grown (or shrunk) past a size limit: build (and keep) the right kind
            index = VectorIndex.load(self.folder / _index_file(generation))
            return index if len(index) == meta.get("count") else None
        except (OSError, ValueError, ImagefindError):
            return None

    def _build(self, generation: int) -> VectorIndex:
        ids, vectors = self.catalog.vectors()
        bound = self.catalog.model()
        dim = bound.dim if bound else (vectors.shape[1] if len(vectors) else 1)
        index = build_for(ids, vectors) if len(ids) else for_size(0, dim)
        self._save(index, generation)
        return index

    def _save(self, index: VectorIndex, generation: int) -> None:
        """Best effort: a read-only library still works, it just rebuilds next time. The file
        is named by its generation, so two processes saving at once can never pair one's
        metadata with the other's index."""
        name = _index_file(generation)
        with contextlib.suppress(ImagefindError, OSError):
            index.save(self.folder / name)
            meta = {"generation": generation, "count": len(index), "kind": index.kind}
            tmp = self.folder / f".{INDEX_META}.{generation}.tmp"
            tmp.write_text(json.dumps(meta))
            tmp.replace(self.folder / INDEX_META)
            for old in self.folder.glob("index-*.faiss"):
                if old.name != name:
                    old.unlink(missing_ok=True)


def _index_file(generation: int) -> str:
    return f"index-{generation}.faiss"
