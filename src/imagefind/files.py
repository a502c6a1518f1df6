"""The library's own files beside the catalog: thumbnails and uploaded originals.

Both are content-addressed by SHA-256 and written before the catalog commit that refers to
them, so a crash leaves at worst an orphan file (removed by ``collect_garbage``), never a row
pointing at nothing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from platformdirs import user_data_dir

from imagefind.errors import NotFoundError

if TYPE_CHECKING:
    from PIL import Image

    from imagefind.records import ImageRecord

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no guard between processes
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".files.lock"

FORMAT_SUFFIX = {
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "PNG": ".png",
    "WEBP": ".webp",
    "GIF": ".gif",
    "BMP": ".bmp",
    "TIFF": ".tif",
    "HEIF": ".heic",
    "HEIC": ".heic",
    "AVIF": ".avif",
}


def default_library_path() -> Path:
    """Where a library lives when none is named: ``IMAGEFIND_HOME``, else the user's data
    folder."""
    env = os.environ.get("IMAGEFIND_HOME")
    return Path(env).expanduser() if env else Path(user_data_dir("imagefind"))


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class LibraryFiles:
    """thumbs/ab/<sha>.webp and uploads/ab/<sha>.<ext> under a library directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.thumbs = root / "thumbs"
        self.uploads = root / "uploads"

    def thumb_path(self, sha256: str) -> Path:
        return self.thumbs / sha256[:2] / f"{sha256}.webp"

    def upload_path(self, sha256: str, fmt: str) -> Path:
        return self.uploads / sha256[:2] / f"{sha256}{FORMAT_SUFFIX.get(fmt.upper(), '.img')}"

    def find_upload(self, sha256: str) -> Path | None:
        folder = self.uploads / sha256[:2]
        if folder.is_dir():
            for candidate in folder.glob(f"{sha256}.*"):
                return candidate
        return None

    def original(self, rec: ImageRecord) -> Path:
        """The file of an image: its indexed path, or its stored upload."""
        if rec.path is not None:
            return Path(rec.path)
        found = self.find_upload(rec.sha256)
        if found is None:
            raise NotFoundError(f"image {rec.id}: its uploaded file is missing")
        return found

    def open_original(self, rec: ImageRecord, min_side: int) -> Image.Image:
        """An image's original, decoded as for indexing (for re-embedding)."""
        from imagefind.images import decode, read_file

        path = self.original(rec)
        return decode(read_file(path), str(path), min_side=min_side).image

    def put_thumb(self, sha256: str, data: bytes) -> None:
        path = self.thumb_path(sha256)
        if not path.exists():
            _write_atomic(path, data)

    def put_upload(self, sha256: str, fmt: str, data: bytes) -> Path:
        path = self.upload_path(sha256, fmt)
        if not path.exists():
            _write_atomic(path, data)
        return path

    def discard(self, sha256s: Iterable[str]) -> None:
        """Remove thumbnails and uploads of content no longer in the catalog."""
        for sha in sha256s:
            self.thumb_path(sha).unlink(missing_ok=True)
            upload = self.find_upload(sha)
            if upload is not None:
                upload.unlink(missing_ok=True)

    @contextmanager
    def _flock(self, operation: int) -> Iterator[bool]:
        """An advisory lock on the store, between processes and threads; yields whether it
        was granted (a non-blocking exclusive request may not be)."""
        if fcntl is None:
            yield True
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:  # no lock file (a read-only library): writers go on, nothing is collected
            yield not operation & fcntl.LOCK_EX
            return
        try:
            try:
                fcntl.flock(fd, operation)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # releases the lock

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Held (shared) from writing files until the catalog commit that refers to them, so
        that ``collect_garbage`` never takes them for a crash's orphans."""
        with self._flock(fcntl.LOCK_SH if fcntl else 0):
            yield

    def collect_garbage(self, live: set[str] | Callable[[], set[str]]) -> int:
        """Delete files whose content no catalog row uses (left by a crash); returns how many.

        Pass ``live`` as a function so it is read under the lock; while any writer (in this
        process or another) is between its file writes and its commit, nothing is collected.
        """
        with self._flock(fcntl.LOCK_EX | fcntl.LOCK_NB if fcntl else 0) as granted:
            if not granted:
                return 0
            return self._collect(live() if callable(live) else live)

    def _collect(self, live: set[str]) -> int:
        removed = 0
        for folder in (self.thumbs, self.uploads):
            if not folder.is_dir():
                continue
            for path in folder.glob("*/*"):
                sha = path.name.split(".", 1)[0]
                if path.name.startswith(".tmp-") or sha not in live:
                    try:
                        path.unlink(missing_ok=True)
                    except OSError:
                        continue  # best effort: the next run tries again
                    removed += 1
        return removed

    def size_bytes(self) -> int:
        """Bytes of thumbnails and uploads. A file that a writer renames or removes while it is
        counted (an atomic write's temporary file, a collected orphan) is passed over: a
        library being indexed must still answer its stats."""
        total = 0
        for folder in (self.thumbs, self.uploads):
            if not folder.is_dir():
                continue
            for path in folder.glob("*/*"):
                with suppress(OSError):
                    if path.is_file():
                        total += path.stat().st_size
        return total
