"""Proof with the real model (PP-OCRv4, the default engine): a test set of 202 images made
here (tests/textkit.py) is read once per session; the text it reads is stored in each store
and searched. Word recall per condition and search success are asserted, and written to
test-output/ocr_quality.json (the full table, with timings, is ``benchmarks/ocr.py``)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from imagefind import Library
from imagefind.ocr.engine import OcrResult, load_engine
from imagefind.ocr.stage import read_image_file, stored
from imagefind.ocr.textquery import compact
from tests.textkit import Sample, make_set, save

pytest.importorskip("rapidocr_onnxruntime", reason="the OCR tests need the 'ocr' extra")

Read = dict[str, tuple[Sample, OcrResult]]


@pytest.fixture(scope="session")
def text_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Read]:
    """The test set on disk and what OCR read in each image (once: ~40 s on two cores)."""
    folder = tmp_path_factory.mktemp("textset")
    samples = save(make_set(), folder)
    engine = load_engine("rapidocr")
    return folder, {path: (s, read_image_file(Path(path), engine)) for path, s in samples.items()}


def word_recall(read: Read) -> dict[str, dict[str, float]]:
    """Share of the drawn words found in the read text (compact form), per condition."""
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for sample, result in read.values():
        got = compact(result.text)
        for word in sample.words:
            hit = int(compact(word) in got)
            for key, value in [("all", "all"), *sample.condition.items()]:
                found[f"{key}={value}"][0] += hit
                found[f"{key}={value}"][1] += 1
    return {k: {"recall": round(h / n, 4), "words": n} for k, (h, n) in sorted(found.items())}


def test_word_recall_per_condition(text_set: tuple[Path, Read], output_dir: Path) -> None:
    _, read = text_set
    recall = word_recall(read)
    false_text = [Path(p).name for p, (s, r) in read.items() if not s.phrases and compact(r.text)]
    (output_dir / "ocr_quality.json").write_text(
        json.dumps({"recall": recall, "text_in_photos_without_text": false_text}, indent=1)
    )
    assert recall["all=all"]["recall"] >= 0.95, recall
    for condition, row in recall.items():
        assert row["recall"] >= 0.85, (condition, recall)
    assert len(false_text) <= 5, false_text  # stray finds in 100 photos without text


@pytest.fixture
def text_library(
    text_set: tuple[Path, Read], tmp_path: Path, tiny_model_dir: Path, store: str | None
) -> tuple[Library, Read]:
    """The set indexed by CLIP in this store, with the text OCR read stored beside it."""
    folder, read = text_set
    lib = Library.open(tmp_path / "lib", model=str(tiny_model_dir), store=store)
    summary = lib.index([folder])
    assert summary.added == len(read) >= 200
    ids = {rec.path: rec.id for rec in lib.store.paths_under(str(folder)).values()}
    lib.store.put_texts([stored(ids[p], result) for p, (_, result) in read.items()])
    yield lib, read
    lib.close()


def _success(lib: Library, read: Read, mode: str, within: int) -> tuple[float, list[str]]:
    tried, missed = 0, []
    for path, (sample, _) in read.items():
        for phrase in sample.phrases:
            tried += 1
            hits = lib.search(phrase, k=within, mode=mode)
            if path not in [h.image.path for h in hits]:
                missed.append(phrase)
    return 1 - len(missed) / tried, missed


def test_text_mode_ranks_the_image_with_the_phrase_first(
    text_library: tuple[Library, Read],
) -> None:
    lib, read = text_library
    assert lib.search_mode() == "hybrid"  # the library holds text: hybrid by default
    rate, missed = _success(lib, read, "text", 1)
    assert rate >= 0.95, missed


def test_hybrid_mode_ranks_it_in_the_top_3(text_library: tuple[Library, Read]) -> None:
    lib, read = text_library
    rate, missed = _success(lib, read, "hybrid", 3)
    assert rate >= 0.95, missed


def test_hits_carry_the_text_and_the_marked_match(text_library: tuple[Library, Read]) -> None:
    lib, _ = text_library
    hit = lib.search('"wifi password"', k=1, mode="text")[0]
    assert hit.text_match is not None and "⟦WiFi-Password⟧" in hit.text_match
    hit = lib.search("home-1003", k=1, mode="text")[0]
    assert hit.image.name == "screen-003.png"
    assert hit.text is not None and "Network" in hit.text and "Settings" in hit.text
    assert hit.text_match is not None and "⟦Home-1003⟧" in hit.text_match.replace(" ", "")
    similar = lib.similar(hit.id, k=3)  # similar is CLIP alone, as before
    assert hit.id not in {h.id for h in similar}
