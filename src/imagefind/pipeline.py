"""The indexing pipeline in this process: prepare in decoder threads (:mod:`imagefind.prepare`),
encode and commit in batches (:mod:`imagefind.commit`). Decoders run ahead of the encoder by
a bounded amount, so memory stays flat whatever the size of the library.

``IndexRunner`` is what indexing asks of a pipeline; the Ray one
(:mod:`imagefind.distributed`) keeps the same promise.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, TypeVar

from imagefind.commit import Committed, Committer, Encoder, Outcome, Relink
from imagefind.files import LibraryFiles
from imagefind.models.preprocess import Preprocessor
from imagefind.prepare import Item, Preparer
from imagefind.scanner import Problem
from imagefind.stores.base import Store
from imagefind.tuning import Tuner

T = TypeVar("T")
R = TypeVar("R")


class IndexRunner(Protocol):
    """Takes items (files or uploads) into the catalog and says what it did."""

    def run(self, items: Iterable[Item], relink: Relink) -> Outcome:
        """``relink`` handles content already known (renames, touches, copies) and returns
        True when it needs no new row."""
        ...


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
        committed: Committed | None = None,
    ) -> None:
        """``batch_size`` and ``workers`` (decoder threads): ``None`` tunes them as the run
        goes (see :mod:`imagefind.tuning`); ``committed`` hears each batch's ids (OCR)."""
        self.tuner = Tuner(
            os.cpu_count() or 1,
            max(1, batch_size) if batch_size is not None else None,
            max(1, workers) if workers is not None else None,
        )
        self.committer = Committer(
            store, files, self.tuner, encode, progress=progress, committed=committed
        )
        # Known content is recognised before it is decoded: a renamed file costs a hash.
        self.prepare = Preparer(preprocess, min_side, self.committer.known)

    def run(self, items: Iterable[Item], relink: Relink) -> Outcome:
        tuner = self.tuner
        prepared = bounded_map(
            self._prepare_gated,
            items,
            tuner.max_decoders if tuner.workers is None else tuner.decoders,
            lambda: 2 * max(tuner.batch, tuner.decoders),
        )
        return self.committer.run(prepared, relink)

    def _prepare_gated(self, item: Item) -> Item | Problem:
        with self.tuner.gate:  # as many at once as the tuner allows decoders
            return self.prepare(item)
