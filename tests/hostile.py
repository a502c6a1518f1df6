"""A generated corpus of hostile and awkward image files (nothing binary is committed).

``make_corpus(root)`` writes every case under ``root`` and returns what indexing each one must
do: ``Expect("indexed")`` or ``Expect("skipped", reason)`` where ``reason`` is a substring of
the reason the index summary must give. Cases that need the file system's help (a symlink
loop, a FIFO, a name that is not UTF-8, a file unreadable to anyone but root) are included
where the platform allows them.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tests.synth import natural_image

ORIENTATION = 0x0112
# What ImageOps.exif_transpose applies for each orientation; storing the inverse of it means
# the decoder must give back the upright original.
_UNDO = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,  # exif_transpose rotates 270 back
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,  # exif_transpose rotates 90 back
}
UPRIGHT_SIZE = (160, 120)


@dataclass(frozen=True)
class Expect:
    outcome: str  # "indexed" or "skipped"
    reason: str = ""  # for "skipped": a substring of the reason in the summary


INDEXED = Expect("indexed")


def _bytes(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A valid PNG header declaring ``width`` x ``height`` with almost no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def jpeg_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A small real JPEG whose frame header is patched to declare ``width`` x ``height``."""
    data = bytearray(_bytes(natural_image(64, 48, seed=7), "JPEG", quality=80))
    at = data.find(b"\xff\xc0")
    assert at > 0, "baseline SOF0 marker expected"
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)


def upright() -> Image.Image:
    return natural_image(*UPRIGHT_SIZE, seed=4242)


def oriented_jpeg(orientation: int) -> bytes:
    """The upright image stored as a camera would for ``orientation`` (EXIF tag set)."""
    undo = _UNDO[orientation]
    stored = upright() if undo is None else upright().transpose(undo)
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return _bytes(stored, "JPEG", quality=95, exif=exif)


def _animated(fmt: str, **kw: object) -> bytes:
    frames = [natural_image(80, 60, seed=300 + i) for i in range(3)]
    if fmt == "GIF":
        frames = [f.convert("P", palette=Image.Palette.ADAPTIVE) for f in frames]
    return _bytes(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, **kw)


def image_files() -> dict[str, tuple[bytes, Expect]]:
    """Plain files: name -> (content, expectation)."""
    good_jpeg = _bytes(natural_image(96, 72, seed=1), "JPEG", quality=90)
    good_png = _bytes(natural_image(96, 72, seed=2), "PNG")
    rng = np.random.default_rng(0)
    gray16 = (np.linspace(0, 65535, 64 * 48).reshape(48, 64)).astype("uint16")
    palette = natural_image(64, 48, seed=3).convert("P", palette=Image.Palette.ADAPTIVE)
    palette.info["transparency"] = 0
    la = natural_image(64, 48, seed=5).convert("LA")
    files: dict[str, tuple[bytes, Expect]] = {
        "truncated.jpg": (good_jpeg[: len(good_jpeg) // 2], Expect("skipped", "corrupt")),
        "truncated.png": (good_png[: len(good_png) // 2], Expect("skipped", "corrupt")),
        "header-only.jpg": (good_jpeg[:4], Expect("skipped", "not a supported image")),
        "zero.jpg": (b"", Expect("skipped", "empty file")),
        "zero.png": (b"", Expect("skipped", "empty file")),
        "random.jpg": (rng.bytes(5000), Expect("skipped", "not a supported image")),
        "page.png": (
            b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>",
            Expect("skipped", "not a supported image"),
        ),
        "one-pixel.png": (_bytes(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"), INDEXED),
        "one-pixel.jpg": (_bytes(Image.new("RGB", (1, 1), (10, 200, 10)), "JPEG"), INDEXED),
        "thin-line.png": (_bytes(natural_image(4000, 1, seed=8), "PNG"), INDEXED),
        "bomb.png": (png_bomb(), Expect("skipped", "over the 100 MP limit")),
        "bomb.jpg": (jpeg_bomb(), Expect("skipped", "over the 100 MP limit")),
        "gray16.png": (_bytes(Image.fromarray(gray16), "PNG"), INDEXED),
        "cmyk.jpg": (_bytes(natural_image(64, 48, seed=4).convert("CMYK"), "JPEG"), INDEXED),
        "palette-transparent.png": (_bytes(palette, "PNG"), INDEXED),
        "la.png": (_bytes(la, "PNG"), INDEXED),
        "gray.jpg": (_bytes(natural_image(64, 48, seed=6).convert("L"), "JPEG"), INDEXED),
        "gray.png": (_bytes(natural_image(64, 48, seed=9).convert("L"), "PNG"), INDEXED),
        "rgba.webp": (_bytes(natural_image(64, 48, seed=10).convert("RGBA"), "WEBP"), INDEXED),
        "animated.gif": (_animated("GIF", loop=0), INDEXED),
        "animated.webp": (_animated("WEBP", loop=0), INDEXED),
        "multipage.tif": (_animated("TIFF"), INDEXED),
        "picture.bmp": (_bytes(natural_image(64, 48, seed=11), "BMP"), INDEXED),
        "drawing.svg": (
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" '
            b'height="10"><rect width="10" height="10" fill="red"/></svg>',
            Expect("skipped", "not a supported image"),
        ),
        "drawing-named.png": (
            b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>',
            Expect("skipped", "not a supported image"),
        ),
        "bad-orientation.jpg": (_with_orientation(99), INDEXED),
        "jpeg-named.png": (_bytes(natural_image(64, 48, seed=12), "JPEG"), INDEXED),
    }
    heic = _heic()
    if heic is not None:
        files["photo.heic"] = (heic, INDEXED)
    for o in range(1, 9):
        files[f"orientation-{o}.jpg"] = (oriented_jpeg(o), INDEXED)
    return files


def _with_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = value
    return _bytes(natural_image(64, 48, seed=13), "JPEG", exif=exif)


def _heic() -> bytes | None:
    try:
        import pillow_heif
    except ImportError:  # pragma: no cover - a hard dependency
        return None
    pillow_heif.register_heif_opener()
    return _bytes(natural_image(64, 48, seed=14), "HEIF", quality=90)


@dataclass
class Corpus:
    root: Path
    expect: dict[str, Expect]  # path (as the summary shows it) -> expectation
    notes: list[str]  # cases this platform could not produce, and why


def make_corpus(root: Path) -> Corpus:
    """Write every case under ``root`` (plain files at the top, file-system cases in
    ``fs/``) and return the expectations, keyed by the path the summary will show."""
    root.mkdir(parents=True, exist_ok=True)
    expect: dict[str, Expect] = {}
    notes: list[str] = []
    for name, (data, exp) in image_files().items():
        (root / name).write_bytes(data)
        expect[str(root / name)] = exp
    fs = root / "fs"
    fs.mkdir()
    good = _bytes(natural_image(64, 48, seed=20), "JPEG")

    # A folder symlink pointing back up: the walk must not follow it round and round.
    (fs / "loop").symlink_to(fs, target_is_directory=True)
    # A file symlink to itself: stat fails with ELOOP.
    (fs / "self.jpg").symlink_to(fs / "self.jpg")
    expect[str(fs / "self.jpg")] = Expect("skipped", "cannot read")
    # A dangling symlink.
    (fs / "dangling.jpg").symlink_to(fs / "nowhere.jpg")
    expect[str(fs / "dangling.jpg")] = Expect("skipped", "cannot read")
    # A symlink to a good file is indexed under its own name.
    (fs / "real.jpg").write_bytes(good)
    (fs / "link-to-real.jpg").symlink_to(fs / "real.jpg")
    expect[str(fs / "real.jpg")] = INDEXED
    expect[str(fs / "link-to-real.jpg")] = INDEXED
    # A symlink to a device: never read.
    if os.path.exists("/dev/zero"):
        (fs / "zeros.jpg").symlink_to("/dev/zero")
        expect[str(fs / "zeros.jpg")] = Expect("skipped", "not a regular file")
    # A FIFO named like a photo: opening it would block forever.
    if hasattr(os, "mkfifo"):
        os.mkfifo(fs / "pipe.jpg")
        expect[str(fs / "pipe.jpg")] = Expect("skipped", "not a regular file")
    # A folder named like a photo holds a real one.
    (fs / "album.jpg").mkdir()
    (fs / "album.jpg" / "inside.jpg").write_bytes(_bytes(natural_image(64, 48, seed=23), "JPEG"))
    expect[str(fs / "album.jpg" / "inside.jpg")] = INDEXED
    # A sparse file over the size limit: refused without reading it.
    with open(fs / "huge.jpg", "wb") as fh:
        fh.write(good[:16])
        fh.truncate(600 * 1024 * 1024)
    expect[str(fs / "huge.jpg")] = Expect("skipped", "over the 512 MB limit")
    # Unreadable (root reads it anyway: the test also denies it by monkeypatching).
    locked = fs / "locked.jpg"
    locked.write_bytes(_bytes(natural_image(64, 48, seed=21), "JPEG"))
    locked.chmod(0)
    expect[str(locked)] = Expect("skipped", "Permission denied")
    # A name that is not valid UTF-8 (most Linux file systems allow any bytes).
    bad = os.path.join(os.fsencode(fs), b"caf\xe9-latin1.jpg")
    try:
        with open(bad, "wb") as fh:
            fh.write(_bytes(natural_image(64, 48, seed=22), "JPEG"))
        shown = bad.decode("utf-8", "replace")
        expect[shown] = Expect("skipped", "not valid UTF-8")
    except OSError as exc:  # pragma: no cover - e.g. a UTF-8-only file system
        notes.append(f"non-UTF-8 file name: {exc}")
    # Names that are valid but awkward.
    for name in ("new\nline.jpg", "tab\there.jpg", " spaced .jpg", "émoji-🙂.jpg", "-dash.jpg"):
        (fs / name).write_bytes(_bytes(natural_image(48, 36, seed=len(name)), "JPEG"))
        expect[str(fs / name)] = INDEXED
    return Corpus(root, expect, notes)
