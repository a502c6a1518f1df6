"""The ``Store`` contract: a library's catalog (the source of truth) and vector search over
it, as one object. Two stores keep it: ``stores.embedded`` (SQLite + FAISS, one machine) and
``stores.postgres`` (PostgreSQL + pgvector, shared by servers and indexing workers); the
same parametrised test suites run on both.

What every store promises:

- **One transaction per write.** ``add`` commits a whole batch (rows and vectors) or none of
  it; ``relink``, ``remove``, ``bind_model`` and ``switch_model`` are each atomic. A crash
  leaves the store as it was before the write or after it.
- **A generation counter.** Every write, from any process, moves ``generation()`` on;
  anything derived from the store (a vector index, a cache, another process's view) compares
  it to know it is stale, and ``refresh`` reports whether another process wrote.
- **Stable ids.** An image keeps its id through updates, re-links and re-embeds; ids are never
  reused (they are in URLs and caches), and ``store copy`` keeps them.
- **float16 vectors.** Vectors are stored as float16 (SQLite blobs, pgvector ``halfvec``),
  checked first against the bound model (shape, finite values): ``records.checked_vectors``.
- **One model.** Every stored vector comes from the bound model (``model()``); a re-embed
  stages the next model's vectors aside and switches model and vectors in one transaction.
- **Search** returns ``(scores [Q, k'], ids [Q, k'])``: cosine similarity, best first, with
  ``k' <= k`` (fewer when the store holds fewer images); exact for small libraries, an
  approximate index tuned for recall above a size. A **filtered search** never returns
  fewer than k hits while k images pass: exact over the passing rows when few pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from imagefind.filters import Filters
from imagefind.records import ImageRecord, ModelIdentity, NewImage, RootRecord
from imagefind.scanner import FoundFile
from imagefind.schemas import Facets
from imagefind.stores.text import StoredText, TextCounts


class Store(Protocol):
    """What ``Library`` needs from a store (see the module docstring for the promises)."""

    def close(self) -> None: ...
    def model(self) -> ModelIdentity | None: ...

    def bind_model(self, identity: ModelIdentity) -> None:
        """Bind the first model (an empty store, or a copy's destination)."""
        ...

    def add(self, items: Sequence[NewImage], vectors: np.ndarray) -> list[int]:
        """Insert or update (same path or upload key: same id) a batch; their ids."""
        ...

    def relink(self, image_id: int, path: str, size: int, mtime: float | None) -> None: ...
    def remove(self, ids: Sequence[int]) -> list[ImageRecord]: ...

    def stale_metadata(self, version: int, after: int, limit: int) -> list[ImageRecord]:
        """Rows past id ``after`` whose metadata a reader older than ``version`` (or none)
        filled, by id."""
        ...

    def count_stale(self, version: int) -> int: ...

    def update_metadata(self, rows: Sequence[tuple[int, Mapping[str, object]]]) -> None:
        """Rewrite the metadata columns of existing rows (no vector changes), atomically."""
        ...

    def stage_vectors(
        self, identity: ModelIdentity, ids: Sequence[int], vectors: np.ndarray
    ) -> None:
        """Keep another model's vectors aside for a re-embed; readers see nothing yet."""
        ...

    def switch_model(self, identity: ModelIdentity, drop: Sequence[int]) -> list[ImageRecord]:
        """Remove ``drop``, swap in the staged vectors and bind ``identity``, atomically."""
        ...

    def discard_staged(self) -> None: ...
    def get(self, image_id: int) -> ImageRecord: ...
    def get_many(self, ids: Sequence[int]) -> dict[int, ImageRecord]: ...
    def by_path(self, path: str) -> ImageRecord | None: ...
    def by_sha256(self, sha256: str) -> list[ImageRecord]: ...
    def shared_content(self) -> list[ImageRecord]: ...
    def paths_under(self, root: str) -> dict[str, ImageRecord]: ...
    def page(self, offset: int, limit: int) -> list[ImageRecord]: ...
    def count(self) -> int: ...
    def ids(self) -> list[int]: ...
    def max_id(self) -> int: ...
    def vectors(self, ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]: ...
    def generation(self) -> int: ...
    def size_on_disk(self) -> int: ...

    def search(
        self, queries: np.ndarray, k: int, filters: Filters | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by cosine: (scores [Q, k'], ids [Q, k']), best first. With ``filters``,
        among the images that pass, exactly as brute force over them would rank them (ids
        of -1 pad a row that found fewer)."""
        ...

    # Filters (``stores.filtering``, written once for both SQL stores).
    def passing_count(self, filters: Filters | None, limit: int | None = None) -> int: ...
    def passing_ids(self, filters: Filters | None) -> np.ndarray: ...

    def filter_sql(self, filters: Filters | None) -> tuple[str, list[object]]:
        """``filters`` as one SQL condition on the images table, and its parameters."""
        ...

    def browse(
        self, offset: int, limit: int, filters: Filters | None = None, order: str = "added"
    ) -> list[ImageRecord]: ...
    def facets(self) -> Facets: ...

    def claim(self, files: Sequence[FoundFile]) -> set[str]:
        """Claim files for encoding; the paths this process got. Indexing workers sharing
        a store skip what another live worker claimed or what is catalogued already."""
        ...

    def release_claims(self) -> None:
        """Let go of this process's claims (the end of an index run)."""
        ...

    def refresh(self) -> bool:
        """Pick up writes from other processes; True when there were some."""
        ...

    # --- text found in images (OCR; see ``stores.text``) ----------------------------------

    def ocr_enabled(self) -> bool: ...
    def set_ocr_enabled(self, enabled: bool) -> None: ...

    def put_texts(self, rows: Sequence[StoredText]) -> None:
        """Store OCR outcomes (one transaction); rows of images removed meanwhile dropped."""
        ...

    def texts(self, ids: Sequence[int]) -> dict[int, StoredText]: ...
    def unread_ids(self, limit: int | None = None, *, errors: bool = False) -> list[int]: ...
    def text_counts(self) -> TextCounts: ...
    def has_text(self) -> bool: ...

    def search_text(
        self,
        terms: Sequence[tuple[str, int]],
        k: int,
        where: str | None = None,
        params: Sequence[object] = (),
        together: str | None = None,
    ) -> list[tuple[int, float]]:
        """Images whose text holds any term (compact form, weight), best first: (id, score
        in [0, 1]); ties to texts holding ``together``. ``where`` restricts to images
        passing an SQL condition (filters)."""
        ...

    # The folders the library follows (``stores.rootsql``): bookkeeping, no generation bump.
    def roots(self) -> list[RootRecord]: ...
    def put_roots(self, paths: Sequence[str], now: float, *, scanned: bool) -> None: ...
    def drop_roots(self, paths: Sequence[str]) -> None: ...
    def count_under(self, root: str) -> int: ...
