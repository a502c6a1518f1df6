"""Copying a library between stores (SQLite to PostgreSQL and back) without re-encoding.

Rows keep their ids (they are in URLs, caches and scripts) and their times; vectors move as
stored (float16 both sides, so nothing is lost). Thumbnails and uploads stay where they are,
in the library folder: both stores name them by content hash.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagefind.errors import LibraryError
from imagefind.stores import CATALOG_NAME, Store, open_store

BATCH = 1000


@dataclass(frozen=True)
class CopyReport:
    """What a copy moved; ``images`` equals the count found in the destination after it."""

    images: int
    model: str
    seconds: float


def copy_store(
    src: Any, dst: Any, *, batch_size: int = BATCH, progress: Callable[[int], None] | None = None
) -> CopyReport:
    """Copy every row and vector of ``src`` into the empty ``dst``, then check the counts.

    Both are stores with ``restore`` (the embedded and the PostgreSQL one). Writers to the
    source should be stopped: a write during the copy is detected and reported."""
    started = time.monotonic()
    model = src.model()
    if model is None:
        raise LibraryError(f"{src.path}: nothing to copy (no image was ever indexed there)")
    if dst.count():
        raise LibraryError(
            f"{dst.path}: already holds {dst.count()} image(s); copy into an empty store"
        )
    generation = src.generation()
    dst.bind_model(model)
    copied = 0
    with _loading(dst):
        offset = 0
        while page := src.page(offset, batch_size):
            offset += len(page)
            ids, vectors = src.vectors([r.id for r in page])
            by_id = {r.id: r for r in page}
            records = [by_id[int(i)] for i in ids]  # vectors() orders by id
            if len(records) != len(page):
                raise LibraryError(
                    f"{src.path}: {len(page) - len(records)} image(s) have no vector; "
                    "run 'imagefind reindex' on the source first"
                )
            dst.restore(records, vectors)
            dst.put_texts(list(src.texts([r.id for r in records]).values()))  # OCR's text
            copied += len(records)
            if progress:
                progress(len(records))
    for root in src.roots():  # the folders the library follows go with it
        dst.put_roots([root.path], root.scanned_at or root.added_at, scanned=bool(root.scanned_at))
    if src.generation() != generation:
        raise LibraryError(
            f"{src.path}: changed during the copy; stop its writers, empty "
            f"{dst.path} and copy again"
        )
    dst.set_ocr_enabled(src.ocr_enabled())
    found, expected = dst.count(), src.count()
    if not found == expected == copied:
        raise LibraryError(
            f"copy check failed: source has {expected} image(s), {copied} were copied, the "
            f"destination has {found}"
        )
    return CopyReport(images=found, model=model.name, seconds=time.monotonic() - started)


def _loading(store: Any) -> AbstractContextManager[None]:
    """A store that indexes vectors in the database builds that index once, at the end."""
    bulk = getattr(store, "bulk_load", None)
    return bulk() if bulk is not None else nullcontext()


@contextmanager
def opened(spec: str, *, must_exist: bool) -> Iterator[Store]:
    """A store named on the command line: a ``postgresql://`` URL, a library folder, or
    its catalog file. A source that does not exist is an error, not a new empty store."""
    if spec.startswith(("postgresql://", "postgres://")):
        store = open_store(spec, Path.cwd())
    else:
        path = Path(spec).expanduser()
        folder = path.parent if path.name == CATALOG_NAME else path
        if must_exist and not (folder / CATALOG_NAME).is_file():
            raise LibraryError(f"{spec}: no library here (no {CATALOG_NAME})")
        store = open_store(None, folder)
    try:
        yield store
    finally:
        store.close()
