"""Bulk writes for the PostgreSQL store: rows restored with their own ids (``store copy``),
and the HNSW index built once after a large load instead of row by row."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple, fields

import numpy as np
import psycopg

from imagefind.records import ImageRecord
from imagefind.stores.postgres.schema import HNSW_EF_CONSTRUCTION, HNSW_M, Half

_FIELDS = [f.name for f in fields(ImageRecord)]  # the images columns, by the same names


def restore(conn: psycopg.Connection, records: Sequence[ImageRecord], vectors: np.ndarray) -> None:
    """Insert rows as they are (id, added_at and all) with their vectors (in the caller's
    transaction), and move the id sequence past them so new rows never collide."""
    columns = ", ".join(_FIELDS)
    marks = ", ".join(["%s"] * len(_FIELDS))
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO images ({columns}) VALUES ({marks})",  # type: ignore[arg-type]
            [astuple(r) for r in records],
        )
        cur.executemany(
            "INSERT INTO vectors (image_id, embedding) VALUES (%s, %s)",
            [(r.id, Half(v)) for r, v in zip(records, vectors.astype(np.float16), strict=True)],
        )
    conn.execute(
        "SELECT setval(pg_get_serial_sequence('images', 'id'), "
        "greatest((SELECT max(id) FROM images), 1))"
    )


@contextmanager
def without_index(conn: psycopg.Connection) -> Iterator[None]:
    """Drop the HNSW index for a bulk load and build it once afterwards (in parallel, with
    room to build in memory): many times faster than inserting into the graph row by row."""
    conn.execute("DROP INDEX IF EXISTS vectors_hnsw")
    try:
        yield
    finally:
        conn.execute("SET maintenance_work_mem = '2GB'")
        conn.execute("SET max_parallel_maintenance_workers = 4")
        conn.execute(
            "CREATE INDEX IF NOT EXISTS vectors_hnsw ON vectors "  # type: ignore[arg-type]
            f"USING hnsw (embedding halfvec_cosine_ops) "
            f"WITH (m = {HNSW_M:d}, ef_construction = {HNSW_EF_CONSTRUCTION:d})"
        )
        conn.execute("RESET maintenance_work_mem")
        conn.execute("RESET max_parallel_maintenance_workers")
        conn.execute("ANALYZE images")
        conn.execute("ANALYZE vectors")  # the planner's row count picks exact or HNSW search
