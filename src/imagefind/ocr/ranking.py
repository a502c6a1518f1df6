"""Search modes over text found in images: ``clip`` (the CLIP ranking alone), ``text`` (the
text ranking alone) and ``hybrid``, their reciprocal rank fusion (RRF).

RRF (Cormack et al., 2009): an image's fused score is ``Σ 1 / (RRF_K + rank)`` over the
rankings it appears in (rank 1 is the best). It needs no score calibration between a cosine
and a text match, and ``RRF_K = 60`` (the paper's constant) keeps one ranking's top result
from drowning the other: an image first in one ranking and absent from the other scores
1/61; one tenth in both scores 2/70. Each ranking contributes its top ``FUSION_DEPTH``.
The text ranking fused holds the images that contain every word and phrase of the query
when there are some, else those that contain any: one common word ("2023") shared with
the query is weak evidence, and would otherwise lift every image that CLIP also likes
above the one image that holds the whole phrase.

The default mode is ``hybrid`` when the library holds recognised text, else ``clip``. Every
hit carries the image's recognised text (shortened) and, where the query's words are in it,
a snippet with the match marked (:func:`imagefind.ocr.textquery.snippet`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal, get_args

from imagefind.errors import QueryError
from imagefind.filters import Filters, by_date, parse_sort
from imagefind.ocr.textquery import Term, parse_terms, shorten, snippet
from imagefind.query import MAX_QUERY_LENGTH
from imagefind.schemas import Hit, ImageOut
from imagefind.search import MAX_K, Searcher
from imagefind.stores.base import Store

Mode = Literal["hybrid", "clip", "text"]
MODES: tuple[str, ...] = get_args(Mode)
RRF_K = 60
"""Reciprocal rank fusion constant (see the module docstring)."""
FUSION_DEPTH = 100
"""Hits each ranking contributes to the fusion (at least k)."""


def resolve_mode(store: Store, mode: str | None) -> Mode:
    """The mode asked for, or the default for this library; QueryError for an unknown one."""
    if mode is None:
        return "hybrid" if store.has_text() else "clip"
    if mode not in MODES:
        raise QueryError(f"mode {mode!r}: unknown; choose one of {', '.join(MODES)}")
    return mode  # type: ignore[return-value]


class TextSearch:
    """Text and hybrid search over one store, beside the CLIP ``Searcher``. Filters hold in
    every mode: the CLIP ranking is the filtered one, and the text ranking runs under the
    filters' SQL condition (``store.filter_sql``), so both rankings are of passing images
    before the fusion and the cut to k; ``sort`` then orders the k (by date taken)."""

    def __init__(self, store: Store, searcher: Searcher) -> None:
        self.store = store
        self.searcher = searcher

    def search(
        self,
        query: str,
        k: int,
        threshold: float | None,
        mode: Mode,
        *,
        paths: bool = True,
        lang: str | None = None,
        filters: Filters | None = None,
        sort: str = "score",
    ) -> list[Hit]:
        if not 1 <= k <= MAX_K:
            raise QueryError(f"k={k}: must be between 1 and {MAX_K}")
        if len(query) > MAX_QUERY_LENGTH:
            raise QueryError(f"query is {len(query)} characters; the limit is {MAX_QUERY_LENGTH}")
        sort = parse_sort(sort)
        terms = parse_terms(query)
        where, params = self.store.filter_sql(filters) if filters else (None, [])
        if mode == "clip":
            hits = self.searcher.search(
                query, k, threshold, paths=paths, lang=lang, filters=filters
            )
        elif mode == "text":
            hits = self._text_hits(terms, k, where, params)
        else:
            depth = min(MAX_K, max(k, FUSION_DEPTH))
            clip = self.searcher.search(
                query, depth, threshold, paths=paths, lang=lang, filters=filters
            )
            text = self._text_hits(terms, depth, where, params)
            if text and text[0].score >= 1.0:  # some images hold every word: only those
                text = [hit for hit in text if hit.score >= 1.0]
            hits = fuse([clip, text], k)
        if sort != "score":
            records = self.store.get_many([h.id for h in hits])
            hits = by_date(hits, lambda hit: records[hit.id].taken_local, sort)
        return self._with_text(hits, terms)

    def _text_hits(
        self,
        terms: list[Term],
        k: int,
        where: str | None,
        params: list[object],
    ) -> list[Hit]:
        wanted = [(t.compact, t.weight) for t in terms]
        together = "".join(t.compact for t in terms) if len(terms) > 1 else None
        ranked = self.store.search_text(wanted, k, where, params, together)
        records = self.store.get_many([i for i, _ in ranked])
        return [
            Hit(id=i, score=s, image=ImageOut.of(records[i])) for i, s in ranked if i in records
        ]

    def _with_text(self, hits: list[Hit], terms: list[Term]) -> list[Hit]:
        """Each hit with its recognised text and the snippet around the match."""
        found = self.store.texts([h.id for h in hits])
        out = []
        for hit in hits:
            row = found.get(hit.id)
            if row is None or not row.text:
                out.append(hit)
                continue
            out.append(replace(hit, text=shorten(row.text), text_match=snippet(row.text, terms)))
        return out


def fuse(rankings: list[list[Hit]], k: int) -> list[Hit]:
    """Reciprocal rank fusion of rankings (best first each); ties go to the image ranked
    best in the later rankings (text before CLIP in hybrid search), then the smaller id."""
    scores: dict[int, float] = {}
    first: dict[int, Hit] = {}
    best: dict[int, tuple[int, ...]] = {}
    for which, ranking in enumerate(rankings):
        for rank, hit in enumerate(ranking, start=1):
            scores[hit.id] = scores.get(hit.id, 0.0) + 1.0 / (RRF_K + rank)
            first.setdefault(hit.id, hit)
            ranks = best.setdefault(hit.id, tuple([MAX_K + 1] * len(rankings)))
            best[hit.id] = (*ranks[:which], rank, *ranks[which + 1 :])
    order = sorted(scores, key=lambda i: (-scores[i], best[i][::-1], i))
    return [replace(first[i], score=round(scores[i], 6)) for i in order[:k]]
