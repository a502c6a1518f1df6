"""OCR engines: an image in, the text it shows (with confidence and boxes) out.

Two engines, chosen by measurement (``benchmarks/ocr.py``, README "Text in images"):

- ``rapidocr`` (the default): PP-OCRv4 detection, direction and recognition ONNX models that
  ship inside the ``rapidocr-onnxruntime`` wheel (Chinese and English), run on imagefind's
  own onnxruntime. An image in which the detector finds no text costs the detector alone.
- ``tesseract``: Debian's Tesseract 5 with its English data, through ``pytesseract``; faster
  on clean text but blind to small, rotated or Chinese text (see the benchmark).

Nothing is downloaded: both engines' weights are installed with them (the ``ocr`` extra, and
``apt-get install tesseract-ocr tesseract-ocr-eng`` for the second).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image

from imagefind.errors import ImagefindError

OCR_MAX_SIDE = 1600
"""Images are scaled down to this longest side before OCR: the detector works at ~736 px,
and a 50 MP photo decoded whole would cost memory and time for nothing."""
OCR_MIN_SIDE = 8
"""Below this (a 1x1 pixel, an icon strip) there is no text to read: no engine is run."""
DETECTOR_MIN_SIDE = 480
"""PP-OCR's detector scales an image up until its short side is this (the wheel's default
is 736): measured on the test set, 3-4x faster with the same word recall, and none of the
false one-character "text" that 736 finds in photos (benchmarks/ocr.py)."""
LONE_CHARACTER_CONFIDENCE = 0.9
"""A line of a single character below this confidence is dropped: in photos without text
the detector's stray finds read as "口", "O" or "7" at 0.5-0.8 (benchmarks/ocr.py)."""
ENGINES = ("rapidocr", "tesseract")
DEFAULT_ENGINE = "rapidocr"


class OcrError(ImagefindError):
    """OCR could not run (the engine is not installed) or failed on one image."""


@dataclass(frozen=True)
class Line:
    """One detected line of text: its corners (x, y in the original image), text, confidence."""

    box: list[list[int]]
    text: str
    confidence: float


@dataclass(frozen=True)
class OcrResult:
    """What an engine read in one image; no lines means no text."""

    lines: list[Line] = field(default_factory=list)
    engine: str = DEFAULT_ENGINE

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    @property
    def confidence(self) -> float | None:
        """Mean line confidence weighted by length, None without text."""
        total = sum(len(line.text) for line in self.lines)
        if not total:
            return None
        return sum(line.confidence * len(line.text) for line in self.lines) / total


class OcrEngine(Protocol):
    name: str

    def read(self, image: Image.Image) -> OcrResult:
        """The text in an RGB image (already scaled by :func:`for_ocr`)."""
        ...


def for_ocr(image: Image.Image) -> Image.Image:
    """RGB, scaled down to ``OCR_MAX_SIDE``."""
    image = image.convert("RGB")
    side = max(image.size)
    if side <= OCR_MAX_SIDE:
        return image
    scale = OCR_MAX_SIDE / side
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


class RapidOcrEngine:
    """PP-OCRv4 through rapidocr-onnxruntime. One instance per worker thread: the ONNX
    sessions are thread-safe but the wrapper keeps per-call state."""

    name = "rapidocr"

    def __init__(self, threads: int = 1) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:  # the optional extra is not installed
            raise OcrError(
                "OCR needs the 'ocr' extra: pip install 'imagefind[ocr]' "
                f"(rapidocr-onnxruntime is missing: {exc})"
            ) from exc
        self._ocr = RapidOCR(
            intra_op_num_threads=max(1, threads),
            inter_op_num_threads=1,
            det_limit_side_len=DETECTOR_MIN_SIDE,
        )

    def read(self, image: Image.Image) -> OcrResult:
        if min(image.size) < OCR_MIN_SIDE:
            return OcrResult(engine=self.name)
        found: Any
        found, _ = self._ocr(image)
        lines = [
            Line(
                box=[[round(float(x)), round(float(y))] for x, y in box],
                text=str(text),
                confidence=round(float(score), 4),
            )
            for box, text, score in (found or [])
            if _kept(str(text), float(score))
        ]
        return OcrResult(lines=lines, engine=self.name)


def _kept(text: str, confidence: float) -> bool:
    """Whether a recognised line is text rather than a stray find (see above)."""
    letters = [c for c in text if c.isalnum()]
    return bool(letters) and (len(letters) > 1 or confidence >= LONE_CHARACTER_CONFIDENCE)


class TesseractEngine:
    """Tesseract 5 (Debian package) through pytesseract, English, one line per text line."""

    name = "tesseract"

    def __init__(self, threads: int = 1) -> None:
        try:
            import pytesseract

            pytesseract.get_tesseract_version()
        except Exception as exc:
            raise OcrError(
                "the tesseract engine needs pytesseract and Debian's tesseract-ocr and "
                f"tesseract-ocr-eng packages ({type(exc).__name__}: {exc})"
            ) from exc
        self._tess = pytesseract

    def read(self, image: Image.Image) -> OcrResult:
        if min(image.size) < OCR_MIN_SIDE:
            return OcrResult(engine=self.name)
        data = self._tess.image_to_data(image, lang="eng", output_type=self._tess.Output.DICT)
        grouped: dict[tuple[int, int, int], list[int]] = {}
        for i, word in enumerate(data["text"]):
            if _kept(str(word), float(data["conf"][i]) / 100):
                key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
                grouped.setdefault(key, []).append(i)
        lines = []
        for idx in grouped.values():
            x0 = min(data["left"][i] for i in idx)
            y0 = min(data["top"][i] for i in idx)
            x1 = max(data["left"][i] + data["width"][i] for i in idx)
            y1 = max(data["top"][i] + data["height"][i] for i in idx)
            confidence = sum(float(data["conf"][i]) for i in idx) / len(idx) / 100
            text = " ".join(str(data["text"][i]) for i in idx)
            lines.append(Line([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], text, round(confidence, 4)))
        return OcrResult(lines=lines, engine=self.name)


_FACTORIES: dict[str, Callable[[int], OcrEngine]] = {
    "rapidocr": RapidOcrEngine,
    "tesseract": TesseractEngine,
}


def load_engine(name: str = DEFAULT_ENGINE, threads: int = 1) -> OcrEngine:
    """An engine by name; OcrError naming the choices for an unknown one."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise OcrError(f"OCR engine {name!r}: unknown; choose one of {', '.join(ENGINES)}")
    return factory(threads)


def check_installed(name: str) -> None:
    """OcrError (before any image is read) when the engine cannot run here: the run fails
    with the fix instead of recording the same error on every image."""
    import importlib.util
    import shutil

    if name not in _FACTORIES:
        raise OcrError(f"OCR engine {name!r}: unknown; choose one of {', '.join(ENGINES)}")
    if name == "rapidocr" and importlib.util.find_spec("rapidocr_onnxruntime") is None:
        raise OcrError(
            "reading text in images needs the 'ocr' extra: pip install 'imagefind[ocr]' "
            "(rapidocr-onnxruntime, with its PP-OCRv4 models; no download at run time)"
        )
    if name == "tesseract" and (
        importlib.util.find_spec("pytesseract") is None or shutil.which("tesseract") is None
    ):
        raise OcrError(
            "the tesseract engine needs pytesseract (the 'ocr' extra) and Debian's "
            "tesseract-ocr and tesseract-ocr-eng packages"
        )


class EnginePool:
    """One engine per thread, made on first use (loading PP-OCR takes ~0.3 s)."""

    def __init__(self, name: str = DEFAULT_ENGINE, threads: int = 1) -> None:
        check_installed(name)
        self.name, self.threads = name, threads
        self._local = threading.local()

    def get(self) -> OcrEngine:
        engine: OcrEngine | None = getattr(self._local, "engine", None)
        if engine is None:
            engine = load_engine(self.name, self.threads)
            self._local.engine = engine
        return engine


def scaled(result: OcrResult, factor: float) -> OcrResult:
    """Boxes back in the original image's coordinates."""
    if abs(factor - 1.0) < 1e-9:
        return result
    lines = [
        Line(
            [[round(x * factor), round(y * factor)] for x, y in line.box],
            line.text,
            line.confidence,
        )
        for line in result.lines
    ]
    return OcrResult(lines=lines, engine=result.engine)
