"""Turning queries into vectors and vectors into ranked hits."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from imagefind.batching import Batcher
from imagefind.errors import QueryError
from imagefind.models import ClipModel
from imagefind.query import QueryPart, combine, parse_query
from imagefind.schemas import Hit, ImageOut
from imagefind.stores.base import Store

TEXT_CACHE_SIZE = 512
MAX_K = 10_000
"""The most results one search returns: the library, the CLI's -k and the API's k alike."""
SHARED_K = 100  # lookups up to this k share index calls with concurrent ones


def _no_paths(part: str) -> bool:
    """No part is an image file: for queries that may not name files."""
    return False


class Searcher:
    """Query vectors (text cached, images by path, id or bytes) and top-k lookups. The model
    is passed as a getter: it loads lazily and may be swapped by the library."""

    def __init__(self, store: Store, model: Callable[[], ClipModel]) -> None:
        self.store = store
        self._model = model
        self._lock = threading.Lock()
        self._text_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        # Queries from concurrent requests share one encoder pass and one index scan.
        self._encode = Batcher(self._encode_groups)
        self._lookup = Batcher(self._search_rows)

    def text_vector(self, text: str) -> np.ndarray:
        """A text's embedding, from an LRU cache: users repeat and refine queries."""
        return self.text_vectors([text])[0]

    def text_vectors(self, texts: list[str]) -> list[np.ndarray]:
        """Embeddings of several texts; those not cached are encoded in one batch."""
        with self._lock:
            found = {t: self._text_cache[t] for t in texts if t in self._text_cache}
            for t in found:
                self._text_cache.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            vectors = self._encode(tuple(missing))
            with self._lock:
                for t, v in zip(missing, vectors, strict=True):
                    self._text_cache[t] = found[t] = v
                while len(self._text_cache) > TEXT_CACHE_SIZE:
                    self._text_cache.popitem(last=False)
        return [found[t] for t in texts]

    def _encode_groups(self, groups: Sequence[tuple[str, ...]]) -> list[np.ndarray]:
        """Each caller's texts, encoded together with everyone else's in one pass."""
        texts = list(dict.fromkeys(t for group in groups for t in group))
        rows = dict(zip(texts, self._model().encode_texts(texts), strict=True))
        return [np.stack([rows[t] for t in group]) for group in groups]

    def _search_rows(
        self, queries: Sequence[tuple[np.ndarray, int]]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Several callers' top-k in one index call (the largest k, cut per caller)."""
        matrix = np.stack([vector for vector, _ in queries]).astype(np.float32, copy=False)
        scores, ids = self.store.search(matrix, max(k for _, k in queries))
        return [(scores[i, :k], ids[i, :k]) for i, (_, k) in enumerate(queries)]

    def clear_cache(self) -> None:
        with self._lock:
            self._text_cache.clear()

    def part_vector(self, part: QueryPart, exclude: set[int]) -> np.ndarray:
        """One part's vector; indexed images used in the query go into ``exclude``."""
        if part.kind == "text":
            return self.text_vector(str(part.value))
        if part.kind == "id":
            image_id = int(part.value)
            self.store.get(image_id)  # NotFoundError with a clear message
            exclude.add(image_id)
            return self._stored(image_id)
        path = os.path.abspath(Path(str(part.value)).expanduser())
        rec = self.store.by_path(path)
        if rec is not None:
            exclude.add(rec.id)
            return self._stored(rec.id)
        encoded: np.ndarray = self._model().encode_images([Path(path)])[0]
        return encoded

    def _stored(self, image_id: int) -> np.ndarray:
        """An indexed image's vector, as stored."""
        vector: np.ndarray = self.store.vectors([image_id])[1][0]
        return vector

    def query_vector(self, query: str, *, paths: bool = True) -> tuple[np.ndarray, set[int]]:
        """The vector of a (possibly composite) query and the ids it mentions. ``paths=False``
        reads path-looking parts as text: a query from a web client must not make this
        process read files."""
        exclude: set[int] = set()
        parts = parse_query(query) if paths else parse_query(query, is_image_path=_no_paths)
        self.text_vectors([str(p.value) for p in parts if p.kind == "text"])  # one batch
        vectors = np.stack([self.part_vector(p, exclude) for p in parts])
        return combine(vectors, [p.weight for p in parts]), exclude

    def search(
        self, query: str, k: int = 10, threshold: float | None = None, *, paths: bool = True
    ) -> list[Hit]:
        vector, exclude = self.query_vector(query, paths=paths)
        return self.search_vector(vector, k, threshold, exclude)

    def similar(
        self, image: int | str | Path | bytes, k: int = 10, threshold: float | None = None
    ) -> list[Hit]:
        exclude: set[int] = set()
        if isinstance(image, bytes):
            vector = self._model().encode_images([image])[0]
        elif isinstance(image, int):
            vector = self.part_vector(QueryPart(1.0, "id", image), exclude)
        else:
            vector = self.part_vector(QueryPart(1.0, "image", str(image)), exclude)
        return self.search_vector(vector, k, threshold, exclude)

    def search_vector(
        self,
        vector: np.ndarray,
        k: int = 10,
        threshold: float | None = None,
        exclude: set[int] | None = None,
    ) -> list[Hit]:
        if not 1 <= k <= MAX_K:
            raise QueryError(f"k={k}: must be between 1 and {MAX_K}")
        exclude = exclude or set()
        query = (np.asarray(vector, dtype=np.float32), k + len(exclude))
        # A large k runs alone: in a shared call every caller would pay for the largest k.
        scores, ids = self._lookup(query) if query[1] <= SHARED_K else self._search_rows([query])[0]
        # float16 storage can put a self-match a hair above 1: keep scores cosines.
        scores = np.clip(scores, -1.0, 1.0)
        pairs = [
            (int(i), float(s))
            for i, s in zip(ids, scores, strict=True)
            if int(i) not in exclude and (threshold is None or s >= threshold)
        ][:k]
        records = self.store.get_many([i for i, _ in pairs])
        return [
            Hit(id=i, score=round(s, 6), image=ImageOut.of(records[i]))
            for i, s in pairs
            if i in records
        ]
