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
from imagefind.filters import Filters, by_date, parse_sort
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
        self._text_cache: OrderedDict[tuple[str | None, str], np.ndarray] = OrderedDict()
        # Queries from concurrent requests share one encoder pass and one index scan.
        self._encode = Batcher(self._encode_groups)
        self._lookup = Batcher(self._search_rows)

    def text_vector(self, text: str, lang: str | None = None) -> np.ndarray:
        """A text's embedding, from an LRU cache: users repeat and refine queries."""
        return self.text_vectors([text], lang)[0]

    def text_vectors(self, texts: list[str], lang: str | None = None) -> list[np.ndarray]:
        """Embeddings of several texts in one language (``lang``: BCP-47, used by models
        that take one); those not cached are encoded in one batch."""
        # Keyed by what the model makes of lang: a CLIP model shares one entry for all.
        code = self._model().language_key(lang)
        keys = [(code, t) for t in texts]
        with self._lock:
            found = {k: self._text_cache[k] for k in keys if k in self._text_cache}
            for k in found:
                self._text_cache.move_to_end(k)
        missing = list(dict.fromkeys(t for k, t in zip(keys, texts, strict=True) if k not in found))
        if missing:
            vectors = self._encode((lang if code else None, tuple(missing)))
            with self._lock:
                for t, v in zip(missing, vectors, strict=True):
                    self._text_cache[(code, t)] = found[(code, t)] = v
                while len(self._text_cache) > TEXT_CACHE_SIZE:
                    self._text_cache.popitem(last=False)
        return [found[k] for k in keys]

    def _encode_groups(
        self, groups: Sequence[tuple[str | None, tuple[str, ...]]]
    ) -> list[np.ndarray]:
        """Each caller's texts, encoded together with everyone else's of the same language
        in one pass."""
        model = self._model()
        rows: dict[tuple[str | None, str], np.ndarray] = {}
        for lang in dict.fromkeys(lang for lang, _ in groups):
            texts = list(dict.fromkeys(t for g_lang, g in groups if g_lang == lang for t in g))
            vectors = model.encode_texts(texts, lang=lang)
            rows.update(((lang, t), v) for t, v in zip(texts, vectors, strict=True))
        return [np.stack([rows[(lang, t)] for t in group]) for lang, group in groups]

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

    def part_vector(
        self, part: QueryPart, exclude: set[int], lang: str | None = None
    ) -> np.ndarray:
        """One part's vector; indexed images used in the query go into ``exclude``."""
        if part.kind == "text":
            return self.text_vector(str(part.value), lang)
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

    def query_vector(
        self, query: str, *, paths: bool = True, lang: str | None = None
    ) -> tuple[np.ndarray, set[int]]:
        """The vector of a (possibly composite) query and the ids it mentions. ``paths=False``
        reads path-looking parts as text: a query from a web client must not make this
        process read files. ``lang`` is the text parts' language (BCP-47)."""
        exclude: set[int] = set()
        parts = parse_query(query) if paths else parse_query(query, is_image_path=_no_paths)
        self.text_vectors([str(p.value) for p in parts if p.kind == "text"], lang)  # one batch
        vectors = np.stack([self.part_vector(p, exclude, lang) for p in parts])
        return combine(vectors, [p.weight for p in parts]), exclude

    def search(
        self,
        query: str,
        k: int = 10,
        threshold: float | None = None,
        *,
        paths: bool = True,
        lang: str | None = None,
        filters: Filters | None = None,
        sort: str = "score",
    ) -> list[Hit]:
        vector, exclude = self.query_vector(query, paths=paths, lang=lang)
        return self.search_vector(vector, k, threshold, exclude, filters=filters, sort=sort)

    def similar(
        self,
        image: int | str | Path | bytes,
        k: int = 10,
        threshold: float | None = None,
        *,
        filters: Filters | None = None,
        sort: str = "score",
    ) -> list[Hit]:
        exclude: set[int] = set()
        if isinstance(image, bytes):
            vector = self._model().encode_images([image])[0]
        elif isinstance(image, int):
            vector = self.part_vector(QueryPart(1.0, "id", image), exclude)
        else:
            vector = self.part_vector(QueryPart(1.0, "image", str(image)), exclude)
        return self.search_vector(vector, k, threshold, exclude, filters=filters, sort=sort)

    def search_vector(
        self,
        vector: np.ndarray,
        k: int = 10,
        threshold: float | None = None,
        exclude: set[int] | None = None,
        *,
        filters: Filters | None = None,
        sort: str = "score",
    ) -> list[Hit]:
        """The top k (among images passing ``filters``), best first; ``sort`` ``date`` or
        ``-date`` then orders those k by the date taken (undated last)."""
        if not 1 <= k <= MAX_K:
            raise QueryError(f"k={k}: must be between 1 and {MAX_K}")
        sort = parse_sort(sort)
        exclude = exclude or set()
        query = (np.asarray(vector, dtype=np.float32), k + len(exclude))
        if filters:  # its own lookup: a shared call holds one filter
            found = self.store.search(query[0].reshape(1, -1), query[1], filters)
            scores, ids = found[0][0], found[1][0]
        elif query[1] <= SHARED_K:
            scores, ids = self._lookup(query)
        else:  # a large k runs alone: in a shared call every caller would pay for it
            scores, ids = self._search_rows([query])[0]
        # float16 storage can put a self-match a hair above 1: keep scores cosines.
        scores = np.clip(scores, -1.0, 1.0)
        pairs = [
            (int(i), float(s))
            for i, s in zip(ids, scores, strict=True)
            if int(i) not in exclude and (threshold is None or s >= threshold)
        ][:k]
        records = self.store.get_many([i for i, _ in pairs])
        hits = [
            Hit(id=i, score=round(s, 6), image=ImageOut.of(records[i]))
            for i, s in pairs
            if i in records
        ]
        return by_date(hits, lambda hit: records[hit.id].taken_local, sort)
