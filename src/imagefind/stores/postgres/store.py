"""The PostgreSQL store: rows in ordinary tables, vectors as pgvector ``halfvec`` with an HNSW
index (cosine), shared by any number of API replicas and indexing workers.

Everything the embedded store keeps in memory lives in the database here: search runs in
SQL, so a replica holds no index to rebuild, and the ``generation`` row tells it (and its
caches) when anyone wrote. Indexing workers claim files before encoding them (``claim``), so
two workers on overlapping folders never encode the same file twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple
from typing import Self

import numpy as np
import psycopg

from imagefind.errors import LibraryError, NotFoundError
from imagefind.records import RECORD_COLUMNS, ImageRecord, ModelIdentity, NewImage, RowLookups
from imagefind.scanner import FoundFile
from imagefind.stores.postgres import bulk as pgbulk
from imagefind.stores.postgres import claims as pgclaims
from imagefind.stores.postgres import schema as pgschema
from imagefind.stores.postgres.schema import Half, label, reason

EXACT_BELOW = 20_000
"""Libraries up to this size are searched exactly (a sequential scan takes milliseconds);
larger ones through the HNSW index."""

EF_SEARCH = 200
"""HNSW candidate list: recall@10 0.98 at 100K clustered 512-d vectors, p50 3.4 ms; 100 gives
0.96 at 2.2 ms (benchmarks/scaling.py, docs/scaling.md)."""


class PostgresStore(RowLookups):
    """A library's rows and vectors in one PostgreSQL database (the ``Store`` face).

    One connection, serialised by a lock, like the SQLite catalog; autocommit, with an
    explicit transaction around every write."""

    PLACEHOLDER = "%s"

    def __init__(self, conn: psycopg.Connection, spec: str) -> None:
        self._conn = conn
        self.spec = spec
        self.path = label(spec)  # what messages call this store
        self._lock = threading.RLock()
        self._seen_generation = -1
        self._owner: int | None = None  # this process's claim owner id, once it claims

    # --- opening and closing --------------------------------------------------------------

    @classmethod
    def open(cls, spec: str) -> PostgresStore:
        """Connect, create the schema (or migrate it), and get ready to store vectors."""
        where = label(spec)
        try:
            conn = psycopg.connect(
                spec, autocommit=True, connect_timeout=10, application_name="imagefind"
            )
        except psycopg.Error as exc:
            raise LibraryError(f"{where}: cannot connect ({reason(exc)})") from exc
        try:
            pgschema.migrate(conn, where)
            pgschema.register_halfvec(conn, where)
        except psycopg.Error as exc:
            conn.close()
            raise LibraryError(f"{where}: cannot set up the database ({reason(exc)})") from exc
        except BaseException:
            conn.close()
            raise
        store = cls(conn, spec)
        store._seen_generation = store.generation()
        return store

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _guard(self) -> Iterator[psycopg.Connection]:
        """Serialise access and turn database errors into LibraryError naming the store."""
        with self._lock:
            if self._conn.closed:
                raise LibraryError(f"{self.path}: the store is closed")
            try:
                yield self._conn
            except psycopg.Error as exc:
                raise LibraryError(f"{self.path}: database error ({reason(exc)})") from exc

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection]:
        with self._guard() as conn, conn.transaction():
            yield conn

    def _bump(self, conn: psycopg.Connection) -> None:
        """Last statement of every write: the generation row is the one every writer
        locks, so it is held for as short a time as possible. Our own write, right after
        what we had seen, is no news to ``refresh``."""
        row = conn.execute(
            "UPDATE meta SET value = (value::bigint + 1)::text WHERE key = 'generation' "
            "RETURNING value::bigint"
        ).fetchone()
        if row and row[0] == self._seen_generation + 1:
            self._seen_generation = int(row[0])

    # --- model ----------------------------------------------------------------------------

    def model(self) -> ModelIdentity | None:
        with self._guard() as conn:
            meta = dict(conn.execute("SELECT key, value FROM meta WHERE key LIKE 'model_%'"))
        if "model_name" not in meta:
            return None
        return ModelIdentity(meta["model_name"], int(meta["model_dim"]), meta["model_fingerprint"])

    def bind_model(self, identity: ModelIdentity) -> None:
        if identity.dim <= 0:
            raise ValueError(f"model dimension must be positive, got {identity.dim}")
        with self._transaction() as conn:
            conn.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)",
                (pgschema.LOCK_NAMESPACE, pgschema.MIGRATION_LOCK),
            )
            pgschema.bind_dimension(conn, identity.dim)
            rows = [
                ("model_name", identity.name),
                ("model_dim", str(identity.dim)),
                ("model_fingerprint", identity.fingerprint),
            ]
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO meta (key, value) VALUES (%s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    rows,
                )
            self._bump(conn)

    def _halves(self, vectors: np.ndarray, count: int) -> list[Half]:
        """Validate a [count, dim] batch against the bound model (as the catalog does)."""
        return pgschema.checked_halves(vectors, count, self.model(), self.path)

    # --- writing --------------------------------------------------------------------------

    def add(self, items: Sequence[NewImage], vectors: np.ndarray) -> list[int]:
        """One transaction per batch; an item whose path (or upload key) is known updates
        that row in place, keeping its id and first ``added_at``."""
        for item in items:
            if item.path is None and item.upload_key is None:
                raise ValueError(f"image {item.sha256[:12]} has neither a path nor an upload key")
        halves = self._halves(vectors, len(items))
        if not items:
            return []
        now = time.time()
        with self._transaction() as conn, conn.cursor() as cur:
            ids = [self._upsert(cur, item, now) for item in items]
            cur.executemany(
                "INSERT INTO vectors (image_id, embedding) VALUES (%s, %s) "
                "ON CONFLICT (image_id) DO UPDATE SET embedding = EXCLUDED.embedding",
                list(zip(ids, halves, strict=True)),
            )
            self._bump(conn)
        return ids

    @staticmethod
    def _upsert(cur: psycopg.Cursor, item: NewImage, now: float) -> int:
        fields = astuple(item)[2:9]  # sha256 .. taken_at, in column order
        key = "path" if item.path is not None else "upload_key"
        row = cur.execute(
            "INSERT INTO images (path, upload_key, sha256, size, mtime, width, height, format, "  # type: ignore[arg-type]
            "taken_at, added_at, name) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            f"ON CONFLICT ({key}) DO UPDATE SET sha256 = EXCLUDED.sha256, size = EXCLUDED.size, "
            "mtime = EXCLUDED.mtime, width = EXCLUDED.width, height = EXCLUDED.height, "
            "format = EXCLUDED.format, taken_at = EXCLUDED.taken_at, "
            "name = COALESCE(EXCLUDED.name, images.name) RETURNING id",
            (item.path, item.upload_key, *fields, now, item.name),
        ).fetchone()
        assert row is not None
        return int(row[0])

    def relink(self, image_id: int, path: str, size: int, mtime: float | None) -> None:
        with self._transaction() as conn:
            other = conn.execute("SELECT id FROM images WHERE path = %s", (path,)).fetchone()
            if other is not None and other[0] != image_id:
                raise LibraryError(f"{path}: already catalogued as image {other[0]}")
            cursor = conn.execute(
                "UPDATE images SET path = %s, size = %s, mtime = %s WHERE id = %s",
                (path, size, mtime, int(image_id)),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"no image with id {image_id}")
            self._bump(conn)

    def remove(self, ids: Sequence[int]) -> list[ImageRecord]:
        wanted = [int(i) for i in ids]
        with self._transaction() as conn:
            rows = conn.execute(
                f"DELETE FROM images WHERE id = ANY(%s) RETURNING {RECORD_COLUMNS}",  # type: ignore[arg-type]
                (wanted,),
            ).fetchall()
            if rows:
                self._bump(conn)
        return sorted((ImageRecord(*row) for row in rows), key=lambda r: r.id)

    def replace_vectors(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        halves = self._halves(vectors, len(ids))
        if not len(ids):
            return
        wanted = [int(i) for i in ids]
        with self._transaction() as conn:
            found = {
                r[0] for r in conn.execute("SELECT id FROM images WHERE id = ANY(%s)", (wanted,))
            }
            missing = [i for i in wanted if i not in found]
            if missing:
                raise NotFoundError(f"no image with id {missing[0]}")
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO vectors (image_id, embedding) VALUES (%s, %s) "
                    "ON CONFLICT (image_id) DO UPDATE SET embedding = EXCLUDED.embedding",
                    list(zip(wanted, halves, strict=True)),
                )
            self._bump(conn)

    def restore(self, records: Sequence[ImageRecord], vectors: np.ndarray) -> None:
        """Insert rows with their own ids and times (``store copy``), one transaction."""
        halves = self._halves(vectors, len(records))
        with self._transaction() as conn:
            pgbulk.restore(conn, records, np.stack([h.values for h in halves]))
            self._bump(conn)

    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Build the HNSW index once after a large load rather than row by row."""
        with self._guard() as conn, pgbulk.without_index(conn):
            yield

    # --- claims: several indexing workers on one database ---------------------------------

    def claim(self, files: Sequence[FoundFile]) -> set[str]:
        """Claim files for encoding; return the paths this process got. A file is not
        handed out while another live worker holds it, nor once its current version is
        catalogued (see ``pgclaims``)."""
        if not files:
            return set()
        with self._guard() as conn:
            if self._owner is None:
                self._owner = pgclaims.take_owner(conn)
            return pgclaims.claim(conn, self._owner, files)

    def release_claims(self) -> None:
        """Let go of every claim this process holds (the end of an index run)."""
        with self._guard() as conn:
            if self._owner is not None:
                pgclaims.release(conn, self._owner)
                self._owner = None

    # --- reading --------------------------------------------------------------------------

    def get_many(self, ids: Sequence[int]) -> dict[int, ImageRecord]:
        rows = self._select("WHERE id = ANY(%s)", ([int(i) for i in ids],))
        return {row.id: row for row in rows}

    def paths_under(self, root: str) -> dict[str, ImageRecord]:
        import os

        base = root.rstrip(os.sep) or os.sep
        prefix = base if base.endswith(os.sep) else base + os.sep
        upper = prefix[:-1] + chr(ord(os.sep) + 1)  # the column is COLLATE "C": bytewise
        rows = self._select("WHERE path = %s OR (path >= %s AND path < %s)", (base, prefix, upper))
        return {row.path: row for row in rows if row.path is not None}

    def page(self, offset: int, limit: int) -> list[ImageRecord]:
        return self._select(
            "ORDER BY added_at DESC, id DESC LIMIT %s OFFSET %s", (int(limit), int(offset))
        )

    def count(self) -> int:
        with self._guard() as conn:
            row = conn.execute("SELECT count(*) FROM images").fetchone()
        return int(row[0]) if row else 0

    def vectors(self, ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(int64 ids, float32 [N, D] vectors), ordered by id; unknown ids are left out."""
        where, params = (
            ("", ()) if ids is None else ("WHERE image_id = ANY(%s)", ([int(i) for i in ids],))
        )
        with self._guard() as conn, conn.cursor(binary=True) as cur:
            rows = cur.execute(
                f"SELECT image_id, embedding FROM vectors {where} ORDER BY image_id",  # type: ignore[arg-type]
                params,
            ).fetchall()
        if not rows:
            model = self.model()
            return np.empty(0, np.int64), np.empty((0, model.dim if model else 0), np.float32)
        id_array = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        return id_array, np.stack([row[1] for row in rows]).astype(np.float32)

    def generation(self) -> int:
        with self._guard() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    def size_on_disk(self) -> int:
        """Bytes of this library's tables and their indexes, on the server."""
        with self._guard() as conn:
            row = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' "
                "AND c.relname IN ('images', 'vectors', 'meta', 'claims')"
            ).fetchone()
        return int(row[0]) if row else 0

    # --- searching ------------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by cosine, in the database: exact for small libraries, HNSW above
        ``EXACT_BELOW`` rows (ef_search at least ``EF_SEARCH``, iterative scans so a large
        k still fills up)."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        k = max(1, int(k))
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        with self._transaction() as conn:
            if self._approximate(conn):
                conn.execute(f"SET LOCAL hnsw.ef_search = {min(1000, max(EF_SEARCH, k)):d}")  # type: ignore[arg-type]
                conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                conn.execute("SET LOCAL enable_seqscan = off")  # the index, whatever the cost
            else:
                conn.execute("SET LOCAL enable_indexscan = off")
                conn.execute("SET LOCAL enable_bitmapscan = off")
            with conn.cursor(binary=True) as cur:
                for q, query in enumerate(queries):
                    rows = cur.execute(
                        "SELECT image_id, embedding <=> %s AS d FROM vectors ORDER BY d LIMIT %s",
                        (Half(query), k),
                    ).fetchall()
                    rows.sort(key=lambda r: r[1])  # relaxed order: sort the few we got
                    for j, (image_id, distance) in enumerate(rows):
                        ids[q, j] = image_id
                        scores[q, j] = 1.0 - distance
        width = int((ids >= 0).sum(axis=1).max()) if len(ids) else 0
        return scores[:, :width], ids[:, :width]

    def _approximate(self, conn: psycopg.Connection) -> bool:
        """Whether the library is large enough for the HNSW index (from the statistics the
        server keeps, a moment behind, rather than a count(*) on every query)."""
        row = conn.execute(
            "SELECT greatest(c.reltuples, s.n_live_tup, 0) FROM pg_class c "
            "LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = 'vectors'::regclass"
        ).fetchone()
        return bool(row and row[0] >= EXACT_BELOW)

    def refresh(self) -> bool:
        """Search reads the database, so there is nothing to reload: only report whether
        another process wrote since the last call (or since opening)."""
        generation = self.generation()
        changed = generation != self._seen_generation
        self._seen_generation = generation
        return changed
