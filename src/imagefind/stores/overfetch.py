"""Exact filtered top-k for a broad filter, on either store: an exact top-k' over every
vector (the embedded store's index, every IVF list probed; PostgreSQL's in-process mirror),
keeping the candidates SQL says pass and widening k' until k of them do.

At 50 % a handful of extra candidates suffice, and the ids of every passing row (50K at
100K, 17 ms to read from SQLite and more from PostgreSQL) are never read.
"""

from __future__ import annotations

import math

import numpy as np

from imagefind.filters import Filters
from imagefind.stores.filtering import FilteredReads
from imagefind.stores.vectorindex import VectorIndex


def overfetched(
    index: VectorIndex,
    store: FilteredReads,
    queries: np.ndarray,
    k: int,
    filters: Filters,
    at_least: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k among the images passing ``filters`` (more than ``at_least`` of them pass):
    (scores [Q, k'], ids [Q, k']), best first; k' is k unless fewer pass."""
    total = len(index)
    # At least ``at_least`` pass, so at least that share of the index: fetch enough for k
    # passing at twice the worst share, then widen.
    fetch = min(total, max(4 * k, math.ceil(2 * k * total / max(1, at_least))))
    found: dict[int, list[tuple[float, int]]] = {}
    pending = list(range(len(queries)))
    while pending:
        scores, ids = index.search(queries[pending], fetch, exhaustive=True)
        passing = store.passing_among(filters, np.unique(ids[ids >= 0]).tolist())
        still = []
        for row, q in enumerate(pending):
            kept = [
                (float(s), int(i))
                for s, i in zip(scores[row], ids[row], strict=True)
                if int(i) in passing
            ]
            if len(kept) >= k or fetch >= total:
                found[q] = kept[:k]
            else:
                still.append(q)
        pending, fetch = still, min(total, fetch * 4)
    width = max((len(v) for v in found.values()), default=0)
    out_scores = np.full((len(queries), width), -np.inf, dtype=np.float32)
    out_ids = np.full((len(queries), width), -1, dtype=np.int64)
    for q, kept in found.items():
        for j, (score, image_id) in enumerate(kept):
            out_scores[q, j], out_ids[q, j] = score, image_id
    return out_scores, out_ids
