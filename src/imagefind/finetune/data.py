"""Training data: the three DATA forms, row checks, the held-out split and pixel batches.

Every row is checked before training starts (file there, image decodable, caption not empty)
so a bad row costs one line in a report rather than a crash an hour in. Pixels go through
:class:`imagefind.models.preprocess.Preprocessor` with the base checkpoint's settings: the
model is trained on exactly the pixels it will see when indexing. No torch here, so the
parsing can be used and tested without the ``export`` extra.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from imagefind.errors import ImageError
from imagefind.finetune import DEFAULT_TEMPLATE, FORMS, FinetuneError
from imagefind.images import decode, read_file
from imagefind.models.layout import PreprocessConfig
from imagefind.models.preprocess import Preprocessor
from imagefind.query import IMAGE_SUFFIXES
from imagefind.scanner import FoundFile, walk

Form = Literal["auto", "captions", "classes", "csv", "jsonl"]
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
RESAMPLE_NAMES = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic"}
# Column / key names accepted for the two fields of CSV and JSONL rows.
PATH_KEYS = ("path", "image", "file", "filename", "filepath")
CAPTION_KEYS = ("caption", "text", "title", "label")
CACHE_MB = 1024  # resized training images kept in memory when they all fit in this


@dataclass(frozen=True)
class Pair:
    """One image and the text that describes it."""

    path: Path
    caption: str


@dataclass(frozen=True)
class BadRow:
    """A row left out, with where it is (file:line or the image path) and why."""

    where: str
    reason: str


@dataclass
class PairSet:
    """The usable pairs of a DATA source and the rows that were skipped."""

    form: str
    pairs: list[Pair] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)

    @property
    def captions(self) -> list[str]:
        return [p.caption for p in self.pairs]


def _clean(text: str) -> str:
    """One line of text: captions are compared for equality in evaluation, so stray
    whitespace must not make two equal captions different."""
    return " ".join(text.split())


def detect_form(data: Path) -> str:
    """The DATA form from what is there: a .csv or .jsonl file, a folder with .txt sidecars,
    or a folder of class subfolders."""
    if data.is_file():
        suffix = data.suffix.lower()
        if suffix == ".csv":
            return "csv"
        if suffix in (".jsonl", ".ndjson", ".json"):
            return "jsonl"
        raise FinetuneError(
            f"{data}: a DATA file must be .csv or .jsonl with path and caption; "
            "a folder of images is the other choice"
        )
    if not data.is_dir():
        raise FinetuneError(f"{data}: no such file or folder")
    for item in walk(data):
        if isinstance(item, FoundFile) and item.path.lower().endswith(".txt"):
            return "captions"
    if any(p.is_dir() and not p.name.startswith(".") for p in data.iterdir()):
        return "classes"
    raise FinetuneError(
        f"{data}: no captions found: put a .txt file beside each image, or images in one "
        "subfolder per class, or give a CSV/JSONL file of path,caption"
    )


def _sidecar_rows(root: Path) -> Iterator[tuple[str, Path | None, str | None]]:
    """(where, image, caption) for every image under root with its ``.txt`` beside it."""
    for item in walk(root):
        if not isinstance(item, FoundFile):
            yield item.path, None, item.reason
            continue
        path = Path(item.path)
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        txt = path.with_suffix(".txt")
        if not txt.is_file():
            yield str(path), path, None
            continue
        try:
            yield str(path), path, txt.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            yield str(path), None, f"cannot read {txt.name} ({exc.strerror or exc})"


def _class_rows(root: Path, template: str) -> Iterator[tuple[str, Path | None, str | None]]:
    """(where, image, caption) for every image in a class subfolder; caption from template."""
    if "{class}" not in template:
        raise FinetuneError(f"the template {template!r} has no {{class}} to fill in")
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        name = _clean(re.sub(r"[_-]+", " ", folder.name))
        for item in walk(folder):
            if not isinstance(item, FoundFile):
                yield item.path, None, item.reason
            elif Path(item.path).suffix.lower() in IMAGE_SUFFIXES:
                yield item.path, Path(item.path), template.replace("{class}", name)


def _pick(row: dict[str, Any], keys: Sequence[str]) -> Any:
    lowered = {str(k).strip().lower(): v for k, v in row.items()}
    return next((lowered[k] for k in keys if k in lowered), None)


def _csv_rows(file: Path) -> Iterator[tuple[str, Path | None, str | None]]:
    """Rows of path,caption; a header naming the columns is optional."""
    with file.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        path_col, cap_col = 0, 1
        for row in reader:
            where = f"{file.name}:{reader.line_num}"
            if not row or all(not c.strip() for c in row):
                continue
            names = [c.strip().lower() for c in row]
            if reader.line_num == 1 and any(n in PATH_KEYS for n in names):
                path_col = next(i for i, n in enumerate(names) if n in PATH_KEYS)
                cap_col = next((i for i, n in enumerate(names) if n in CAPTION_KEYS), 1)
                continue
            if len(row) <= max(path_col, cap_col):
                yield where, None, "expected two columns: path,caption"
                continue
            yield where, file.parent / row[path_col].strip(), row[cap_col]


def _jsonl_rows(file: Path) -> Iterator[tuple[str, Path | None, str | None]]:
    """One JSON object per line with a path and a caption."""
    with file.open(encoding="utf-8-sig") as fh:
        for n, line in enumerate(fh, 1):
            where = f"{file.name}:{n}"
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                yield where, None, f"not valid JSON ({exc})"
                continue
            if not isinstance(row, dict):
                yield where, None, "expected a JSON object with path and caption"
                continue
            path, caption = _pick(row, PATH_KEYS), _pick(row, CAPTION_KEYS)
            if not isinstance(path, str) or not path.strip():
                yield where, None, "no path"
                continue
            yield where, file.parent / path.strip(), caption if isinstance(caption, str) else ""


def _check_image(path: Path) -> str | None:
    """Why an image cannot be trained on, or None if it decodes."""
    try:
        decode(read_file(path), str(path), min_side=64)
    except ImageError as exc:
        return str(exc).removeprefix(f"{path}: ")
    return None


def load_pairs(
    data: Path,
    *,
    form: str = "auto",
    template: str = DEFAULT_TEMPLATE,
    check_images: bool = True,
    workers: int | None = None,
) -> PairSet:
    """Read DATA into checked pairs; bad rows (missing file, unreadable image, empty
    caption) are collected in ``.bad`` and left out, never raised."""
    data = Path(data).expanduser()
    if form not in FORMS:
        raise FinetuneError(f"unknown DATA form {form!r}: choose one of {', '.join(FORMS)}")
    if form == "auto":
        form = detect_form(data)
    if form in ("csv", "jsonl") and not data.is_file():
        raise FinetuneError(f"{data}: no such file")
    if form in ("captions", "classes") and not data.is_dir():
        raise FinetuneError(f"{data}: no such folder")
    rows = {
        "captions": lambda: _sidecar_rows(data),
        "classes": lambda: _class_rows(data, template),
        "csv": lambda: _csv_rows(data),
        "jsonl": lambda: _jsonl_rows(data),
    }[form]()
    out = PairSet(form=form)
    candidates: list[tuple[str, Pair]] = []
    try:
        for where, path, caption in rows:
            if path is None:
                out.bad.append(BadRow(where, caption or "unreadable row"))
            elif caption is None:
                out.bad.append(BadRow(where, f"no caption ({path.with_suffix('.txt').name})"))
            elif not _clean(caption):
                out.bad.append(BadRow(where, "empty caption"))
            elif not path.is_file():
                out.bad.append(BadRow(where, f"missing file {path}"))
            else:
                candidates.append((where, Pair(path, _clean(caption))))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise FinetuneError(f"{data}: cannot read ({exc})") from exc
    if check_images:
        with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
            problems = list(pool.map(lambda c: _check_image(c[1].path), candidates))
    else:
        problems = [None] * len(candidates)
    for (where, pair), problem in zip(candidates, problems, strict=True):
        if problem is None:
            out.pairs.append(pair)
        else:
            out.bad.append(BadRow(where, f"unreadable image: {problem}"))
    return out


def preprocess_config(processor: dict[str, Any], image_size: int) -> PreprocessConfig:
    """Preprocessing from a checkpoint's preprocessor_config.json, mapped exactly as
    :func:`imagefind.models.export.export_clip` writes ``preprocess_cfg.json``: the exported
    model must see the pixels it was fine-tuned on."""
    mean = processor.get("image_mean", CLIP_MEAN)
    std = processor.get("image_std", CLIP_STD)
    return PreprocessConfig(
        size=int(image_size),
        mean=(float(mean[0]), float(mean[1]), float(mean[2])),
        std=(float(std[0]), float(std[1]), float(std[2])),
        interpolation=RESAMPLE_NAMES.get(int(processor.get("resample", 3)), "bicubic"),
        resize_mode="shortest",
    )


def split(n: int, holdout: float, seed: int) -> tuple[list[int], list[int]]:
    """Train and held-out indices: a seeded shuffle, so a resumed run holds out the same."""
    if not 0.0 <= holdout < 1.0:
        raise FinetuneError(f"--holdout must be in [0, 1), not {holdout}")
    order = np.random.default_rng(seed).permutation(n).tolist()
    n_eval = round(n * holdout)
    if holdout > 0 and n_eval == 0 and n >= 2:
        n_eval = 1
    return sorted(order[n_eval:]), sorted(order[:n_eval])


class PixelBatches:
    """Decodes and preprocesses images in a thread pool, one batch ahead of the trainer:
    PIL releases the GIL while decoding, so the next batch is ready when a step ends."""

    def __init__(
        self,
        pairs: Sequence[Pair],
        preprocessor: Preprocessor,
        *,
        augment: bool = False,
        seed: int = 0,
        workers: int | None = None,
        cache_mb: int = CACHE_MB,
    ) -> None:
        self.pairs = pairs
        self.preprocessor = preprocessor
        self.augment = augment
        self.seed = seed
        self.workers = workers or min(4, os.cpu_count() or 1)
        # Without augmentation every epoch sees the same pixels: keep the resized SxS
        # uint8 images (3 bytes a pixel) when they all fit, and decode each file once.
        need = len(pairs) * 3 * preprocessor.size**2
        self._cache: dict[int, Image.Image] | None = (
            {} if not augment and need <= cache_mb * 2**20 else None
        )

    def _pixels(self, index: int, epoch: int) -> np.ndarray:
        if self._cache is not None and index in self._cache:
            return self.preprocessor(self._cache[index])  # SxS already: no resampling
        pair = self.pairs[index]
        try:
            image = decode(
                read_file(pair.path), str(pair.path), min_side=self.preprocessor.size
            ).image
        except ImageError as exc:
            raise FinetuneError(f"{exc} (it changed after the data was checked)") from exc
        if self.augment:
            image = _random_crop(image, np.random.default_rng((self.seed, epoch, index)))
        elif self._cache is not None:
            image = self._cache[index] = self.preprocessor.resize(image)
        return self.preprocessor(image)

    def batch(self, indices: Sequence[int], epoch: int = 0) -> np.ndarray:
        """Pixels [N,3,S,S] float32 for these pair indices."""
        if not indices:
            return self.preprocessor.batch([])
        with ThreadPoolExecutor(self.workers) as pool:
            return np.stack(list(pool.map(lambda i: self._pixels(i, epoch), indices)))

    def iterate(
        self, batches: Sequence[Sequence[int]], epoch: int = 0
    ) -> Iterator[tuple[Sequence[int], np.ndarray]]:
        """(indices, pixels) per batch, the next one prepared while the caller works."""
        with ThreadPoolExecutor(1) as ahead:
            pending = ahead.submit(self.batch, batches[0], epoch) if batches else None
            for n, indices in enumerate(batches):
                assert pending is not None
                pixels = pending.result()
                if n + 1 < len(batches):
                    pending = ahead.submit(self.batch, batches[n + 1], epoch)
                yield indices, pixels


def _random_crop(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Light augmentation: a random crop keeping 80-100% of each side. No flips or colour
    jitter: captions say "left", "red"; those would make them false."""
    w, h = image.size
    scale = float(rng.uniform(0.8, 1.0))
    cw, ch = max(1, round(w * scale)), max(1, round(h * scale))
    left = int(rng.integers(0, w - cw + 1))
    top = int(rng.integers(0, h - ch + 1))
    return image.crop((left, top, left + cw, top + ch))
