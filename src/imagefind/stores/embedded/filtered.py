"""Filtered top-k on the embedded store, exact: equal to brute force over the images that
pass, whatever share of the library that is.

- A selective filter (at most ``SELECTIVE`` images pass) takes their ids from SQL and
  searches only those (a FAISS bitmap selector: the cost is the passing rows').
- A broad one over-fetches an exact top-k' from the whole index (every IVF list probed)
  and keeps the candidates SQL says pass (``overfetch``).
"""

from __future__ import annotations

import numpy as np

from imagefind.filters import Filters
from imagefind.stores.filtering import FilteredReads
from imagefind.stores.overfetch import overfetched
from imagefind.stores.vectorindex import VectorIndex

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
    return overfetched(index, store, queries, k, filters, SELECTIVE)
