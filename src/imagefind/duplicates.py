"""Duplicate groups: exact (same bytes) and near (cosine over a threshold), as connected
components, so a chain of near-identical edits lands in one group."""

from __future__ import annotations

import numpy as np

from imagefind.filters import Filters
from imagefind.schemas import DuplicateGroup, ImageOut
from imagefind.stores.base import Store

# Re-encodes, resizes and light edits of one photo score above this with CLIP ViT-B/32;
# different shots of the same scene mostly fall below it.
NEAR_THRESHOLD = 0.95
NEIGHBOURS = 16


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def find_duplicates(
    store: Store, threshold: float | None = None, filters: Filters | None = None
) -> list[DuplicateGroup]:
    """Groups among the images passing ``filters`` (all without)."""
    threshold = NEAR_THRESHOLD if threshold is None else threshold
    ids, vectors = store.vectors(store.passing_ids(filters).tolist() if filters else None)
    uf = _UnionFind()
    weakest: dict[tuple[int, int], float] = {}
    kept = set(ids.tolist())
    if len(ids) > 1:
        # Neighbours from the whole library, those outside the filter dropped: a near
        # duplicate is among an image's closest whatever the filter (and an exact filtered
        # search for every image would scan the index once per image).
        scores, neighbours = store.search(vectors, min(NEIGHBOURS, len(ids)))
        for row, image_id in enumerate(ids.tolist()):
            for score, other in zip(scores[row], neighbours[row], strict=True):
                other = int(other)
                if other != image_id and other in kept and score >= threshold:
                    uf.union(image_id, other)
                    weakest[(image_id, other)] = float(score)
    by_sha: dict[str, list[int]] = {}
    for rec in store.shared_content():
        if filters is None or rec.id in kept:
            by_sha.setdefault(rec.sha256, []).append(rec.id)
    for members in by_sha.values():  # identical bytes are one group whatever the model says
        for other in members[1:]:
            uf.union(members[0], other)
    groups: dict[int, list[int]] = {}
    for image_id in list(uf.parent):
        groups.setdefault(uf.find(image_id), []).append(image_id)
    out = []
    for members in groups.values():
        if len(members) < 2:
            continue
        members.sort()
        recs = store.get_many(members)
        exact = len({recs[m].sha256 for m in members}) == 1
        links = [s for (a, b), s in weakest.items() if a in recs and b in recs]
        score = 1.0 if exact else float(np.min(links)) if links else threshold
        out.append(
            DuplicateGroup(
                kind="exact" if exact else "near",
                score=round(score, 6),
                images=[ImageOut.of(recs[m]) for m in members],
            )
        )
    out.sort(key=lambda g: (-len(g.images), -g.score))
    return out
