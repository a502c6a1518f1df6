"""Filters hold in every search mode (clip, text, hybrid), on both stores; ``sort`` orders
the fused hits. The text is stored as OCR would store it (OCR itself: test_ocr_*)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagefind import Library
from imagefind.filters import Filters
from imagefind.ocr.textquery import compact
from imagefind.stores.text import StoredText
from tests.synth import natural_image


@pytest.fixture
def lib(tmp_path: Path, tiny_model_dir: Path, store: str | None) -> Library:
    library = Library.open(tmp_path / "lib", model=str(tiny_model_dir), store=store)
    for folder in ("receipts", "holiday"):
        (tmp_path / folder).mkdir()
        for i in range(3):
            natural_image(96, 72, seed=i + len(folder)).save(tmp_path / folder / f"{i}.png")
    library.index([tmp_path])
    library.store.put_texts(
        [
            StoredText(
                rec.id,
                f"Lidl Receipt {rec.id}",
                compact(f"lidl receipt {rec.id}"),
                0.9,
                "[]",
                "test",
            )
            for rec in library.store.page(0, 100)
        ]
    )
    yield library
    library.close()


@pytest.mark.parametrize("mode", ["clip", "text", "hybrid"])
def test_a_folder_filter_holds_in_every_mode(lib: Library, tmp_path: Path, mode: str) -> None:
    only = Filters.parse(folders=[tmp_path / "receipts"])
    hits = lib.search("lidl receipt", k=10, mode=mode, filters=only)
    assert len(hits) == 3
    assert {Path(h.image.path or "").parent.name for h in hits} == {"receipts"}
    unfiltered = lib.search("lidl receipt", k=10, mode=mode)
    assert len(unfiltered) == 6


def test_text_ranking_under_a_filter_is_the_ranking_of_the_passing_images(
    lib: Library, tmp_path: Path
) -> None:
    only = Filters.parse(folders=[tmp_path / "holiday"])
    everything = [h.id for h in lib.search("lidl receipt", k=10, mode="text")]
    passing = {h.id for h in lib.search("lidl receipt", k=10, mode="text", filters=only)}
    assert [i for i in everything if i in passing] == [
        h.id for h in lib.search("lidl receipt", k=10, mode="text", filters=only)
    ]
    assert lib.search("lidl", k=1, mode="text", filters=only)[0].id in passing
