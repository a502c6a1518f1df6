"""The embedded store: the SQLite catalog plus a FAISS index derived from it."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from imagefind.filters import Filters
from imagefind.records import ImageRecord, ModelIdentity, NewImage
from imagefind.scanner import FoundFile
from imagefind.stores.embedded.catalog import Catalog
from imagefind.stores.embedded.filtered import filtered_search
from imagefind.stores.embedded.liveindex import LiveIndex
from imagefind.stores.vectorindex import VectorIndex

_NO_VECTORS = np.zeros((0, 1), dtype=np.float32)


class EmbeddedStore(Catalog):
    """A catalog whose writes also keep the vector index in step (in place, no rebuild)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        super().__init__(conn, path)
        self.live = LiveIndex(self, path.parent)

    @property
    def vector_index(self) -> VectorIndex:
        return self.live.get()

    def search(
        self, queries: np.ndarray, k: int, filters: Filters | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        if filters:
            return filtered_search(self.live.get(), self, queries, k, filters)
        return self.live.get().search(queries, k)

    def refresh(self) -> bool:
        return self.live.refresh()

    def claim(self, files: Sequence[FoundFile]) -> set[str]:
        """One machine, one writer at a time: every file is ours."""
        return {f.path for f in files}

    def release_claims(self) -> None:
        return None

    def close(self) -> None:
        self.live.save_if_dirty()
        super().close()

    def bind_model(self, identity: ModelIdentity) -> None:
        super().bind_model(identity)
        self.live.invalidate()  # a new model means new vectors: rebuild on next use

    # Each write and its index update happen under the catalog's lock, so a concurrent
    # writer in this process cannot slip between them and force a rebuild.

    def add(self, items: Sequence[NewImage], vectors: np.ndarray) -> list[int]:
        with self._lock:
            ids = super().add(items, vectors)
            self.live.on_commit(ids, np.asarray(vectors, dtype=np.float32), [])
        return ids

    def relink(self, image_id: int, path: str, size: int, mtime: float | None) -> None:
        with self._lock:
            super().relink(image_id, path, size, mtime)
            self.live.on_commit([], _NO_VECTORS, [])

    def update_metadata(self, rows: Sequence[tuple[int, Mapping[str, object]]]) -> None:
        with self._lock:
            super().update_metadata(rows)
            self.live.on_commit([], _NO_VECTORS, [])

    def remove(self, ids: Sequence[int]) -> list[ImageRecord]:
        with self._lock:
            removed = super().remove(ids)
            self.live.on_commit([], _NO_VECTORS, [r.id for r in removed])
        return removed

    def switch_model(self, identity: ModelIdentity, drop: Sequence[int]) -> list[ImageRecord]:
        with self._lock:
            removed = super().switch_model(identity, drop)
            self.live.invalidate()  # every vector changed: rebuild on next use
        return removed

    def restore(self, records: Sequence[ImageRecord], vectors: np.ndarray) -> None:
        """Insert rows with their own ids and times (``store copy``), one transaction; the
        vector index is rebuilt on next use."""
        params = self._vector_params(vectors, len(records), self.model())
        with self._lock, self.transaction() as conn:
            self._insert_records(conn, records)
            self._write_vectors(conn, "vectors", [r.id for r in records], params)
            self._bump(conn)
            self.live.invalidate()
