"""A library's OCR runs: the stage for an index run or an upload (when the library has OCR
on), and the catch-up that ``imagefind ocr`` runs. Kept out of ``library`` so that a library
opened for a query never loads an OCR engine."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from imagefind.schemas import OcrSummary
from imagefind.stores.base import Store

if TYPE_CHECKING:
    from imagefind.commit import Committed
    from imagefind.ingest import RunnerFactory
    from imagefind.ocr.engine import EnginePool
    from imagefind.ocr.stage import OcrStage
    from imagefind.pipeline import IndexRunner

T = TypeVar("T")
Pipeline = Callable[
    [int | None, int | None, Callable[[int], None] | None, "Committed | None"], "IndexRunner"
]


class OcrRuns:
    """OCR for one library: ``source`` finds an image's original by id."""

    def __init__(self, store: Store, source: Callable[[int], Path], engine: str = "rapidocr"):
        self.store = store
        self.source = source
        self._engine = engine
        self._engines: EnginePool | None = None  # one per library: loaded on first use
        self._lock = threading.Lock()

    def enable(self, on: bool) -> None:
        """Turn OCR on or off for the library; on only where the engine can run here."""
        if on:
            from imagefind.ocr.engine import check_installed

            check_installed(self._engine)
        self.store.set_ocr_enabled(on)

    def stage(self, progress: Callable[[int], None] | None = None) -> OcrStage | None:
        """A stage for a run, or None while the library has OCR off."""
        if not self.store.ocr_enabled():
            return None
        from imagefind.ocr.engine import EnginePool  # the image stack: not for a query
        from imagefind.ocr.stage import OcrStage

        with self._lock:
            self._engines = self._engines or EnginePool(self._engine)
        return OcrStage(self.store, self.source, self._engines, progress=progress)

    def run(
        self,
        pipeline: Pipeline,
        job: Callable[[RunnerFactory], T],
        *,
        catch_up: bool = True,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[T, OcrSummary | None]:
        """``job`` with a pipeline factory whose committed batches go to OCR (when on); then
        OCR reads what it left, and (``catch_up``, an index run) every image still unread.
        Uploads read their own images only: a web request never waits for a backlog.
        ``progress(done, total)`` follows that read after encoding, which can be long."""
        tail = [0, 0]  # read, to read: counted once encoding is over

        def begin(total: int) -> None:
            tail[1] = total
            if progress:
                progress(0, total)

        def step(n: int) -> None:
            if progress and tail[1]:
                tail[0] += n
                progress(tail[0], tail[1])

        stage = self.stage(step)
        if stage is None:
            return job(lambda b, w, p: pipeline(b, w, p, None)), None
        try:
            result = job(lambda b, w, p: pipeline(b, w, p, stage.offer))
        except BaseException:
            stage.close()
            raise
        return result, stage.finish(self.store.unread_ids if catch_up else None, begin)

    def catch_up(
        self, *, errors: bool = False, progress: Callable[[int, int], None] | None = None
    ) -> OcrSummary:
        """Read every image not read yet (``errors``: also those OCR failed on), and turn
        OCR on for the images added later."""
        self.enable(True)
        todo = self.store.unread_ids(errors=errors)
        done = 0

        def step(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress(done, len(todo))

        if progress:
            progress(0, len(todo))
        stage = self.stage(step)
        assert stage is not None
        return stage.finish(lambda: todo)
