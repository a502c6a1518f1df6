"""Filling in the metadata of rows catalogued before it was recorded (or by an older
reader): each file's header is read again, nothing is decoded for the model, no vector
changes. Run by ``index`` after its own work, over the whole store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from imagefind.images import read_exif_of
from imagefind.metadata import META_VERSION, describe
from imagefind.stores.base import Store

BATCH = 256  # rows read, then written in one transaction


def refill_metadata(
    store: Store,
    upload_file: Callable[[str], Path | None],
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Read the metadata of every stale row again; how many rows were filled.
    ``upload_file`` finds an upload's original by SHA-256. A file that is not there (gone, or
    on a share this machine does not mount: a shared store) is left for a later run; one
    that is there but unreadable gets what its row knows (orientation, folder, file time),
    so it is not read on every run. ``progress`` hears (rows gone through, rows to go
    through)."""
    filled = last = seen = 0
    total = store.count_stale(META_VERSION) if progress else 0
    while rows := store.stale_metadata(META_VERSION, last, BATCH):
        last = rows[-1].id
        updates = []
        for rec in rows:
            source = Path(rec.path) if rec.path is not None else upload_file(rec.sha256)
            if source is None or not source.exists():
                continue
            found = describe(read_exif_of(source), rec.width, rec.height, rec.path, rec.mtime)
            updates.append((rec.id, found.columns()))
        store.update_metadata(updates)
        filled += len(updates)
        seen += len(rows)
        if progress:
            progress(seen, max(total, seen))  # rows made stale meanwhile: the bar stays full
    return filled
