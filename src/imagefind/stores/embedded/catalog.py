"""The catalog: a library's source of truth (image rows, vectors, model identity) in SQLite.

One file per library, WAL mode so a server can read while an indexer writes, every write in
one transaction that also bumps a ``generation`` counter: anything derived from the catalog
(the vector index, caches, another process) compares generations to know it is stale.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Self

import numpy as np

from imagefind.errors import LibraryError
from imagefind.records import ModelIdentity, checked_vectors
from imagefind.stores.embedded.schema import MIGRATIONS, SCHEMA_VERSION
from imagefind.stores.sql import SqlStore

_VECTOR_DTYPE = np.dtype("<f2")  # float16 little-endian: half the disk, ample for cosines
_IN_IDS = "IN (SELECT value FROM json_each(?))"  # one parameter for any number of ids

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Catalog"]


class Catalog(SqlStore):
    """Thread-safe handle on one catalog file (one connection, serialised by a lock)."""

    # --- opening and closing --------------------------------------------------------------

    @classmethod
    def open(cls, path: Path) -> Self:
        """Open (creating and migrating as needed) the catalog at ``path``."""
        path = Path(path)
        if path.is_dir():
            raise LibraryError(f"{path}: is a directory, not a catalog file")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves.
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise LibraryError(f"{path}: cannot open catalog ({exc})") from exc
        catalog = cls(conn, path)
        try:
            catalog._setup()
        except BaseException:
            conn.close()
            raise
        return catalog

    def _setup(self) -> None:
        """Connection settings, then bring the schema up to date."""
        with self._guard():
            # Another process may be writing: wait for it rather than fail "database is locked".
            self._conn.execute("PRAGMA busy_timeout = 30000")
            try:
                version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            except sqlite3.DatabaseError as exc:
                raise LibraryError(f"{self.path}: not an imagefind catalog ({exc})") from exc
            self._check_version(version)
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            if version < SCHEMA_VERSION:
                self._migrate()

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise LibraryError(
                f"{self.path}: catalog schema version {version} is newer than this imagefind "
                f"supports ({SCHEMA_VERSION}); upgrade imagefind to open it"
            )

    def _migrate(self) -> None:
        with self.transaction() as conn:
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            self._check_version(version)
            if version == 0:
                tables = conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                ).fetchone()[0]
                if tables:
                    raise LibraryError(
                        f"{self.path}: not an imagefind catalog (an SQLite file with "
                        "other tables); choose another library path"
                    )
            for migration in MIGRATIONS[version:]:
                migration(conn)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")

    # --- plumbing -------------------------------------------------------------------------

    def _driver_error(self, exc: Exception) -> str | None:
        return f"catalog error ({exc})" if isinstance(exc, sqlite3.Error) else None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: writers queue instead of failing).

        Nested use joins the outer transaction.
        """
        with self._guard() as conn:
            if conn.in_transaction:
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @staticmethod
    def _bump(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

    # --- dialect --------------------------------------------------------------------------

    _transaction = transaction

    def _id_list(self, ids: Sequence[int]) -> tuple[str, object]:
        return _IN_IDS, json.dumps([int(i) for i in ids])

    def _vector_params(
        self, vectors: np.ndarray, count: int, model: ModelIdentity | None
    ) -> list[Any]:
        halves = checked_vectors(vectors, count, model, str(self.path))
        return [v.tobytes() for v in np.ascontiguousarray(halves, dtype=_VECTOR_DTYPE)]

    def _text_prefilter(self, terms: Sequence[str]) -> tuple[str, list[object]] | None:
        """The FTS5 trigram index: candidates for terms of three characters or more (a
        shorter term needs the plain scan that ``LIKE`` does)."""
        if any(len(t) < 3 for t in terms):
            return None
        query = " OR ".join(f'"{t}"' for t in terms)  # compact terms: letters and digits
        return "t.image_id IN (SELECT rowid FROM image_text_fts WHERE image_text_fts MATCH ?)", [
            query
        ]

    # --- model ----------------------------------------------------------------------------

    def bind_model(self, identity: ModelIdentity) -> None:
        """Record which model the vectors come from (the first index)."""
        with self.transaction() as conn:
            self._write_model(conn, identity)
            self._bump(conn)

    # --- reading --------------------------------------------------------------------------

    def vectors(self, ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(int64 ids, float32 [N, D] vectors), ordered by id; unknown ids are left out."""
        with self._guard() as conn:
            rows = conn.execute(*self._vectors_query(ids)).fetchall()
            model = self.model()
        if not rows:
            return np.empty(0, np.int64), np.empty((0, model.dim if model else 0), np.float32)
        dim = model.dim if model else len(rows[0][1]) // _VECTOR_DTYPE.itemsize
        id_array = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        buffer = b"".join(row[1] for row in rows)
        if len(buffer) != len(rows) * dim * _VECTOR_DTYPE.itemsize:
            raise LibraryError(
                f"{self.path}: stored vectors do not all have dimension {dim}; re-index"
            )
        halves = np.frombuffer(buffer, dtype=_VECTOR_DTYPE).reshape(len(rows), dim)
        return id_array, halves.astype(np.float32)

    def size_on_disk(self) -> int:
        """Bytes used by the database and its write-ahead log."""
        total = 0
        for suffix in ("", "-wal"):
            with suppress(OSError):
                total += os.path.getsize(f"{self.path}{suffix}")
        return total
