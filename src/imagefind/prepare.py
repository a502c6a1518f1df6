"""Preparing one image for the encoder: read, hash, draft-decode, preprocess, thumbnail.

A pure step (bytes or a file in, a prepared ``Item`` or a ``Problem`` out) that writes
nothing, so it runs the same in a decoder thread and in a remote worker; the committer
(:mod:`imagefind.commit`) encodes what it prepared and writes it to the library.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagefind.errors import ImageError
from imagefind.images import decode, read_file, thumbnail
from imagefind.metadata import describe
from imagefind.models.preprocess import Preprocessor
from imagefind.records import ImageRecord, NewImage
from imagefind.scanner import FoundFile, Problem, looks_like_image

THUMB_SIZE = 256  # longest side of gallery thumbnails

Known = Callable[[str], ImageRecord | None]  # SHA-256 -> a row with that content, if any


@dataclass
class Item:
    """One file or upload on its way into the catalog."""

    name: str  # the path, or the file name an upload arrived with (shown in messages)
    key: str = ""  # unique within a run; defaults to the name
    found: FoundFile | None = None
    data: bytes | None = None  # uploads arrive as bytes
    sha256: str = ""
    known: ImageRecord | None = None  # same content already in the catalog: no decode
    new: NewImage | None = None
    pixels: np.ndarray | None = None  # the model's input
    vector: np.ndarray | None = None  # the model's output, once encoded
    thumb: bytes | None = None
    read_s: float = 0.0  # time spent reading the file (for the tuner)
    prepare_s: float = 0.0  # time spent in prepare, reading included

    def __post_init__(self) -> None:
        self.key = self.key or self.name

    def content(self) -> bytes:
        """The bytes of an upload, or of the file read now."""
        if self.data is not None:
            return self.data
        if self.found is None:
            raise ImageError(f"{self.name}: neither bytes nor a file")
        return read_file(Path(self.found.path))


@dataclass(frozen=True)
class Preparer:
    """Everything but the encoder, for one item at a time. Never raises for a bad file.

    ``known`` looks content up by SHA-256: content already in the catalog is not decoded
    (left out, every file is decoded and the caller recognises known content later)."""

    preprocess: Preprocessor
    min_side: int
    known: Known | None = None

    def __call__(self, item: Item) -> Item | Problem:
        try:
            return self._prepare(item)
        except ImageError as exc:
            return Problem(item.name, _strip_name(str(exc), item.name), item.key)
        except Exception as exc:  # a decoder bug must cost one file, never the batch
            reason = f"unexpected error while reading ({type(exc).__name__}: {exc})"
            return Problem(item.name, reason, item.key)

    def _prepare(self, item: Item) -> Item | Problem:
        started = time.perf_counter()
        data = item.content()
        item.read_s = time.perf_counter() - started
        if not looks_like_image(data[:32]):
            head = "empty file" if not data else "content is not a supported image format"
            return Problem(item.name, f"not a supported image ({head})", item.key)
        item.sha256 = hashlib.sha256(data).hexdigest()
        same = self.known(item.sha256) if self.known is not None else None
        if same is not None:
            item.known = same
            item.prepare_s = time.perf_counter() - started
            return item
        # Drafted no smaller than the thumbnail either (a square photo's view is 224 px).
        side = max(self.min_side, THUMB_SIZE)
        decoded = decode(data, item.name, min_side=side, sha256=item.sha256)
        scaled = self.preprocess.scale(decoded.image)
        item.pixels = self.preprocess.normalise(self.preprocess.crop(scaled))
        # The thumbnail comes from the model's view when that is a reduction big enough
        # for it (a tenth of the cost of resizing the decoded image again).
        view = self.preprocess.keeps_aspect() and scaled.width < decoded.image.width
        view = view and max(scaled.size) >= THUMB_SIZE
        item.thumb = thumbnail(scaled if view else decoded.image, THUMB_SIZE)
        info = decoded.info
        found = item.found
        path = found.path if found else None
        mtime = found.mtime if found else None
        circumstance = describe(info.exif, info.width, info.height, path, mtime)
        item.new = NewImage(
            path=path,
            upload_key=None if found else info.sha256,
            sha256=info.sha256,
            size=info.size,
            mtime=mtime,
            width=info.width,
            height=info.height,
            format=info.format,
            name=None if found else item.name or None,
            **circumstance.columns(),
        )
        item.prepare_s = time.perf_counter() - started
        return item


def _strip_name(message: str, name: str) -> str:
    """Messages from the decoder start with the file name; the summary shows it already."""
    prefix = f"{name}: "
    return message[len(prefix) :] if message.startswith(prefix) else message
