"""Bulk writes for the PostgreSQL store: the id sequence after rows restored with their own
ids (``store copy``), and the HNSW index built once after a large load instead of row by
row."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from imagefind.stores.postgres.schema import create_hnsw


def after_restore(conn: psycopg.Connection) -> None:
    """Rows came in with their own ids: move the id sequence past them so new rows never
    collide (in the caller's transaction)."""
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
        create_hnsw(conn)
        conn.execute("RESET maintenance_work_mem")
        conn.execute("RESET max_parallel_maintenance_workers")
        conn.execute("ANALYZE images")
        conn.execute("ANALYZE vectors")  # the planner's row count picks exact or HNSW search
