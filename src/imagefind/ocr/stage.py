"""OCR beside the indexing pipeline: its own worker threads and a bounded queue.

The committer hands over the ids of each committed batch (``offer``); OCR workers re-read
those images from the library (the file, or the stored upload), read their text and store
it. ``offer`` never blocks: when the queue is full the image is left unread in the store,
and ``finish`` reads what was left once CLIP encoding is done. So OCR never stalls the
encoder, memory stays bounded, and an interrupted run leaves unread images that the next
run (or ``imagefind ocr``) picks up: the store's ``unread_ids`` is the to-do list.

One image's failure (a decoder error, an engine crash) is stored as that image's OCR error;
the image stays indexed by CLIP and the batch goes on.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from imagefind.images import decode, read_file
from imagefind.ocr.engine import OCR_MAX_SIDE, EnginePool, OcrEngine, OcrResult, for_ocr, scaled
from imagefind.ocr.textquery import compact
from imagefind.schemas import OcrSummary
from imagefind.stores.base import Store
from imagefind.stores.text import StoredText

Source = Callable[[int], Path]  # image id -> its original (an indexed file or an upload)


def default_workers() -> int:
    """OCR threads beside the encoder: a quarter of the cores (one on a small machine)."""
    return max(1, (os.cpu_count() or 1) // 4)


def stored(image_id: int, result: OcrResult) -> StoredText:
    """An engine's result as the store keeps it."""
    boxes = json.dumps(
        [{"box": ln.box, "text": ln.text, "confidence": ln.confidence} for ln in result.lines],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    text = result.text
    return StoredText(image_id, text, compact(text), result.confidence, boxes, result.engine)


def read_image_file(path: Path, engine: OcrEngine) -> OcrResult:
    """The text in an image file: decoded as for indexing (oriented by EXIF, JPEG
    draft-decoded), scaled to ``OCR_MAX_SIDE``, boxes in the original's coordinates."""
    decoded = decode(read_file(path), str(path), min_side=OCR_MAX_SIDE // 2)
    image = for_ocr(decoded.image)
    # The header's oriented size, not the decoded one: a JPEG may have been draft-decoded.
    factor = max(decoded.info.width, decoded.info.height) / max(image.size)
    return scaled(engine.read(image), factor)


def failed(image_id: int, engine: str, reason: str) -> StoredText:
    return StoredText(image_id, "", "", None, "[]", engine, reason)


class OcrStage:
    """Reads text for offered image ids in ``workers`` threads, at most ``queue`` waiting."""

    def __init__(
        self,
        store: Store,
        source: Source,
        engines: EnginePool,
        *,
        workers: int | None = None,
        queue: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.source = source
        self.engines = engines
        self.workers = max(1, workers or default_workers())
        self.queue = max(1, queue if queue is not None else 4 * self.workers)
        self.progress = progress
        self.summary = OcrSummary(engine=engines.name)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ocr")
        self._pending: set[Future[None]] = set()
        self._left: list[int] = []  # offered while the queue was full: read in ``finish``
        self._lock = threading.Lock()
        self._started = time.perf_counter()

    def offer(self, ids: Sequence[int]) -> None:
        """Queue these images for OCR, or leave them for ``finish``: never waits."""
        with self._lock:
            self._pending = {f for f in self._pending if not f.done()}
            for image_id in ids:
                if len(self._pending) < self.queue:
                    self._pending.add(self._pool.submit(self._read_one, int(image_id)))
                else:
                    self._left.append(int(image_id))
                    self.summary.deferred += 1

    def finish(
        self,
        more: Callable[[], Iterable[int]] | None = None,
        tail: Callable[[int], None] | None = None,
    ) -> OcrSummary:
        """Wait for the queue, then read what was left behind and the ids ``more`` gives
        once the queue is empty (the store's unread images), a thread per core. ``tail``
        hears how many that is before they are read (a progress bar's length)."""
        with self._lock:
            pending, self._pending = list(self._pending), set()
        for future in pending:
            future.result()
        with self._lock:
            left, self._left = self._left, []
        todo = list(dict.fromkeys([*left, *(more() if more is not None else ())]))
        self._pool.shutdown(wait=True)
        if tail is not None:
            tail(len(todo))
        # Encoding is over: the rest is read on every core, an engine per thread.
        threads = min(len(todo), max(self.workers, os.cpu_count() or 1))
        if todo:
            with ThreadPoolExecutor(threads, thread_name_prefix="ocr-tail") as pool:
                list(pool.map(self._read_one, todo))
        self.summary.seconds = round(time.perf_counter() - self._started, 3)
        return self.summary

    def close(self) -> None:
        """Stop without reading the rest (an error ended the run): unread stays unread."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _read_one(self, image_id: int) -> None:
        """Read one image and store the outcome; never raises (one image, never the run)."""
        engine_name = self.engines.name
        try:
            row = stored(image_id, read_image_file(self.source(image_id), self.engines.get()))
        except Exception as exc:  # recorded per image, the run goes on
            reason = str(exc) if str(exc) else type(exc).__name__
            row = failed(image_id, engine_name, f"{type(exc).__name__}: {reason}"[:500])
        try:
            self.store.put_texts([row])
        except Exception:  # the image stays unread; a later run retries
            row = failed(image_id, engine_name, "could not be stored")
        with self._lock:
            self.summary.read += 1
            if row.error:
                self.summary.errors += 1
            elif row.norm:
                self.summary.with_text += 1
        if self.progress:
            self.progress(1)
