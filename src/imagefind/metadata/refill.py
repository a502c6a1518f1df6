"""Filling in the metadata of rows catalogued before it was recorded (or by an older
reader): each file's header is read again, nothing is decoded for the model, no vector
changes. Run by ``index`` after its own work, over the whole store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from imagefind.images import read_exif_of
from imagefind.metadata import META_VERSION, describe
from imagefind.metadata.exif import ExifFacts
from imagefind.stores.base import Store

BATCH = 256  # rows read, then written in one transaction


def refill_metadata(store: Store, upload_file: Callable[[str], Path | None]) -> int:
    """Read the metadata of every stale row again; how many rows were read. ``upload_file``
    finds an upload's original by SHA-256. A file that is gone or unreadable still gets what
    its row knows (orientation, folder, file time), so it is not read on every run."""
    done: set[int] = set()
    while True:
        rows = [r for r in store.stale_metadata(META_VERSION, BATCH) if r.id not in done]
        if not rows:  # none left (or only rows a concurrent writer keeps making stale)
            return len(done)
        updates = []
        for rec in rows:
            source = Path(rec.path) if rec.path is not None else upload_file(rec.sha256)
            facts = read_exif_of(source) if source is not None else ExifFacts()
            found = describe(facts, rec.width, rec.height, rec.path, rec.mtime)
            updates.append((rec.id, found.columns()))
            done.add(rec.id)
        store.update_metadata(updates)
