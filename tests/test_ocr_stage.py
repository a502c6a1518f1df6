"""OCR in the indexing pipeline, on both stores, with the real engine: beside encoding,
remembered per library, uploads too, and bad input (rotated, 1x1, huge, all text, the
engine failing on one image) never stops the batch or loses the CLIP row."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import numpy as np
import piexif
import pytest
from PIL import Image, ImageDraw, ImageFont

from imagefind import Library
from imagefind.ocr import engine as engine_module
from imagefind.ocr.engine import EnginePool, OcrResult
from imagefind.ocr.stage import OcrStage
from tests.synth import natural_image
from tests.textkit import DEJAVU, render

pytest.importorskip("rapidocr_onnxruntime", reason="the OCR tests need the 'ocr' extra")

FONT = DEJAVU / "DejaVuSans-Bold.ttf"


@pytest.fixture
def lib(tmp_path: Path, tiny_model_dir: Path, store: str | None) -> Library:
    library = Library.open(tmp_path / "lib", model=str(tiny_model_dir), store=store)
    yield library
    library.close()


def _phrase(folder: Path, name: str, text: str, **kw: object) -> Path:
    path = folder / name
    render(text, FONT, 36, "plain", 0.0, seed=1).save(path, **kw)  # type: ignore[arg-type]
    return path


def _texts(lib: Library) -> dict[str, str]:
    """Recognised text by file name, in compact form (OCR may split a line in two)."""
    recs = {r.id: Path(r.path or "").name for r in lib.store.page(0, 1000)}
    return {recs[i]: t.norm for i, t in lib.store.texts(list(recs)).items()}


def test_ocr_is_opt_in_and_remembered(lib: Library, tmp_path: Path) -> None:
    folder = tmp_path / "pics"
    folder.mkdir()
    _phrase(folder, "a.png", "Open Air 2023")
    assert lib.index([folder]).ocr is None and lib.store.unread_ids()  # off by default
    assert lib.search_mode() == "clip"
    _phrase(folder, "b.png", "Lidl Receipt")
    summary = lib.index([folder], ocr=True)  # on: new images and those left unread
    assert summary.ocr is not None and summary.ocr.read == 2 and summary.ocr.with_text == 2
    assert "openair2023" in _texts(lib)["a.png"] and lib.search_mode() == "hybrid"
    _phrase(folder, "c.png", "Summer Sale")
    assert lib.index([folder]).ocr is not None  # remembered
    assert "summersale" in _texts(lib)["c.png"]
    added = lib.add(_png_bytes("Bakery Kiosk"), name="upload.png")  # uploads too
    assert "bakerykiosk" in lib.store.texts([added.id])[added.id].norm
    _phrase(folder, "d.png", "Museum Ticket")
    assert lib.index([folder], ocr=False).ocr is None  # --no-ocr
    assert not lib.store.ocr_enabled() and len(lib.store.unread_ids()) == 1
    backlog = lib.store.unread_ids()
    lib.store.set_ocr_enabled(True)
    second = lib.add(_png_bytes("Coffee Bar"), name="second.png")
    assert "coffeebar" in lib.store.texts([second.id])[second.id].norm
    assert lib.store.unread_ids() == backlog  # an upload reads its own image, not the backlog
    filled = lib.read_text()  # imagefind ocr: the images indexed before
    assert filled.read == 1 and "museumticket" in _texts(lib)["d.png"]
    assert lib.store.ocr_enabled()


def _png_bytes(text: str) -> bytes:
    out = io.BytesIO()
    render(text, FONT, 36, "gradient", 3.0, seed=2).save(out, "PNG")
    return out.getvalue()


def test_bad_input_is_indexed_and_the_batch_goes_on(
    lib: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    # Rotated by EXIF: the pixels lie on their side, the orientation tag stands them up.
    upright = render("Parking Zone B12", FONT, 36, "plain", 0.0, seed=3)
    exif = piexif.dump({"0th": {piexif.ImageIFD.Orientation: 6}})
    upright.rotate(90, expand=True).save(folder / "exif-rotated.jpg", quality=95, exif=exif)
    Image.new("RGB", (1, 1), (200, 10, 10)).save(folder / "tiny.png")
    huge = natural_image(640, 480, seed=5).resize((7000, 5000))
    huge.paste(render("Level -2 Garage", FONT, 220, "plain", 0.0, seed=4), (500, 2000))
    huge.save(folder / "huge.jpg", quality=80)
    page = Image.new("RGB", (900, 700), "white")
    draw, face = ImageDraw.Draw(page), ImageFont.truetype(str(FONT), 20)
    for row in range(14):
        draw.text(
            (20, 10 + row * 48),
            f"Line {row} of the terms and conditions 2026",
            font=face,
            fill="black",
        )
    page.save(folder / "all-text.png")
    _phrase(folder, "engine-fails.png", "Exit Only")
    _phrase(folder, "fine.png", "Flight Track 7")
    real_read = engine_module.RapidOcrEngine.read

    def flaky(self: engine_module.RapidOcrEngine, image: Image.Image) -> OcrResult:
        if image.size == Image.open(folder / "engine-fails.png").size:
            raise RuntimeError("the engine crashed")
        return real_read(self, image)

    monkeypatch.setattr(engine_module.RapidOcrEngine, "read", flaky)
    summary = lib.index([folder], ocr=True)
    assert summary.added == 6 and not summary.skipped  # every image indexed by CLIP
    assert summary.ocr is not None and summary.ocr.read == 6 and summary.ocr.errors == 1
    texts = _texts(lib)
    assert "parkingzoneb12" in texts["exif-rotated.jpg"]
    assert texts["tiny.png"] == ""
    assert "level2garage" in texts["huge.jpg"]
    assert texts["all-text.png"].count("termsandconditions") >= 12
    assert "flighttrack7" in texts["fine.png"]
    failed = lib.store.texts([lib.store.by_path(str(folder / "engine-fails.png")).id])
    assert [t.error for t in failed.values()] == ["RuntimeError: the engine crashed"]
    assert lib.store.unread_ids(errors=True) == list(failed)
    hit = lib.search("garage", k=1, mode="text")[0]
    assert hit.image.name == "huge.jpg"
    boxes = json.loads(lib.store.texts([hit.id])[hit.id].boxes)
    assert max(x for line in boxes for x, _ in line["box"]) > 1600  # the original's pixels


class _SlowEngine:
    """Stands in for an engine that takes its time: offers must not wait for it."""

    name = "slow"

    def __init__(self) -> None:
        self.gate = threading.Event()

    def read(self, image: Image.Image) -> OcrResult:
        self.gate.wait(30)
        return OcrResult(engine=self.name)


def test_offer_never_waits_and_finish_reads_what_was_left(lib: Library, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(6):
        natural_image(64, 48, seed=i).save(folder / f"{i}.png")
    lib.index([folder])
    ids = lib.store.ids()
    slow = _SlowEngine()
    pool = EnginePool()  # the real one, its engine swapped for the slow stand-in
    pool.get = lambda: slow  # type: ignore[method-assign]
    stage = OcrStage(lib.store, lib.original_path, pool, workers=1, queue=2)
    started = time.perf_counter()
    stage.offer(ids)  # two queued, four left for later: returns at once
    assert time.perf_counter() - started < 5 and stage.summary.deferred == 4
    slow.gate.set()
    summary = stage.finish()
    assert summary.read == 6 and lib.store.unread_ids() == []
    assert np.all([t.engine == "slow" for t in lib.store.texts(ids).values()])


def test_without_the_engine_ocr_is_refused_before_anything_changes(
    lib: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from imagefind.ocr.engine import OcrError

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "rapidocr_onnxruntime" else real(name, *a),
    )
    folder = tmp_path / "pics"
    folder.mkdir()
    _phrase(folder, "a.png", "Open Air")
    with pytest.raises(OcrError, match=r"needs the 'ocr' extra: pip install 'imagefind\[ocr\]'"):
        lib.index([folder], ocr=True)
    assert not lib.store.ocr_enabled() and lib.count() == 0
    assert lib.index([folder]).added == 1  # OCR stays off; CLIP indexing works


def test_the_read_after_encoding_reports_its_progress(lib: Library, tmp_path: Path) -> None:
    """Images indexed before OCR was on are read at the end of the next run: long on a big
    library, so it reports (done, total) from (0, total) to (total, total)."""
    folder = tmp_path / "pics"
    folder.mkdir()
    for i, phrase in enumerate(["Open Air", "Receipt", "Bakery"]):
        _phrase(folder, f"{i}.png", phrase)
    lib.index([folder])  # OCR off: three unread images
    calls: list[tuple[int, int]] = []
    summary = lib.index([folder], ocr=True, text_progress=lambda d, t: calls.append((d, t)))
    assert summary.ocr is not None and summary.ocr.read == 3
    assert calls[0] == (0, 3) and calls[-1] == (3, 3)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
