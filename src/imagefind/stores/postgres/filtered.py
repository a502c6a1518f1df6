"""Filtered top-k on PostgreSQL, exact: equal to brute force over the rows that pass.

- Few pass (or the library is small): an exact scan of the passing rows, in SQL.
- Many pass: an exact search over the process's mirror of the vectors (``mirror``),
  over-fetched until k candidates pass (``overfetch``), as the embedded store does.
- Many pass in a library past the mirror's ``LIMIT``: the HNSW index with the filter in
  the same query and pgvector's iterative scan (``strict_order``) reading on until k rows
  pass; as exact as the index is. Should it stop short (``hnsw.max_scan_tuples``), the
  exact scan answers instead: a filtered search never returns fewer hits than pass, up to k.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from imagefind.errors import ModelMismatchError
from imagefind.filters import Filters
from imagefind.stores.overfetch import overfetched
from imagefind.stores.postgres.schema import Half

if TYPE_CHECKING:
    from imagefind.stores.postgres.store import PostgresStore

EXACT_FILTERED = 5_000
"""Up to this many passing rows, scan them exactly in SQL (milliseconds); more, the mirror."""

EXACT_SCAN = 20_000
"""Without a mirror (a library past its ``LIMIT``), scan up to this many passing rows
exactly in SQL (~70 ms at the most); more, the HNSW index."""


def filtered_search(
    store: PostgresStore, queries: np.ndarray, k: int, filters: Filters, ef_search: int
) -> tuple[np.ndarray, np.ndarray]:
    """(scores [Q, k'], ids [Q, k']) among the rows passing ``filters``, best first."""
    where, params = store.filter_sql(filters)
    exact_sql = (
        "SELECT i.id, v.embedding <=> %s AS d FROM images i JOIN vectors v ON v.image_id = i.id "
        f"WHERE {where} ORDER BY (v.embedding <=> %s) + 0 LIMIT %s"  # + 0: never the index
    )
    index_sql = (
        "SELECT v.image_id, v.embedding <=> %s AS d FROM vectors v WHERE EXISTS "
        f"(SELECT 1 FROM images WHERE images.id = v.image_id AND {where}) ORDER BY d LIMIT %s"
    )
    if store.passing_count(filters, EXACT_FILTERED) > EXACT_FILTERED:
        mirror = store.mirrored()
        if mirror is not None:
            if mirror.dim != queries.shape[1]:
                raise ModelMismatchError(
                    f"{store.path}: the library's vectors are {mirror.dim}-d, the query "
                    f"{queries.shape[1]}-d (re-embedded by another process? open it again)"
                )
            return overfetched(mirror, store, queries, k, filters, EXACT_FILTERED)
    selective = store.passing_count(filters, EXACT_SCAN) <= EXACT_SCAN
    found: list[list[tuple[int, float]]] = []
    with store._transaction() as conn:
        approximate = not selective and store._approximate(conn)
        if approximate:
            conn.execute(f"SET LOCAL hnsw.ef_search = {min(1000, max(ef_search, k)):d}")
            conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
            # The index, whatever the cost: with ef_search counted in, the planner would
            # rather sort every passing row (exact, and slow at scale).
            conn.execute("SET LOCAL enable_seqscan = off")
            conn.execute("SET LOCAL enable_sort = off")
        with conn.cursor(binary=True) as cur:
            for query in queries:
                half = Half(query)
                rows: list[tuple[int, float]] = []
                if approximate:
                    rows = cur.execute(index_sql, (half, *params, k)).fetchall()
                if len(rows) < k:  # few pass, or the iterative scan gave up: exact
                    rows = cur.execute(exact_sql, (half, *params, half, k)).fetchall()
                found.append(rows)
    width = max((len(rows) for rows in found), default=0)
    scores = np.full((len(queries), width), -np.inf, dtype=np.float32)
    ids = np.full((len(queries), width), -1, dtype=np.int64)
    for q, rows in enumerate(found):
        for j, (image_id, distance) in enumerate(rows):
            ids[q, j], scores[q, j] = image_id, 1.0 - distance
    return scores, ids
