"""Filtered top-k on the embedded store, exact: equal to brute force over the images that
pass, whatever share of the library that is.

- A selective filter (at most ``SELECTIVE`` images pass) takes their ids from SQL and
  searches only those (a FAISS bitmap selector: the cost is the passing rows').
- A broad one over-fetches an exact top-k' from the whole index (every IVF list probed)
  and keeps the candidates SQL says pass, widening k' until k of them do: at 50 % a
  handful of extra candidates suffice, and reading 50K passing ids from SQL (17 ms at
  100K) is never needed.
"""

from __future__ import annotations

import math

import numpy as np

from imagefind.filters import Filters
from imagefind.stores.embedded.vectorindex import VectorIndex
from imagefind.stores.filtering import FilteredReads

SELECTIVE = 5_000
"""Up to this many passing images, search exactly among their ids; more, over-fetch."""


def filtered_search(
    index: VectorIndex, store: FilteredReads, queries: np.ndarray, k: int, filters: Filters
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k among the images passing ``filters``: (scores [Q, k'], ids [Q, k']), best
    first; k' is k unless fewer pass."""
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    if store.passing_count(filters, SELECTIVE) <= SELECTIVE:
        return index.search(queries, k, among=store.passing_ids(filters))
    total = len(index)
    # More than SELECTIVE pass, so at least that share of the index: fetch enough for k
    # passing at twice the worst share, then widen.
    fetch = min(total, max(4 * k, math.ceil(2 * k * total / SELECTIVE)))
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
