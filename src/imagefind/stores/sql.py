"""What both SQL stores share: the row ↔ record mapping and every
statement that reads alike in SQLite and PostgreSQL. A store supplies its dialect: how it
writes a parameter, a list of ids and a vector, and how it opens a transaction.

Both dialects take ``INSERT … ON CONFLICT … DO UPDATE`` and ``RETURNING`` (SQLite ≥ 3.35),
so an upsert, a delete and a re-link are one statement each, written once here.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import astuple, fields
from typing import Any, ClassVar, Self

import numpy as np

from imagefind.errors import LibraryError, NotFoundError
from imagefind.records import ImageRecord, ModelIdentity, NewImage
from imagefind.stores.columns import METADATA_COLUMNS, NEW_COLUMNS, RECORD_COLUMNS, record
from imagefind.stores.filtering import FilteredReads
from imagefind.stores.rootsql import RootsTable, under
from imagefind.stores.text import TextTable


class SqlStore(FilteredReads, TextTable, RootsTable):
    """The shared half of a SQL store. A subclass provides ``_driver_error`` (what its
    driver's errors say), ``_transaction``, ``_bump`` (the generation counter, last statement
    of every write), ``_id_list`` and ``_vector_params`` (and may add ``_text_prefilter``)."""

    PLACEHOLDER: ClassVar[str] = "?"
    VECTOR_COLUMN: ClassVar[str] = "vector"
    VECTOR_TYPE: ClassVar[str] = "BLOB"
    ID_TYPE: ClassVar[str] = "INTEGER"
    STAGED: ClassVar[str] = "temp.staged_vectors"  # this connection's own, not the library's

    def __init__(self, conn: Any, path: Any) -> None:
        self._conn = conn  # one connection, serialised by the lock
        self.path = path  # what messages call this store
        self._lock = threading.RLock()

    def close(self) -> None:
        """Close the connection (later calls raise LibraryError)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _driver_error(self, exc: Exception) -> str | None:
        """The words for a database error of this driver, or None for any other exception."""
        raise NotImplementedError

    @contextmanager
    def _guard(self) -> Iterator[Any]:
        """Serialise access and turn driver errors into LibraryError naming the store."""
        with self._lock:
            try:
                yield self._conn
            except Exception as exc:
                words = self._driver_error(exc)
                if words is None:
                    raise
                raise LibraryError(f"{self.path}: {words}") from exc

    def _transaction(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _bump(self, conn: Any) -> None:
        raise NotImplementedError

    def _id_list(self, ids: Sequence[int]) -> tuple[str, object]:
        """A condition on a list of ids and its one parameter: ``IN (…)`` or ``= ANY(…)``."""
        raise NotImplementedError

    def _vector_params(
        self, vectors: np.ndarray, count: int, model: ModelIdentity | None
    ) -> list[Any]:
        """A [count, dim] batch checked against ``model``, as this dialect's parameters."""
        raise NotImplementedError

    # --- rows -----------------------------------------------------------------------------

    def _select(self, where: str, params: Sequence[object] = ()) -> list[ImageRecord]:
        with self._guard() as conn:
            rows = conn.execute(f"SELECT {RECORD_COLUMNS} FROM images {where}", params).fetchall()
        return [record(row) for row in rows]

    def get(self, image_id: int) -> ImageRecord:
        """One row; NotFoundError if there is none."""
        rows = self._select(f"WHERE id = {self.PLACEHOLDER}", (int(image_id),))
        if not rows:
            raise NotFoundError(f"no image with id {image_id}")
        return rows[0]

    def get_many(self, ids: Sequence[int]) -> dict[int, ImageRecord]:
        """Rows by id (unknown ids are absent from the result)."""
        condition, param = self._id_list(ids)
        return {row.id: row for row in self._select(f"WHERE id {condition}", (param,))}

    def by_path(self, path: str) -> ImageRecord | None:
        rows = self._select(f"WHERE path = {self.PLACEHOLDER}", (path,))
        return rows[0] if rows else None

    def by_sha256(self, sha256: str) -> list[ImageRecord]:
        """Every row with this content (duplicates, renamed files), oldest id first."""
        return self._select(f"WHERE sha256 = {self.PLACEHOLDER} ORDER BY id", (sha256,))

    def shared_content(self) -> list[ImageRecord]:
        """Rows whose bytes another row also has (exact duplicates), grouped by content."""
        return self._select(
            "WHERE sha256 IN (SELECT sha256 FROM images GROUP BY sha256 HAVING COUNT(*) > 1) "
            "ORDER BY sha256, id"
        )

    def paths_under(self, root: str) -> dict[str, ImageRecord]:
        """Rows for ``root`` itself or any file below it (what re-indexing a folder compares
        against); uploads are not included."""
        p = self.PLACEHOLDER
        rows = self._select(f"WHERE path = {p} OR (path >= {p} AND path < {p})", under(root))
        return {row.path: row for row in rows if row.path is not None}

    def page(self, offset: int, limit: int) -> list[ImageRecord]:
        """Newest first, for galleries."""
        p = self.PLACEHOLDER
        return self._select(
            f"ORDER BY added_at DESC, id DESC LIMIT {p} OFFSET {p}", (int(limit), int(offset))
        )

    def count(self) -> int:
        with self._guard() as conn:
            row = conn.execute("SELECT count(*) FROM images").fetchone()
        return int(row[0]) if row else 0

    def max_id(self) -> int:
        """The highest id in use (0 for none): ids are never reused, so every row added
        after this call has a higher one."""
        with self._guard() as conn:
            row = conn.execute("SELECT max(id) FROM images").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def ids(self) -> list[int]:
        """Every image id, ascending."""
        with self._guard() as conn:
            return [int(row[0]) for row in conn.execute("SELECT id FROM images ORDER BY id")]

    def _vectors_query(self, ids: Sequence[int] | None) -> tuple[str, tuple[object, ...]]:
        """The SELECT behind ``vectors()``: (id, vector) rows ordered by id, all or ``ids``."""
        where = ""
        params: tuple[object, ...] = ()
        if ids is not None:
            condition, param = self._id_list(ids)
            where, params = f"WHERE image_id {condition} ", (param,)
        column = self.VECTOR_COLUMN
        return f"SELECT image_id, {column} FROM vectors {where}ORDER BY image_id", params

    def generation(self) -> int:
        """The change counter, read from the database each time (other processes write)."""
        with self._guard() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    # --- the model ------------------------------------------------------------------------

    def model(self) -> ModelIdentity | None:
        """The model the stored vectors come from, or None before the first index."""
        with self._guard() as conn:
            meta = dict(conn.execute("SELECT key, value FROM meta WHERE key LIKE 'model_%'"))
        if "model_name" not in meta:
            return None
        return ModelIdentity(meta["model_name"], int(meta["model_dim"]), meta["model_fingerprint"])

    def _write_model(self, conn: Any, identity: ModelIdentity) -> None:
        if identity.dim <= 0:
            raise ValueError(f"model dimension must be positive, got {identity.dim}")
        p = self.PLACEHOLDER
        rows = [
            ("model_name", identity.name),
            ("model_dim", str(identity.dim)),
            ("model_fingerprint", identity.fingerprint),
        ]
        with closing(conn.cursor()) as cur:
            cur.executemany(
                f"INSERT INTO meta (key, value) VALUES ({p}, {p}) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                rows,
            )

    # --- writing --------------------------------------------------------------------------

    def _write_vectors(self, conn: Any, table: str, ids: Sequence[int], params: list[Any]) -> None:
        p, column = self.PLACEHOLDER, self.VECTOR_COLUMN
        with closing(conn.cursor()) as cur:
            cur.executemany(
                f"INSERT INTO {table} (image_id, {column}) VALUES ({p}, {p}) "
                f"ON CONFLICT (image_id) DO UPDATE SET {column} = excluded.{column}",
                list(zip([int(i) for i in ids], params, strict=True)),
            )

    def add(self, items: Sequence[NewImage], vectors: np.ndarray) -> list[int]:
        """Store a batch of images with their vectors in one transaction; return their ids.

        An item whose path (or upload key) is already catalogued updates that row in place,
        keeping its id and first ``added_at`` (a changed file, re-encoded).
        """
        for item in items:
            if item.path is None and item.upload_key is None:
                raise ValueError(f"image {item.sha256[:12]} has neither a path nor an upload key")
        params = self._vector_params(vectors, len(items), self.model())
        if not items:
            return []
        now = time.time()
        with self._transaction() as conn:
            ids = [self._upsert(conn, item, now) for item in items]
            self._write_vectors(conn, "vectors", ids, params)
            self._bump(conn)
        return ids

    def _upsert(self, conn: Any, item: NewImage, now: float) -> int:
        """Insert or update one image row; return its id."""
        key = "path" if item.path is not None else "upload_key"
        columns = [*NEW_COLUMNS, "added_at"]
        marks = ", ".join([self.PLACEHOLDER] * len(columns))
        kept = {"path", "upload_key", "name"}  # the key, and an upload's first name
        updates = ", ".join(f"{c} = excluded.{c}" for c in NEW_COLUMNS if c not in kept)
        row = conn.execute(
            f"INSERT INTO images ({', '.join(columns)}) VALUES ({marks}) "
            f"ON CONFLICT ({key}) DO UPDATE SET {updates}, "
            "name = COALESCE(excluded.name, images.name) RETURNING id",
            (*astuple(item), now),
        ).fetchone()
        return int(row[0])

    def relink(self, image_id: int, path: str, size: int, mtime: float | None) -> None:
        """Point a row at a renamed or moved file (same content: no re-encoding)."""
        p = self.PLACEHOLDER
        with self._transaction() as conn:
            other = conn.execute(f"SELECT id FROM images WHERE path = {p}", (path,)).fetchone()
            if other is not None and other[0] != image_id:
                raise LibraryError(f"{path}: already catalogued as image {other[0]}")
            cursor = conn.execute(
                f"UPDATE images SET path = {p}, size = {p}, mtime = {p}, folder = {p} "
                f"WHERE id = {p}",
                (path, size, mtime, os.path.dirname(path), int(image_id)),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"no image with id {image_id}")
            self._bump(conn)

    def stale_metadata(self, version: int, after: int, limit: int) -> list[ImageRecord]:
        """Up to ``limit`` rows past id ``after`` whose metadata an older reader (or none)
        filled, by id."""
        p = self.PLACEHOLDER
        return self._select(
            f"WHERE (meta_version IS NULL OR meta_version < {p}) AND id > {p} "
            f"ORDER BY id LIMIT {p}",
            (int(version), int(after), int(limit)),
        )

    def count_stale(self, version: int) -> int:
        """How many rows ``stale_metadata`` would go through."""
        with self._guard() as conn:
            row = conn.execute(
                "SELECT count(*) FROM images WHERE meta_version IS NULL OR meta_version < "
                f"{self.PLACEHOLDER}",
                (int(version),),
            ).fetchone()
        return int(row[0])

    def update_metadata(self, rows: Sequence[tuple[int, Mapping[str, object]]]) -> None:
        """Write the metadata columns (all of ``METADATA_COLUMNS``) of existing rows, in one
        transaction; ids no longer there are passed over."""
        if not rows:
            return
        p = self.PLACEHOLDER
        sets = ", ".join(f"{c} = {p}" for c in METADATA_COLUMNS)
        with self._transaction() as conn, closing(conn.cursor()) as cur:
            cur.executemany(
                f"UPDATE images SET {sets} WHERE id = {p}",
                [(*(v[c] for c in METADATA_COLUMNS), int(i)) for i, v in rows],
            )
            self._bump(conn)

    def remove(self, ids: Sequence[int]) -> list[ImageRecord]:
        """Delete rows (and their vectors) in one transaction; return what was removed so the
        caller can delete thumbnails and uploads. Unknown ids are ignored."""
        with self._transaction() as conn:
            removed = self._delete(conn, ids)
            if removed:
                self._bump(conn)
        return removed

    def _delete(self, conn: Any, ids: Sequence[int]) -> list[ImageRecord]:
        if not ids:
            return []
        condition, param = self._id_list(ids)
        rows = conn.execute(
            f"DELETE FROM images WHERE id {condition} RETURNING {RECORD_COLUMNS}", (param,)
        ).fetchall()
        return sorted((record(row) for row in rows), key=lambda r: r.id)

    def _insert_records(self, conn: Any, records: Sequence[ImageRecord]) -> None:
        """Rows as they are, ids and times included (``store copy``)."""
        marks = ", ".join([self.PLACEHOLDER] * len(fields(ImageRecord)))
        with closing(conn.cursor()) as cur:
            cur.executemany(
                f"INSERT INTO images ({RECORD_COLUMNS}) VALUES ({marks})",
                [astuple(r) for r in records],
            )

    # --- re-embedding: vectors of the next model, staged, then switched in one go ---------

    def stage_vectors(
        self, identity: ModelIdentity, ids: Sequence[int], vectors: np.ndarray
    ) -> None:
        """Keep vectors of another model aside while a re-embed runs. Readers see nothing of
        them until ``switch_model``; the staging table belongs to this connection, so a
        process that dies mid-way leaves nothing behind."""
        params = self._vector_params(vectors, len(ids), identity)
        with self._transaction() as conn:
            conn.execute(self._staging_table())
            self._write_vectors(conn, self.STAGED, ids, params)

    def switch_model(self, identity: ModelIdentity, drop: Sequence[int]) -> list[ImageRecord]:
        """In one transaction: remove the ``drop`` rows (their originals are gone), replace
        every vector by its staged one and bind ``identity``; returns the removed rows. Refused
        (nothing changes) when a remaining image has no staged vector."""
        try:
            with self._transaction() as conn:
                conn.execute(self._staging_table())
                removed = self._delete(conn, drop)
                row = conn.execute(
                    "SELECT count(*) FROM images "
                    f"WHERE id NOT IN (SELECT image_id FROM {self.STAGED})"
                ).fetchone()
                if row[0]:
                    raise LibraryError(
                        f"{self.path}: {row[0]} image(s) have no vector from "
                        f"{identity.name} (added during the re-embed?); nothing was changed, "
                        "run the re-embed again"
                    )
                self._move_staged(conn, identity)
                self._write_model(conn, identity)
                self._bump(conn)
        finally:
            self.discard_staged()
        return removed

    def _staging_table(self) -> str:
        return (
            "CREATE TEMP TABLE IF NOT EXISTS staged_vectors (image_id "
            f"{self.ID_TYPE} PRIMARY KEY, {self.VECTOR_COLUMN} {self.VECTOR_TYPE} NOT NULL)"
        )

    def _move_staged(self, conn: Any, identity: ModelIdentity) -> None:
        """Replace the vectors table's contents by the staged vectors (inside a transaction)."""
        column = self.VECTOR_COLUMN
        conn.execute("DELETE FROM vectors")
        conn.execute(
            f"INSERT INTO vectors (image_id, {column}) SELECT image_id, {column} "
            f"FROM {self.STAGED} WHERE image_id IN (SELECT id FROM images)"  # not removed since
        )

    def discard_staged(self) -> None:
        """Forget staged vectors (a re-embed that failed or finished)."""
        with self._guard() as conn:
            conn.execute(f"DROP TABLE IF EXISTS {self.STAGED}")
