"""Reciprocal rank fusion and the search mode choice."""

from __future__ import annotations

import pytest

from imagefind.errors import QueryError
from imagefind.ocr.ranking import RRF_K, fuse, resolve_mode
from imagefind.schemas import Hit, ImageOut


def _hit(i: int, score: float = 0.0) -> Hit:
    image = ImageOut(
        id=i,
        name=f"{i}.jpg",
        source=f"/x/{i}.jpg",
        path=f"/x/{i}.jpg",
        sha256="0" * 64,
        size=1,
        width=1,
        height=1,
        format="JPEG",
        added_at="2026-01-01T00:00:00+00:00",
    )
    return Hit(id=i, score=score, image=image)


def test_fusion_sums_reciprocal_ranks() -> None:
    clip = [_hit(1), _hit(2), _hit(3)]
    text = [_hit(3), _hit(4)]
    fused = fuse([clip, text], 10)
    scores = {h.id: h.score for h in fused}
    assert scores[3] == pytest.approx(1 / (RRF_K + 3) + 1 / (RRF_K + 1), abs=1e-6)
    assert scores[1] == pytest.approx(1 / (RRF_K + 1), abs=1e-6)
    assert fused[0].id == 3  # in both rankings: first


def test_a_tie_goes_to_the_text_ranking_then_the_smaller_id() -> None:
    fused = fuse([[_hit(7)], [_hit(9)]], 10)  # each first in one ranking: equal scores
    assert [h.id for h in fused] == [9, 7]


def test_fusion_cuts_at_k() -> None:
    assert len(fuse([[_hit(i) for i in range(20)], []], 5)) == 5


def test_unknown_mode_is_refused_with_the_choices() -> None:
    with pytest.raises(QueryError, match="hybrid, clip, text"):
        resolve_mode(None, "fuzzy")  # type: ignore[arg-type]
