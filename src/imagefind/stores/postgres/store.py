"""The PostgreSQL store: rows in ordinary tables, vectors as pgvector ``halfvec`` with an HNSW
index (cosine), shared by any number of API replicas and indexing workers.

Everything the embedded store keeps in memory lives in the database here: search runs in
SQL, so a replica holds no index to rebuild, and the ``generation`` row tells it (and its
caches) when anyone wrote. Indexing workers claim files before encoding them (``claim``), so
two workers on overlapping folders never encode the same file twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Self

import numpy as np
import psycopg

from imagefind.errors import LibraryError, ModelMismatchError
from imagefind.filters import Filters
from imagefind.records import ImageRecord, ModelIdentity
from imagefind.scanner import FoundFile
from imagefind.stores.postgres import bulk as pgbulk
from imagefind.stores.postgres import claims as pgclaims
from imagefind.stores.postgres import filtered as pgfiltered
from imagefind.stores.postgres import mirror as pgmirror
from imagefind.stores.postgres import schema as pgschema
from imagefind.stores.postgres.schema import Half, label, reason
from imagefind.stores.sql import SqlStore
from imagefind.stores.vectorindex import VectorIndex

EXACT_BELOW = 20_000
"""Libraries up to this size are searched exactly (a sequential scan takes milliseconds);
larger ones through the HNSW index."""

EF_SEARCH = 200
"""HNSW candidate list: recall@10 0.98 at 100K clustered 512-d vectors, p50 3.4 ms; 100 gives
0.96 at 2.2 ms (benchmarks/scaling.py, docs/scaling.md)."""


class PostgresStore(SqlStore):
    """A library's rows and vectors in one PostgreSQL database (the ``Store`` face).

    One connection, serialised by a lock, like the SQLite catalog; autocommit, with an
    explicit transaction around every write."""

    PLACEHOLDER = "%s"
    VECTOR_COLUMN = "embedding"
    STAGED = "pg_temp.staged_vectors"
    VECTOR_TYPE = "halfvec"
    ID_TYPE = "bigint"

    def __init__(self, conn: psycopg.Connection, spec: str) -> None:
        super().__init__(conn, label(spec))
        self.spec = spec
        self._seen_generation = -1
        self._owner: int | None = None  # this process's claim owner id, once it claims
        self._mirror = pgmirror.VectorMirror(spec, self.path)  # read by a broad filter

    # --- opening and closing --------------------------------------------------------------

    @classmethod
    def open(cls, spec: str) -> Self:
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

    # --- plumbing -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connections (later calls raise LibraryError)."""
        self._mirror.close()
        super().close()

    def _driver_error(self, exc: Exception) -> str | None:
        if isinstance(exc, psycopg.Error) and self._conn.closed:
            return "the store is closed"
        return f"database error ({reason(exc)})" if isinstance(exc, psycopg.Error) else None

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

    # --- dialect --------------------------------------------------------------------------

    def _id_list(self, ids: Sequence[int]) -> tuple[str, object]:
        return "= ANY(%s)", [int(i) for i in ids]

    def _vector_params(
        self, vectors: np.ndarray, count: int, model: ModelIdentity | None
    ) -> list[Any]:
        return pgschema.checked_halves(vectors, count, model, self.path)

    # --- model ----------------------------------------------------------------------------

    def bind_model(self, identity: ModelIdentity) -> None:
        """Record which model the vectors come from (the first index, or a copy's). Two
        processes may each find the library unbound and bind it: the second may only
        bind the same model (another would throw away the first one's vectors)."""
        with self._transaction() as conn:
            pgschema.lock_schema(conn)
            bound = self.model()
            if bound is not None and (bound.dim, bound.fingerprint) != (
                identity.dim,
                identity.fingerprint,
            ):
                raise ModelMismatchError(
                    f"{self.path}: another process bound this library to model "
                    f"{bound.name!r} ({bound.dim}-d) meanwhile; {identity.name!r} is a "
                    "different model"
                )
            pgschema.bind_dimension(conn, identity.dim)
            self._write_model(conn, identity)
            self._bump(conn)

    def _move_staged(self, conn: psycopg.Connection, identity: ModelIdentity) -> None:
        """The column takes the new dimension and the HNSW index is built once, over the
        staged vectors, all inside the switching transaction."""
        pgschema.lock_schema(conn)
        pgschema.refill_vectors(conn, identity.dim, self.STAGED)

    def restore(self, records: Sequence[ImageRecord], vectors: np.ndarray) -> None:
        """Insert rows with their own ids and times (``store copy``), one transaction."""
        params = self._vector_params(vectors, len(records), self.model())
        with self._transaction() as conn:
            self._insert_records(conn, records)
            self._write_vectors(conn, "vectors", [r.id for r in records], params)
            pgbulk.after_restore(conn)
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

    def vectors(self, ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(int64 ids, float32 [N, D] vectors), ordered by id; unknown ids are left out."""
        with self._guard() as conn, conn.cursor(binary=True) as cur:
            rows = cur.execute(*self._vectors_query(ids)).fetchall()
        if not rows:
            model = self.model()
            return np.empty(0, np.int64), np.empty((0, model.dim if model else 0), np.float32)
        id_array = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        return id_array, np.stack([row[1] for row in rows]).astype(np.float32)

    def size_on_disk(self) -> int:
        """Bytes of this library's tables and their indexes, on the server."""
        with self._guard() as conn:
            row = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' "
                "AND c.relname IN ('images', 'vectors', 'meta', 'claims', 'image_text')"
            ).fetchone()
        return int(row[0]) if row else 0

    # --- searching ------------------------------------------------------------------------

    def search(
        self, queries: np.ndarray, k: int, filters: Filters | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by cosine, in the database: exact for small libraries, HNSW above
        ``EXACT_BELOW`` rows (ef_search at least ``EF_SEARCH``, iterative scans so a large
        k still fills up); with ``filters``, among the passing rows (``pgfiltered``)."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        k = max(1, int(k))
        if filters:
            return pgfiltered.filtered_search(self, queries, k, filters, EF_SEARCH)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        with self._transaction() as conn:
            if self._approximate(conn):
                conn.execute(f"SET LOCAL hnsw.ef_search = {min(1000, max(EF_SEARCH, k)):d}")
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

    def mirrored(self) -> VectorIndex | None:
        """This process's exact copy of the vectors, up to date (``pgmirror``); None for
        a library too large to hold, or with no model yet."""
        return self._mirror.synced(self.generation())

    def _approximate(self, conn: psycopg.Connection) -> bool:
        """Whether the library is large enough for the HNSW index (estimated: no count(*)
        on every query)."""
        return pgschema.row_estimate(conn) >= EXACT_BELOW

    def refresh(self) -> bool:
        """Search reads the database, so there is nothing to reload: only report whether
        another process wrote since the last call (or since opening)."""
        generation = self.generation()
        changed = generation != self._seen_generation
        self._seen_generation = generation
        return changed
