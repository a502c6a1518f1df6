"""Walking folders for images: skip hidden files, junk folders and anything unreadable."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# Folders that hold caches, trash or system files, never a user's photos.
JUNK_DIRS = frozenset(
    {
        "@eaDir",
        "__MACOSX",
        "node_modules",
        "$RECYCLE.BIN",
        "System Volume Information",
        "#recycle",
        "#snapshot",
        "lost+found",
        "__pycache__",
    }
)
JUNK_FILES = frozenset({"Thumbs.db", "desktop.ini", "Icon\r"})
MAX_FILE_BYTES = 512 * 1024 * 1024  # nothing a photo library holds is this large

# Leading bytes of the formats we decode: a file that matches none is skipped unread.
_MAGIC = (
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
)
_FTYP_BRANDS = (
    b"heic",
    b"heix",
    b"heim",
    b"heis",
    b"hevc",
    b"hevx",
    b"mif1",
    b"msf1",
    b"avif",
    b"avis",
)


@dataclass(frozen=True)
class FoundFile:
    path: str
    size: int
    mtime: float


@dataclass(frozen=True)
class Problem:
    path: str
    reason: str
    # The pipeline item it belongs to (names of uploads may repeat); not part of its value.
    key: str = field(default="", compare=False)


def looks_like_image(header: bytes) -> bool:
    """Whether the first bytes are those of a format we can decode."""
    if header.startswith(_MAGIC):
        return True
    if header[:4] == b"RIFF" and header[8:12] == b"WEBP":
        return True
    return header[4:8] == b"ftyp" and header[8:12] in _FTYP_BRANDS


def _skip_name(name: str) -> bool:
    return name.startswith(".") or name in JUNK_DIRS


def walk(root: Path, exclude: Path | None = None) -> Iterator[FoundFile | Problem]:
    """Every regular file under ``root`` (or ``root`` itself), as found or as a problem.
    Symlinked folders are not followed, so a symlink loop cannot trap the walk."""
    root = Path(os.path.abspath(root))
    if root.is_file():
        yield _found(str(root))
        return
    if not root.is_dir():
        yield Problem(str(root), "no such file or folder")
        return
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append):
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not _skip_name(d) and (exclude is None or Path(dirpath, d) != exclude)
        )
        for name in sorted(filenames):
            if name.startswith(".") or name in JUNK_FILES:
                continue
            yield _found(os.path.join(dirpath, name))
        while errors:
            err = errors.pop()
            yield Problem(str(err.filename), f"cannot list folder ({err.strerror or err})")


def _found(path: str) -> FoundFile | Problem:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        shown = path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return Problem(shown, "file name is not valid UTF-8")
    try:
        st = os.stat(path)
    except OSError as exc:
        return Problem(path, f"cannot read ({exc.strerror or exc})")
    if not os.path.isfile(path):
        return Problem(path, "not a regular file")
    if st.st_size > MAX_FILE_BYTES:
        return Problem(
            path, f"file is {st.st_size >> 20} MB, over the {MAX_FILE_BYTES >> 20} MB limit"
        )
    return FoundFile(path, st.st_size, st.st_mtime)
