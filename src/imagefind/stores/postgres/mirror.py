"""An in-process copy of the vectors table, kept current, for exact broad filtered search.

pgvector cannot answer "the exact top 10 among 50,000 passing rows" quickly: its HNSW
index is approximate, and an exact scan of the passing rows costs ~170 ms at 100K. The
embedded store answers it by an exact search over all its vectors, over-fetched until k
candidates pass; this mirror gives a PostgreSQL process the same vectors to do the same
(``overfetch``), in 100 MB of float16 per 100K 512-d vectors, read once over a connection
of its own (the store's stays free for other queries meanwhile).

Keeping it current, without missing a write another process commits: every row carries
the id of the transaction that last wrote it (``written_by``, set by default and by a
trigger on update). A refresh reads the rows written by any transaction its previous
snapshot did not see (at or past that snapshot's xmax, or in progress then): whatever
committed since is among them, in whatever order transactions committed, and a long
transaction elsewhere in the cluster does not make it read more. A refresh happens only
when the generation counter moved, and reads everything again when the bound model did.

Deleted rows leave no trace, and need none to keep results right: every image has a vector
(written in one transaction with it, removed with it by the foreign key), so a vector held
for a deleted image is a candidate SQL says does not pass. For the memory, the ids still
there are read and the rest dropped at most every ``RECONCILE_S`` (30 ms at 100K; on every
write it would double the cost of catching up).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import psycopg
from psycopg import sql

from imagefind.errors import LibraryError
from imagefind.stores.postgres.schema import reason, row_estimate
from imagefind.stores.vectorindex import VectorIndex, flat_fp16

LIMIT = 1_000_000
"""Mirror libraries up to this many vectors (1 GB of float16 at 512-d); a broad filter
costs ~7 ms per 100K vectors mirrored. Larger ones keep to SQL."""

RECONCILE_S = 600.0
"""Drop the vectors of deleted images, after a write, at most this often (seconds)."""

CHUNK = 32_768
"""Rows decoded and added at a time: the load never holds the whole table twice."""

_HEADER = 19  # COPY BINARY: 11-byte signature, int32 flags, int32 header extension length
_ID_ROW = [("fields", ">i2"), ("id_length", ">i4"), ("id", ">i8")]


class VectorMirror:
    """The vectors of one PostgreSQL library, in memory, as of the last ``synced`` call."""

    def __init__(self, spec: str, where: str) -> None:
        self._spec, self._where = spec, where
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()  # one refresh at a time; searches use the index's lock
        self._index: VectorIndex | None = None
        self._generation = -1  # of what was read (the index, or finding none to hold)
        self._model = ""  # the bound model's dimension and fingerprint, the table's file
        self._snapshot = ""  # the snapshot of the last read (pg_snapshot text)
        self._reconciled = 0.0  # time.monotonic() when only live vectors were held

    def synced(self, generation: int) -> VectorIndex | None:
        """The mirror, brought up to date unless ``generation`` is the one it has read;
        None when there is nothing to mirror (no model yet) or the library is past
        ``LIMIT`` vectors (and then nothing is held, and nothing read until a write)."""
        with self._lock:
            if self._generation != generation:
                try:
                    self._read()
                except psycopg.Error as exc:
                    self.close()
                    raise LibraryError(f"{self._where}: database error ({reason(exc)})") from exc
            return self._index

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _read(self) -> None:
        if self._conn is None or self._conn.closed:
            # A new connection, perhaps to a server restored to an earlier point: nothing
            # read before is trusted (transaction ids and generations may have gone back).
            self._index, self._model, self._snapshot = None, "", ""
            self._conn = psycopg.connect(
                self._spec, autocommit=True, connect_timeout=10, application_name="imagefind"
            )
        conn = self._conn
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            # Before the snapshot (which the first SELECT takes): a re-embed rewrites the
            # table (ALTER TYPE), and a snapshot from before its commit would read it empty.
            conn.execute("LOCK TABLE vectors IN ACCESS SHARE MODE")
            row = conn.execute(
                "SELECT (SELECT value::bigint FROM meta WHERE key = 'generation'), "
                "(SELECT string_agg(value, '/' ORDER BY key) FROM meta "
                " WHERE key IN ('model_dim', 'model_fingerprint')) "
                # a table rewritten (re-created, TRUNCATE, VACUUM FULL) is read in full
                "|| '/' || pg_relation_filenode('vectors'), "
                "pg_current_snapshot()::text"
            ).fetchone()
            assert row is not None  # a SELECT without FROM returns one row
            generation, model, snapshot = int(row[0]), row[1] or "", str(row[2])
            if not model or row_estimate(conn) > LIMIT or not self._refresh(conn, model):
                self._index = None
            self._generation, self._model, self._snapshot = generation, model, snapshot

    def _refresh(self, conn: psycopg.Connection, model: str) -> bool:
        """Read what changed, or everything (the first time, or another model's vectors);
        False when the library turns out to be past ``LIMIT``."""
        index = self._index
        if index is not None and model == self._model:
            unseen = sql.SQL(
                "SELECT image_id, embedding FROM vectors WHERE (written_by >= "
                "pg_snapshot_xmax({s}::pg_snapshot) OR written_by = ANY(ARRAY("
                "SELECT pg_snapshot_xip({s}::pg_snapshot)))) "
                # not from the future (values copied from another cluster): read in full
                "AND written_by < pg_snapshot_xmax(pg_current_snapshot())"
            ).format(s=sql.Literal(self._snapshot))
            for ids, vectors in _vector_chunks(conn, unseen):
                index.add(ids, vectors)
            due = time.monotonic() - self._reconciled >= RECONCILE_S
            if due or len(index) > LIMIT:
                self._drop_deleted(conn, index)
            return len(index) <= LIMIT
        self._index = None  # the old one's memory goes before the new one fills
        index = flat_fp16(int(model.split("/")[0]))
        everything = sql.SQL(f"SELECT image_id, embedding FROM vectors LIMIT {LIMIT + 1:d}")
        for ids, vectors in _vector_chunks(conn, everything):
            index.add(ids, vectors, replace=False)  # each id once: nothing to replace
            if len(index) > LIMIT:
                return False
        self._index, self._reconciled = index, time.monotonic()
        return True

    def _drop_deleted(self, conn: psycopg.Connection, index: VectorIndex) -> None:
        """Let go of the vectors of images deleted since (see the module's docstring)."""
        query = sql.SQL("SELECT image_id FROM vectors")
        live = []
        for chunk in _copy_rows(conn, query, lambda _: np.dtype(_ID_ROW)):
            _check(chunk, 1)
            live.append(chunk["id"])
        index.remove(np.setdiff1d(index.ids(), np.concatenate([np.empty(0, ">i8"), *live])))
        self._reconciled = time.monotonic()


def _vector_chunks(
    conn: psycopg.Connection, query: sql.Composable
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, float32 [n, D]) of a SELECT of (bigint, halfvec) rows, a chunk at a time."""

    def layout(first_row: bytes) -> np.dtype:
        # After the id: int32 length, then the halfvec: uint16 dim, uint16 unused, dim
        # big-endian float16 (the same for every row of a column of fixed dimension).
        dim = int.from_bytes(first_row[18:20], "big")
        tail = [("vector_length", ">i4"), ("dim", ">u2"), ("unused", ">u2"), ("v", ">f2", (dim,))]
        return np.dtype([*_ID_ROW, *tail])

    for rows in _copy_rows(conn, query, layout):
        dim = rows.dtype["v"].shape[0]
        _check(rows, 2, (rows["vector_length"] != 4 + 2 * dim) | (rows["dim"] != dim))
        yield rows["id"].astype(np.int64), rows["v"].astype(np.float32)


def _check(rows: np.ndarray, fields: int, wrong: np.ndarray | bool = False) -> None:
    """Rows as the layout says (a wrong one would decode into garbage, silently)."""
    if np.any((rows["fields"] != fields) | (rows["id_length"] != 8) | wrong):
        raise psycopg.DataError("COPY BINARY rows not in the expected layout")


def _copy_rows(
    conn: psycopg.Connection, query: sql.Composable, layout: Callable[[bytes], np.dtype]
) -> Iterator[np.ndarray]:
    """The rows of ``query`` through binary COPY, decoded by numpy ``CHUNK`` rows at a time
    (a Python object per row would cost 5x more): fixed-size rows, whose structured dtype
    ``layout`` gives from the first row's first 20 bytes."""
    buffer = bytearray()
    row: np.dtype | None = None
    started = False
    statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT BINARY)").format(query)
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for data in copy:
            buffer += data
            if not started and len(buffer) >= _HEADER:
                if int.from_bytes(buffer[15:19], "big"):
                    raise psycopg.DataError("COPY BINARY header extension not understood")
                del buffer[:_HEADER]
                started = True
            if started and row is None and len(buffer) >= 20:
                row = layout(bytes(buffer[:20]))
            if row is not None and len(buffer) >= CHUNK * row.itemsize:
                count = len(buffer) // row.itemsize
                rows = np.frombuffer(buffer, dtype=row, count=count).copy()  # one copy
                del buffer[: count * row.itemsize]
                yield rows
    if row is None and len(buffer) > 2:  # rows shorter than 20 bytes, and few
        row = layout(bytes(buffer[:20]))
    if row is not None and len(buffer) >= row.itemsize:  # the 2-byte trailer is left
        yield np.frombuffer(buffer, dtype=row, count=len(buffer) // row.itemsize).copy()
