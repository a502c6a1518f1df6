"""Committing prepared images: gather them into batches, encode what needs encoding, write
thumbnails and uploads, then commit each batch in one transaction.

The in-process pipeline and the Ray pipeline both end here, so a run means the same (the
same re-linking, the same counts) wherever its items were prepared.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from imagefind.files import LibraryFiles
from imagefind.metadata import Circumstance
from imagefind.prepare import Item
from imagefind.records import ImageRecord, NewImage
from imagefind.scanner import Problem
from imagefind.stores.base import Store
from imagefind.tuning import Tuner

Encoder = Callable[[np.ndarray], np.ndarray]


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


# Handles content already known (renames, touches, copies); True when it needs no new row.
Relink = Callable[[Item, Outcome], bool]


class Committer:
    """Turns a stream of prepared items into committed rows, batch by batch, in order.

    ``encode`` is the model's visual encoder, for items that arrive without a vector
    (``None`` where they all arrive encoded). The tuner sets the batch size and hears how
    long each batch took to encode and to arrive."""

    def __init__(
        self,
        store: Store,
        files: LibraryFiles,
        tuner: Tuner,
        encode: Encoder | None = None,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.files = files
        self.tuner = tuner
        self.encode = encode
        self.progress = progress
        self._waited = 0.0

    def known(self, sha256: str) -> ImageRecord | None:
        """A row with this content, if the catalog has one."""
        same = self.store.by_sha256(sha256)
        return same[0] if same else None

    def run(self, prepared: Iterable[Item | Problem], relink: Relink) -> Outcome:
        """Commit ``prepared`` (a lazy stream: preparing it may write nothing but may be
        slow); ``relink`` sees each item whose content is known."""
        with self.files.writing():  # files go to disk before their commit: no GC meanwhile
            return self._run(prepared, relink)

    def _run(self, prepared: Iterable[Item | Problem], relink: Relink) -> Outcome:
        out = Outcome()
        batch: list[Item] = []
        tuner = self.tuner
        results = iter(prepared)
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
        """Encode what needs it, write thumbnails and uploads, then commit the batch in one
        transaction."""
        fresh = [it for it in batch if it.known is None]
        started = time.perf_counter()
        self._encode([it for it in fresh if it.vector is None])
        encode_s = time.perf_counter() - started
        out.encoded += len(fresh)
        if fresh:
            self.tuner.after_batch(
                len(fresh),
                encode_s,
                self._waited,
                sum(it.read_s for it in batch),
                sum(it.prepare_s for it in batch),
            )
        self._waited = 0.0
        known_ids = [it.known.id for it in batch if it.known is not None]
        known_vecs = iter(self.store.vectors(known_ids)[1] if known_ids else ())
        rows: list[NewImage] = []
        parts: list[np.ndarray] = []
        for it in batch:
            if it.known is None:
                assert it.new is not None and it.vector is not None
                self._write_files(it, it.new)
                rows.append(it.new)
                parts.append(it.vector)
            else:
                rows.append(_copy_of(it, it.known))
                parts.append(next(known_vecs))
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
            it.pixels = it.vector = it.thumb = it.data = None

    def _encode(self, items: list[Item]) -> None:
        """Give each item its vector, in one call to the encoder."""
        if not items:
            return
        if self.encode is None:
            raise AssertionError("items arrived without vectors and there is no encoder")
        pixels: list[np.ndarray] = []
        for it in items:
            assert it.pixels is not None
            pixels.append(it.pixels)
        for it, vector in zip(items, self.encode(np.stack(pixels)), strict=True):
            it.vector = vector

    def _write_files(self, item: Item, new: NewImage) -> None:
        """The thumbnail, and an upload's original, before the commit that refers to them."""
        if item.found is None:
            assert item.data is not None
            self.files.put_upload(new.sha256, new.format, item.data)
        self.files.put_thumb(item.sha256, item.thumb or b"")


def _copy_of(item: Item, known: ImageRecord) -> NewImage:
    """A new row for known content: its vector and facts are the known row's (its folder is
    its own)."""
    found = item.found
    facts = {name: getattr(known, name) for name in Circumstance.__dataclass_fields__}
    facts["folder"] = os.path.dirname(found.path) if found else None
    return NewImage(
        path=found.path if found else None,
        upload_key=None if found else known.sha256,
        sha256=known.sha256,
        size=found.size if found else known.size,
        mtime=found.mtime if found else None,
        width=known.width,
        height=known.height,
        format=known.format,
        **facts,
    )
