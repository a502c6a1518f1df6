"""The catalog: a library's source of truth (image rows, vectors, model identity) in SQLite.

One file per library, WAL mode so a server can read while an indexer writes, every write in
one transaction that also bumps a ``generation`` counter: anything derived from the catalog
(the vector index, caches, another process) compares generations to know it is stale.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import astuple
from pathlib import Path
from typing import Self

import numpy as np

from imagefind.errors import LibraryError, NotFoundError
from imagefind.records import (
    RECORD_COLUMNS,
    ImageRecord,
    ModelIdentity,
    NewImage,
    RowLookups,
    checked_vectors,
)
from imagefind.stores.embedded.schema import MIGRATIONS, SCHEMA_VERSION

_VECTOR_DTYPE = np.dtype("<f2")  # float16 little-endian: half the disk, ample for cosines
_IN_IDS = "IN (SELECT value FROM json_each(?))"  # one parameter for any number of ids

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Catalog"]


class Catalog(RowLookups):
    """Thread-safe handle on one catalog file (one connection, serialised by a lock)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._lock = threading.RLock()

    # --- opening and closing --------------------------------------------------------------

    @classmethod
    def open(cls, path: Path) -> Catalog:
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

    def close(self) -> None:
        """Close the connection (later calls raise LibraryError)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _guard(self) -> Iterator[sqlite3.Connection]:
        """Serialise access and turn SQLite errors into LibraryError naming the file."""
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise LibraryError(f"{self.path}: catalog error ({exc})") from exc

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

    # --- model ----------------------------------------------------------------------------

    def model(self) -> ModelIdentity | None:
        """The model the stored vectors come from, or None before the first index."""
        with self._guard() as conn:
            meta = dict(conn.execute("SELECT key, value FROM meta WHERE key LIKE 'model_%'"))
        if "model_name" not in meta:
            return None
        return ModelIdentity(meta["model_name"], int(meta["model_dim"]), meta["model_fingerprint"])

    def bind_model(self, identity: ModelIdentity) -> None:
        """Record which model the vectors come from (first index, or before a re-embed)."""
        if identity.dim <= 0:
            raise ValueError(f"model dimension must be positive, got {identity.dim}")
        with self.transaction() as conn:
            rows = {
                "name": identity.name,
                "dim": str(identity.dim),
                "fingerprint": identity.fingerprint,
            }
            conn.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('model_' || ?, ?)", rows.items()
            )
            self._bump(conn)

    def _float16(self, vectors: np.ndarray, count: int) -> np.ndarray:
        """Validate a [count, dim] batch against the bound model; return it as float16."""
        vectors = checked_vectors(vectors, count, self.model(), str(self.path))
        return np.ascontiguousarray(vectors, dtype=_VECTOR_DTYPE)

    # --- writing --------------------------------------------------------------------------

    def add(self, items: Sequence[NewImage], vectors: np.ndarray) -> list[int]:
        """Store a batch of images with their vectors in one transaction; return their ids.

        An item whose path (or upload key) is already catalogued updates that row in place,
        keeping its id and first ``added_at`` (a changed file, re-encoded).
        """
        for item in items:
            if item.path is None and item.upload_key is None:
                raise ValueError(f"image {item.sha256[:12]} has neither a path nor an upload key")
        halves = self._float16(vectors, len(items))
        if not items:
            return []
        now = time.time()
        with self.transaction() as conn:
            pairs = zip(items, halves, strict=True)
            ids = [self._upsert(conn, item, vector, now) for item, vector in pairs]
            self._bump(conn)
        return ids

    @staticmethod
    def _upsert(conn: sqlite3.Connection, item: NewImage, vector: np.ndarray, now: float) -> int:
        """Insert or update one image row and its vector; return the row id."""
        fields = astuple(item)[2:9]  # sha256 .. taken_at, in column order
        key, value = (
            ("path", item.path) if item.path is not None else ("upload_key", item.upload_key)
        )
        row = conn.execute(f"SELECT id FROM images WHERE {key} = ?", (value,)).fetchone()
        if row is not None:
            image_id = int(row[0])
            conn.execute(
                "UPDATE images SET sha256 = ?, size = ?, mtime = ?, width = ?, height = ?, "
                "format = ?, taken_at = ?, name = COALESCE(?, name) WHERE id = ?",
                (*fields, item.name, image_id),
            )
        else:
            cursor = conn.execute(
                "INSERT INTO images (path, upload_key, sha256, size, mtime, width, height, "
                "format, taken_at, added_at, name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (item.path, item.upload_key, *fields, now, item.name),
            )
            image_id = int(cursor.lastrowid or 0)
        conn.execute(
            "INSERT OR REPLACE INTO vectors (image_id, vector) VALUES (?, ?)",
            (image_id, vector.tobytes()),
        )
        return image_id

    def relink(self, image_id: int, path: str, size: int, mtime: float | None) -> None:
        """Point a row at a renamed or moved file (same content: no re-encoding)."""
        with self.transaction() as conn:
            other = conn.execute("SELECT id FROM images WHERE path = ?", (path,)).fetchone()
            if other is not None and other[0] != image_id:
                raise LibraryError(f"{path}: already catalogued as image {other[0]}")
            cursor = conn.execute(
                "UPDATE images SET path = ?, size = ?, mtime = ? WHERE id = ?",
                (path, size, mtime, image_id),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"no image with id {image_id}")
            self._bump(conn)

    def remove(self, ids: Sequence[int]) -> list[ImageRecord]:
        """Delete rows (and their vectors) in one transaction; return what was removed so the
        caller can delete thumbnails and uploads. Unknown ids are ignored."""
        wanted = json.dumps([int(i) for i in ids])
        with self.transaction() as conn:
            rows = conn.execute(
                f"SELECT {RECORD_COLUMNS} FROM images WHERE id {_IN_IDS} ORDER BY id",
                (wanted,),
            ).fetchall()
            if rows:
                conn.execute(f"DELETE FROM images WHERE id {_IN_IDS}", (wanted,))
                self._bump(conn)
        return [ImageRecord(*row) for row in rows]

    def replace_vectors(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        """Overwrite the vectors of existing images (re-embedding with the bound model)."""
        halves = self._float16(vectors, len(ids))
        if not len(ids):
            return
        with self.transaction() as conn:
            for image_id, vector in zip(ids, halves, strict=True):
                exists = conn.execute(
                    "SELECT 1 FROM images WHERE id = ?", (int(image_id),)
                ).fetchone()
                if exists is None:
                    raise NotFoundError(f"no image with id {int(image_id)}")
                conn.execute(
                    "INSERT OR REPLACE INTO vectors (image_id, vector) VALUES (?, ?)",
                    (int(image_id), vector.tobytes()),
                )
            self._bump(conn)

    # --- reading --------------------------------------------------------------------------

    def get_many(self, ids: Sequence[int]) -> dict[int, ImageRecord]:
        """Rows by id (unknown ids are absent from the result)."""
        wanted = json.dumps([int(i) for i in ids])
        rows = self._select(f"WHERE id {_IN_IDS}", (wanted,))
        return {row.id: row for row in rows}

    def paths_under(self, root: str) -> dict[str, ImageRecord]:
        """Rows for ``root`` itself or any file below it (what re-indexing a folder compares
        against); uploads are not included."""
        base = root.rstrip(os.sep) or os.sep
        prefix = base if base.endswith(os.sep) else base + os.sep
        # A range, not LIKE: no wildcard escaping, case-sensitive, uses the index.
        upper = prefix[:-1] + chr(ord(os.sep) + 1)
        rows = self._select("WHERE path = ? OR (path >= ? AND path < ?)", (base, prefix, upper))
        return {row.path: row for row in rows if row.path is not None}

    def page(self, offset: int, limit: int) -> list[ImageRecord]:
        """Newest first, for galleries."""
        return self._select(
            "ORDER BY added_at DESC, id DESC LIMIT ? OFFSET ?", (int(limit), int(offset))
        )

    def count(self) -> int:
        with self._guard() as conn:
            return int(conn.execute("SELECT count(*) FROM images").fetchone()[0])

    def vectors(self, ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(int64 ids, float32 [N, D] vectors), ordered by id; unknown ids are left out."""
        with self._guard() as conn:
            if ids is None:
                rows = conn.execute(
                    "SELECT image_id, vector FROM vectors ORDER BY image_id"
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT image_id, vector FROM vectors WHERE image_id {_IN_IDS} "
                    "ORDER BY image_id",
                    (json.dumps([int(i) for i in ids]),),
                ).fetchall()
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

    def generation(self) -> int:
        """The change counter, read from disk each time (other processes write too)."""
        with self._guard() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0])

    def size_on_disk(self) -> int:
        """Bytes used by the database and its write-ahead log."""
        total = 0
        for suffix in ("", "-wal"):
            with suppress(OSError):
                total += os.path.getsize(f"{self.path}{suffix}")
        return total
