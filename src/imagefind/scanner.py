"""Walking folders for images: skip hidden files, junk folders and anything unreadable."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from imagefind.rawimages import RAW_EXTENSIONS, looks_like_raw

RawPairs = Literal["jpeg", "both"]
"""A RAW with a JPEG of the same name: index the JPEG only, or both."""
_JPEG_EXTENSIONS = frozenset({".jpg", ".jpeg"})

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
    b"II+\x00",  # BigTIFF
    b"MM\x00+",
    b"\x00\x00\x00\x0cjP  \r\n\x87\n",  # JPEG 2000 (JP2)
    b"\xff\x4f\xff\x51",  # JPEG 2000 codestream (J2K)
    b"\xff\x0a",  # JPEG XL codestream
    b"\x00\x00\x00\x0cJXL \r\n\x87\n",  # JPEG XL container
    b"8BPS",  # PSD
    b"\x00\x00\x01\x00",  # ICO
    b"\x00\x00\x02\x00",  # CUR
    b"qoif",
)
_NETPBM = (b"P1", b"P2", b"P3", b"P4", b"P5", b"P6")  # PBM, PGM, PPM (ASCII and binary)
_TGA_TYPES = frozenset({1, 2, 3, 9, 10, 11})  # colour-mapped, true-colour, grey; raw or RLE
_TGA_DEPTHS = frozenset({1, 8, 15, 16, 24, 32})
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
    b"crx ",  # Canon CR3
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
    if header[:2] in _NETPBM and header[2:3].isspace():
        return True
    if looks_like_raw(header):
        return True
    return (header[4:8] == b"ftyp" and header[8:12] in _FTYP_BRANDS) or _looks_like_tga(header)


def _looks_like_tga(header: bytes) -> bool:
    """TGA has no signature: a plausible header (a known image type, colour map flag and
    pixel depth, a non-empty size), as Pillow's own reader checks it."""
    if len(header) < 18:
        return False
    width = header[12] | header[13] << 8
    height = header[14] | header[15] << 8
    return (
        header[1] in (0, 1)
        and header[2] in _TGA_TYPES
        and header[16] in _TGA_DEPTHS
        and width > 0
        and height > 0
        and (header[1] == 1) == (header[2] in (1, 9))
    )


def _skip_name(name: str) -> bool:
    return name.startswith(".") or name in JUNK_DIRS


def walk(
    root: Path, exclude: Path | None = None, *, raw_pairs: RawPairs = "jpeg"
) -> Iterator[FoundFile | Problem]:
    """Every regular file under ``root`` (or ``root`` itself), as found or as a problem.
    Symlinked folders are not followed, so a symlink loop cannot trap the walk. A RAW file
    with a JPEG of the same name beside it is passed over (with its reason) unless
    ``raw_pairs`` is ``"both"``."""
    root = Path(os.path.abspath(root))
    if root.is_file():
        twin = _jpeg_twin(str(root)) if raw_pairs == "jpeg" else None
        yield _found(str(root)) if twin is None else _paired(str(root), twin)
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
        jpegs = {} if raw_pairs == "both" else _jpeg_stems(filenames)
        for name in sorted(filenames):
            if name.startswith(".") or name in JUNK_FILES:
                continue
            stem, ext = os.path.splitext(name)
            twin = jpegs.get(stem.lower()) if ext.lower() in RAW_EXTENSIONS else None
            path = os.path.join(dirpath, name)
            yield _found(path) if twin is None else _paired(path, twin)
        while errors:
            err = errors.pop()
            yield Problem(str(err.filename), f"cannot list folder ({err.strerror or err})")


def _jpeg_stems(names: list[str]) -> dict[str, str]:
    """JPEG files of a folder by lower-case stem (what a RAW beside them pairs with)."""
    return {
        os.path.splitext(n)[0].lower(): n
        for n in names
        if os.path.splitext(n)[1].lower() in _JPEG_EXTENSIONS
    }


def _jpeg_twin(path: str) -> str | None:
    """The JPEG beside a RAW file, by name, if there is one."""
    stem, ext = os.path.splitext(path)
    if ext.lower() not in RAW_EXTENSIONS:
        return None
    folder = os.path.dirname(path)
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    twin = _jpeg_stems(names).get(os.path.basename(stem).lower())
    return None if twin is None else os.path.join(folder, twin)


def _paired(path: str, twin: str) -> Problem:
    return Problem(
        path,
        f"RAW beside its JPEG ({os.path.basename(twin)}), which is indexed instead "
        "(--raw-pairs both indexes both)",
    )


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
