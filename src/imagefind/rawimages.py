"""Camera RAW files (DNG, CR2, CR3, NEF, ARW, ORF, RW2, RAF, PEF, SRW) through ``rawpy``
(LibRaw): the embedded JPEG preview when it is big enough for the model (fast: a JPEG draft
decode), else a demosaic at half size. Orientation comes from the RAW's own metadata.

Recognised by content: the TIFF-based RAWs share their header with plain TIFFs, so those are
offered to LibRaw first and a file LibRaw does not call RAW goes on to Pillow (``None``).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from datetime import datetime

from PIL import Image, ImageOps

from imagefind.errors import ImageError

_TIFF = (b"II*\x00", b"MM\x00*")
_OWN_HEADERS = (b"IIRO", b"IIRS", b"IIU\x00", b"FUJIFILMCCD-RAW")  # ORF, ORF, RW2, RAF
_CR3_BRAND = b"crx "
# LibRaw's flip: 3 = 180°, 5 = 90° counter-clockwise, 6 = 90° clockwise.
_TRANSPOSE = {
    3: Image.Transpose.ROTATE_180,
    5: Image.Transpose.ROTATE_90,
    6: Image.Transpose.ROTATE_270,
}
_MAKES = {"NIKON": "NEF", "SONY": "ARW", "PENTAX": "PEF", "RICOH": "PEF", "SAMSUNG": "SRW"}
RAW_EXTENSIONS = frozenset(
    {".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf", ".pef", ".srw"}
)
"""File name endings of the RAW formats, for pairing a RAW with its JPEG (by name only)."""


def looks_like_raw(header: bytes) -> bool:
    """RAW-only headers (not those shared with plain TIFF files)."""
    return header.startswith(_OWN_HEADERS) or (
        header[4:8] == b"ftyp" and header[8:12] == _CR3_BRAND
    )


def may_be_raw(header: bytes) -> bool:
    """Whether LibRaw should see the file before Pillow does."""
    return header.startswith(_TIFF) or looks_like_raw(header)


@dataclass(frozen=True)
class RawImage:
    image: Image.Image  # RGB, upright
    format: str  # DNG, CR2, NEF...
    exif: Image.Exif  # the TIFF-based formats' tags (empty for the others)
    taken: datetime | None  # LibRaw's capture time, for when the tags have none
    size: tuple[int, int]  # the full image, upright


def decode_raw(data: bytes, name: str, *, min_side: int, max_pixels: int) -> RawImage | None:
    """A RAW file's pixels and facts; ``None`` when LibRaw does not take it for one (a plain
    TIFF: Pillow's job)."""
    import rawpy

    header = data[:16]
    try:
        raw = rawpy.imread(io.BytesIO(data))
    except rawpy.LibRawFileUnsupportedError as exc:
        if looks_like_raw(header):
            reason = "a RAW format LibRaw cannot read"
            raise ImageError(f"{name}: not a supported image ({reason})") from exc
        return None
    except (rawpy.LibRawError, OSError, ValueError) as exc:
        raise ImageError(f"{name}: truncated or corrupt RAW data ({_reason(exc)})") from exc
    with raw:
        sizes = raw.sizes
        width, height = sizes.width, sizes.height
        if width * height > max_pixels:
            raise ImageError(
                f"{name}: image is {width}\u00d7{height} = {width * height / 1e6:.0f} MP, "
                f"over the {max_pixels // 1_000_000} MP limit"
            )
        if sizes.flip in (5, 6):
            width, height = height, width
        try:
            image = _preview(raw, min_side, sizes.flip)
            if image is None:
                pixels = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)
                image = Image.fromarray(pixels, "RGB")  # LibRaw applied the flip already
        except (rawpy.LibRawError, OSError, ValueError, MemoryError) as exc:
            raise ImageError(f"{name}: truncated or corrupt RAW data ({_reason(exc)})") from exc
        stamp = raw.other.timestamp
    taken = stamp if isinstance(stamp, datetime) and stamp.year > 1970 else None
    return RawImage(image, _format(data, header), _exif(data), taken, (width, height))


def _exif(data: bytes) -> Image.Exif:
    """IFD0 and its EXIF and GPS sub-directories, for RAWs that are TIFF files underneath."""
    exif = Image.Exif()
    if data.startswith(_TIFF):
        try:
            exif.load(data)
        except Exception:  # tags are a bonus: a RAW with broken ones still shows
            return Image.Exif()
    return exif


def _preview(raw: object, min_side: int, flip: int) -> Image.Image | None:
    """The embedded JPEG preview, oriented, if both its sides reach ``min_side``."""
    import rawpy

    try:
        thumb = raw.extract_thumb()  # type: ignore[attr-defined]
    except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
        return None
    if thumb.format != rawpy.ThumbFormat.JPEG:
        return None
    preview = Image.open(io.BytesIO(thumb.data), formats=["JPEG"])
    if min(preview.size) < min_side:
        return None
    preview.draft("RGB", (min_side, min_side))
    image = ImageOps.exif_transpose(preview) if flip == 0 else preview
    image = image.convert("RGB")
    transpose = _TRANSPOSE.get(flip)
    return image.transpose(transpose) if transpose is not None else image


def _format(data: bytes, header: bytes) -> str:
    """The RAW format's usual name, from the header (and the maker for TIFF-based ones)."""
    if header.startswith((b"IIRO", b"IIRS")):
        return "ORF"
    if header.startswith(b"IIU\x00"):
        return "RW2"
    if header.startswith(b"FUJIFILM"):
        return "RAF"
    if header[8:12] == _CR3_BRAND:
        return "CR3"
    if header[8:10] == b"CR":
        return "CR2"
    tags = _ifd0(data)
    if 50706 in tags:  # DNGVersion
        return "DNG"
    make = tags.get(271, b"").decode("ascii", "replace").strip("\x00 ").upper()
    return next((fmt for key, fmt in _MAKES.items() if make.startswith(key)), "RAW")


def _ifd0(data: bytes) -> dict[int, bytes]:
    """The first IFD's tags of a TIFF-based file (values of ASCII tags, else b""): enough to
    tell a DNG (DNGVersion) and the maker apart without a TIFF library."""
    order = "<" if data[:2] == b"II" else ">"
    tags: dict[int, bytes] = {}
    try:
        (offset,) = struct.unpack_from(order + "I", data, 4)
        (count,) = struct.unpack_from(order + "H", data, offset)
        for i in range(min(count, 512)):
            tag, kind, n, value = struct.unpack_from(order + "HHII", data, offset + 2 + 12 * i)
            if kind == 2:  # ASCII: inline up to 4 bytes, else at an offset
                start = offset + 2 + 12 * i + 8 if n <= 4 else value
                tags[tag] = data[start : start + n]
            else:
                tags[tag] = b""
    except struct.error:
        pass
    return tags


def _reason(exc: BaseException) -> str:
    text = exc.args[0] if exc.args else ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text).strip() or type(exc).__name__
