"""The indexing pipeline: read and decode in worker threads, encode in batches, commit
each batch in one transaction. Workers run ahead of the encoder by a bounded amount, so
memory stays flat whatever the size of the library."""

from __future__ import annotations

import hashlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from imagefind.errors import ImageError
from imagefind.files import LibraryFiles
from imagefind.images import decode, read_file, thumbnail
from imagefind.models.preprocess import Preprocessor
from imagefind.records import ImageRecord, NewImage
from imagefind.scanner import FoundFile, Problem, looks_like_image
from imagefind.stores.base import Store
from imagefind.tuning import Tuner

THUMB_SIZE = 256  # longest side of gallery thumbnails
T = TypeVar("T")
R = TypeVar("R")

Encoder = Callable[[np.ndarray], np.ndarray]


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
    pixels: np.ndarray | None = None
    thumb: bytes | None = None
    read_s: float = 0.0  # time spent reading the file (for the tuner)
    prepare_s: float = 0.0  # time spent in prepare, reading included

    def __post_init__(self) -> None:
        self.key = self.key or self.name


@dataclass
class Outcome:
    """What one run did, in counts the CLI and API report."""

    added: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    renamed: list[int] = field(default_factory=list)
    copies: list[int] = field(default_factory=list)
    encoded: int = 0
    skipped: list[Problem] = field(default_factory=list)
    results: dict[str, int] = field(default_factory=dict)  # item key -> image id
    batch_size: int = 0  # as tuned by the end of the run
    decoders: int = 0


def bounded_map(
    fn: Callable[[T], R], items: Iterable[T], workers: int, ahead: Callable[[], int]
) -> Iterator[R]:
    """``map`` in a thread pool, in order, with at most ``ahead()`` results in flight."""
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="decode") as pool:
        it = iter(items)
        futures: deque[Future[R]] = deque()
        while True:
            for nxt in it:
                futures.append(pool.submit(fn, nxt))
                if len(futures) >= max(1, ahead()):
                    break
            if not futures:
                return
            yield futures.popleft().result()


class Pipeline:
    """Runs items through read → hash → (decode → preprocess → thumbnail) → encode → commit."""

    def __init__(
        self,
        store: Store,
        files: LibraryFiles,
        encode: Encoder,
        preprocess: Preprocessor,
        min_side: int,
        *,
        batch_size: int | None = None,
        workers: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """``batch_size`` and ``workers`` (decoder threads): ``None`` tunes them as the run
        goes (see :mod:`imagefind.tuning`)."""
        self.store = store
        self.files = files
        self.encode = encode
        self.preprocess = preprocess
        self.min_side = min_side
        self.tuner = Tuner(
            os.cpu_count() or 1,
            max(1, batch_size) if batch_size is not None else None,
            max(1, workers) if workers is not None else None,
        )
        self.progress = progress

    def prepare(self, item: Item) -> Item | Problem:
        """Worker side: everything but the encoder. Never raises for a bad file."""
        try:
            started = time.perf_counter()
            data = item.data if item.data is not None else read_file(item.found.path)  # type: ignore[union-attr]
            item.read_s = time.perf_counter() - started
            if not looks_like_image(data[:32]):
                head = "empty file" if not data else "content is not a supported image format"
                return Problem(item.name, f"not a supported image ({head})")
            item.sha256 = hashlib.sha256(data).hexdigest()
            same = self.store.by_sha256(item.sha256)
            if same:
                item.known = same[0]
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
            item.new = NewImage(
                path=found.path if found else None,
                upload_key=None if found else info.sha256,
                sha256=info.sha256,
                size=info.size,
                mtime=found.mtime if found else None,
                width=info.width,
                height=info.height,
                format=info.format,
                taken_at=info.taken_at,
                name=None if found else item.name,
            )
            if found is None:
                self.files.put_upload(info.sha256, info.format, data)
            item.prepare_s = time.perf_counter() - started
            return item
        except ImageError as exc:
            return Problem(item.name, _strip_name(str(exc), item.name))
        except Exception as exc:  # a decoder bug must cost one file, never the batch
            return Problem(
                item.name, f"unexpected error while reading ({type(exc).__name__}: {exc})"
            )

    def run(self, items: Iterable[Item], relink: Callable[[Item, Outcome], bool]) -> Outcome:
        """Process items; ``relink`` handles content already known (renames, touches,
        copies) and returns True when it needs no new row."""
        with self.files.writing():  # files go to disk before their commit: no GC meanwhile
            return self._run(items, relink)

    def _prepare_gated(self, item: Item) -> Item | Problem:
        with self.tuner.gate:  # as many at once as the tuner allows decoders
            return self.prepare(item)

    def _run(self, items: Iterable[Item], relink: Callable[[Item, Outcome], bool]) -> Outcome:
        out = Outcome()
        batch: list[Item] = []
        tuner = self.tuner
        results = bounded_map(
            self._prepare_gated,
            items,
            tuner.max_decoders if tuner.workers is None else tuner.decoders,
            lambda: 2 * max(tuner.batch, tuner.decoders),
        )
        self._waited = 0.0
        while True:
            started = time.perf_counter()
            result = next(results, None)
            self._waited += time.perf_counter() - started
            if result is None:
                break
            if isinstance(result, Problem):
                out.skipped.append(result)
            elif result.known is not None:
                if not relink(result, out):
                    batch.append(result)
            else:
                batch.append(result)
            if self.progress:
                self.progress(1)
            if len(batch) >= tuner.batch:
                used = tuner.batch
                self._flush(batch, out)
                # The size the tuner settled on, else the last one used (not one it may try).
                out.batch_size = tuner.batch if tuner.settled else used
                batch = []
        if batch:
            self._flush(batch, out)
        out.batch_size = out.batch_size or tuner.batch
        out.decoders = tuner.decoders
        return out

    def _flush(self, batch: list[Item], out: Outcome) -> None:
        """Encode what needs it, write thumbnails, then commit the batch in one transaction."""
        to_encode = [it for it in batch if it.known is None]
        started = time.perf_counter()
        encoded = self.encode(np.stack([it.pixels for it in to_encode])) if to_encode else None
        encode_s = time.perf_counter() - started
        out.encoded += len(to_encode)
        if to_encode:
            self.tuner.after_batch(
                len(to_encode),
                encode_s,
                self._waited,
                sum(it.read_s for it in batch),
                sum(it.prepare_s for it in batch),
            )
        self._waited = 0.0
        known_ids = [it.known.id for it in batch if it.known is not None]
        _, known_vecs = self.store.vectors(known_ids) if known_ids else (None, None)
        rows, parts, ei, ki = [], [], 0, 0
        for it in batch:
            if it.known is None:
                assert encoded is not None and it.new is not None
                self.files.put_thumb(it.sha256, it.thumb or b"")
                rows.append(it.new)
                parts.append(encoded[ei])
                ei += 1
            else:
                rows.append(_copy_of(it))
                parts.append(known_vecs[ki])  # type: ignore[index]
                ki += 1
        vectors = np.stack(parts).astype(np.float32)
        replaced = {r.path: self.store.by_path(r.path) for r in rows if r.path is not None}
        ids = self.store.add(rows, vectors)
        for it, image_id in zip(batch, ids, strict=True):
            out.results[it.key] = image_id
            old = replaced.get(it.found.path) if it.found else None
            if it.known is not None and old is None:
                out.copies.append(image_id)
            elif old is not None:
                out.updated.append(image_id)
                if old.sha256 != it.sha256 and not self.store.by_sha256(old.sha256):
                    self.files.discard([old.sha256])
            else:
                out.added.append(image_id)
        for it in batch:  # free memory early: a batch of 12 MP decodes is large
            it.pixels = it.thumb = it.data = None


def _copy_of(item: Item) -> NewImage:
    known = item.known
    assert known is not None
    found = item.found
    return NewImage(
        path=found.path if found else None,
        upload_key=None if found else known.sha256,
        sha256=known.sha256,
        size=found.size if found else known.size,
        mtime=found.mtime if found else None,
        width=known.width,
        height=known.height,
        format=known.format,
        taken_at=known.taken_at,
    )


def _strip_name(message: str, name: str) -> str:
    """Messages from the decoder start with the file name; the summary shows it already."""
    prefix = f"{name}: "
    return message[len(prefix) :] if message.startswith(prefix) else message
