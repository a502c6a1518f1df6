"""An in-process copy of the vectors table, kept current, for exact broad filtered search.

pgvector cannot answer "the exact top 10 among 50,000 passing rows" quickly: its HNSW
index is approximate, and an exact scan of the passing rows costs ~170 ms at 100K. The
embedded store answers it by an exact search over all its vectors, over-fetched until k
candidates pass; this mirror gives a PostgreSQL process the same vectors to do the same
(``overfetch``), in 100 MB of float16 per 100K 512-d vectors, read once.

Keeping it current, without missing a write another process commits: every row carries
the id of the transaction that last wrote it (``written_by``, set by default and by a
trigger on update). A refresh reads, in one snapshot, the rows written by any transaction
not finished before the previous refresh's snapshot (``pg_snapshot_xmin``): whatever
committed since is among them, whatever order transactions committed in. A refresh happens
only when the generation counter moved.

Deleted rows leave no trace, and need none to keep results right: every image has a vector
(written in one transaction with it, removed with it by the foreign key), so a vector held
for a deleted image is a candidate SQL says does not pass. For the memory, the ids still
there are read and the rest dropped at most every ``RECONCILE_S`` (30 ms at 100K; on every
write it would double the cost of catching up, and the server's live-row statistics lag by
seconds).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import numpy as np
import psycopg

from imagefind.stores.vectorindex import VectorIndex, flat_fp16

LIMIT = 1_000_000
"""Mirror libraries up to this many vectors (1 GB at 512-d); larger ones keep to SQL."""

RECONCILE_S = 600.0
"""Drop the vectors of deleted images, after a write, at most this often (seconds)."""

_SIGNATURE = 19  # COPY BINARY: 11-byte signature, 4 bytes of flags, 4 of header extension
_TRAILER = 2  # the int16 -1 after the last row

Connect = Callable[[], AbstractContextManager[psycopg.Connection]]


class VectorMirror:
    """The vectors of one PostgreSQL library, in memory, as of the last ``synced`` call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # one refresh at a time; searches use the index's lock
        self._index: VectorIndex | None = None
        self._generation = -1
        self._horizon = 0  # every transaction below this id had finished when last read
        self._reconciled = 0.0  # time.monotonic() when only live vectors were held

    def synced(self, connect: Connect, generation: int) -> VectorIndex | None:
        """The mirror, brought up to date unless ``generation`` is the one it has; None
        when the library is past ``LIMIT`` vectors (and then nothing is held)."""
        with self._lock:
            if self._index is not None and self._generation == generation:
                return self._index
            with connect() as conn, conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                row = conn.execute(
                    "SELECT (SELECT value::bigint FROM meta WHERE key = 'generation'), "
                    "pg_snapshot_xmin(pg_current_snapshot())::text::bigint, "
                    "(SELECT greatest(c.reltuples, s.n_live_tup, 0)::bigint FROM pg_class c "
                    " LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid "
                    " WHERE c.oid = 'vectors'::regclass)"
                ).fetchone()
                assert row is not None  # a SELECT without FROM returns one row
                seen, horizon, estimate = (int(v) for v in row)
                if estimate > LIMIT or not self._refresh(conn):
                    self._index, self._generation = None, -1
                    return None
                self._generation, self._horizon = seen, horizon
            return self._index

    def _refresh(self, conn: psycopg.Connection) -> bool:
        """Read what changed (everything, the first time or after a re-embed to another
        dimension); False when the library turns out to be past ``LIMIT``."""
        if self._index is not None:
            since = f"WHERE written_by >= '{self._horizon:d}'::xid8"
            ids, vectors = _copy_vectors(conn, f"SELECT image_id, embedding FROM vectors {since}")
            if not len(ids) or vectors.shape[1] == self._index.dim:
                self._index.add(ids, vectors)
                due = time.monotonic() - self._reconciled >= RECONCILE_S
                if due or len(self._index) > LIMIT:
                    self._drop_deleted(conn)
                return len(self._index) <= LIMIT
        ids, vectors = _copy_vectors(
            conn, f"SELECT image_id, embedding FROM vectors LIMIT {LIMIT + 1:d}"
        )
        if len(ids) > LIMIT:
            return False
        self._index = flat_fp16(vectors.shape[1] if len(ids) else 1)
        self._index.add(ids, vectors)
        self._reconciled = time.monotonic()
        return True

    def _drop_deleted(self, conn: psycopg.Connection) -> None:
        assert self._index is not None
        with conn.cursor(binary=True) as cur:
            rows = cur.execute("SELECT image_id FROM vectors").fetchall()
        live = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        self._index.remove(np.setdiff1d(self._index.ids(), live))
        self._reconciled = time.monotonic()


def _copy_vectors(conn: psycopg.Connection, query: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids, float32 [N, D]) of a SELECT of (bigint, halfvec) rows, read as binary COPY:
    fixed-size rows, decoded by numpy in one go (a Python object per row costs 5x more)."""
    with conn.cursor() as cur:
        data = bytearray()
        with cur.copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)") as copy:
            for chunk in copy:
                data += chunk
    body = memoryview(data)[_SIGNATURE : len(data) - _TRAILER]
    if not len(body):
        return np.empty(0, np.int64), np.empty((0, 0), np.float32)
    # Each row: int16 field count, int32 length, int64 id, int32 length, then the halfvec:
    # uint16 dim, uint16 unused, dim big-endian float16.
    dim = int.from_bytes(body[18:20], "big")
    fields = [("n", ">i2"), ("l1", ">i4"), ("id", ">i8"), ("l2", ">i4"), ("dim", ">u2")]
    row = np.dtype([*fields, ("unused", ">u2"), ("v", ">f2", (dim,))])
    rows = np.frombuffer(body, dtype=row)
    return rows["id"].astype(np.int64), rows["v"].astype(np.float32)
