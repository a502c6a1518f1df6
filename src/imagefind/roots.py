"""Remembered roots: the folders a library follows. ``imagefind index FOLDER`` records FOLDER,
``imagefind index`` alone scans them all again, ``imagefind watch`` follows them.

Roots never nest: indexing a folder inside a root changes nothing, and a folder that holds
roots replaces them, so every image belongs to at most one root and the counts add up. A
root that is missing (an unmounted drive, a network share that is down) is passed over with
its images kept: pruning them would empty the library each time a disk is unplugged.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from imagefind.errors import LibraryError, NotFoundError
from imagefind.schemas import ImageOut, RootOut, Skipped, iso_time
from imagefind.stores import Store


def absolute(path: str | Path) -> str:
    """The form roots are stored in: absolute, user expanded, no trailing separator."""
    return os.path.abspath(Path(path).expanduser())


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class Roots:
    """The library's roots; ``remove`` is the library's own remover (rows and their files)."""

    def __init__(self, store: Store, remove: Callable[[list[int]], list[ImageOut]]) -> None:
        self.store = store
        self._remove = remove

    def all(self) -> list[RootOut]:
        """Every root with its image count and last scan."""
        return [
            RootOut(
                path=rec.path,
                images=self.store.count_under(rec.path),
                exists=os.path.isdir(rec.path),
                added_at=iso_time(rec.added_at) or "",
                scanned_at=iso_time(rec.scanned_at),
            )
            for rec in self.store.roots()
        ]

    def to_scan(self, paths: Sequence[str | Path]) -> tuple[list[str], list[Skipped]]:
        """What an index run scans: ``paths``, or every root when there are none (missing
        roots passed over, each with its reason)."""
        if paths:
            return [absolute(p) for p in paths], []
        roots = [rec.path for rec in self.store.roots()]
        if not roots:
            raise LibraryError(
                "nothing to index: the library has no folders yet; index one with "
                "'imagefind index FOLDER' and it is remembered"
            )
        present = [r for r in roots if os.path.isdir(r)]
        missing = [
            Skipped(path=r, reason="folder is missing (unmounted?); its images are kept")
            for r in roots
            if r not in present
        ]
        return present, missing

    def scanned(self, paths: Sequence[str], started: float) -> None:
        """Record the folders among ``paths`` as roots, scanned by a run that began at
        ``started`` (files given one by one are not roots)."""
        folders = [p for p in paths if os.path.isdir(p)]
        if not folders:
            return
        known = [rec.path for rec in self.store.roots()]
        fresh = [f for f in folders if not any(_inside(f, r) and f != r for r in known)]
        covered = [r for r in known if any(_inside(r, f) and r != f for f in fresh)]
        if covered:
            self.store.drop_roots(covered)
        self.store.put_roots(fresh, started, scanned=True)

    def remove(self, folder: str | Path) -> list[ImageOut]:
        """Forget a root and remove its images from the library (the files stay on disk)."""
        path = absolute(folder)
        if path not in {rec.path for rec in self.store.roots()}:
            known = ", ".join(rec.path for rec in self.store.roots()) or "none yet"
            raise NotFoundError(f"{folder}: not a root of this library (roots: {known})")
        removed = self._remove([rec.id for rec in self.store.paths_under(path).values()])
        self.store.drop_roots([path])
        return removed
