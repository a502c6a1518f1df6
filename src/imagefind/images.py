"""Reading images: open by content, orient, draft-decode, hash, thumbnail."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from imagefind.errors import ImageError
from imagefind.metadata.exif import ExifFacts, read_exif
from imagefind.rawimages import decode_raw, may_be_raw

try:  # HEIF/HEIC (iPhone photos); optional so a broken install does not break import.
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - pillow-heif is a hard dependency
    pillow_heif = None  # type: ignore[assignment]  # absent: a None module

# JPEG XL: an optional plugin (the `jxl` extra; GPL-3.0, so not a hard dependency).
with contextlib.suppress(ImportError):
    import pillow_jxl  # noqa: F401  # registers the JXL opener on import

# We enforce our own MAX_PIXELS before decoding; PIL's warning for sizes between its
# default limit and ours would only be noise on stderr.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

BACKGROUND = (255, 255, 255)
_RAW_FULL_SIDE = 1024  # a RAW decoded for its own sake: a preview this big will do

MAX_PIXELS = 100_000_000
"""Decompression-bomb guard: a header declaring more pixels than this is refused unread."""

# TGA last: it has no signature, so Pillow would try it on anything before the others.
_FORMAT_ORDER = (
    "JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF", "HEIC", "AVIF",
    "JPEG2000", "PSD", "ICO", "CUR", "PPM", "QOI", "JXL", "TGA",
)  # fmt: skip
SUPPORTED_FORMATS: frozenset[str] = frozenset(_FORMAT_ORDER)
"""PIL format names we accept (plus camera RAW through :mod:`imagefind.rawimages`).
Everything else PIL can open (EPS, WMF, FITS...) is refused: a smaller attack surface, and
those are not photos anyway."""

_FORMAT_NAMES = (
    "JPEG, PNG, WebP, GIF, BMP, TIFF, HEIF, AVIF, JPEG 2000, JPEG XL, PSD, TGA, ICO, PPM, "
    "QOI or camera RAW"
)
_TIMES = "\u00d7"  # multiplication sign, for sizes in messages
_ORIENTATION = 0x0112
_SWAPS_SIDES = {5, 6, 7, 8}  # orientations that rotate by 90 degrees
# Everything PIL and its plugins raise on bad input; one bad file must not crash a batch.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    EOFError,
    ZeroDivisionError,
    MemoryError,
    OverflowError,
    RuntimeError,
    struct.error,
)


@dataclass(frozen=True)
class ImageInfo:
    """What the catalog records about an original image (sizes as the user sees it)."""

    sha256: str
    size: int
    width: int
    height: int
    format: str
    exif: ExifFacts = field(default_factory=ExifFacts)  # capture time, camera, lens, GPS


@dataclass
class DecodedImage:
    """Pixels ready for a model (RGB, EXIF-oriented, possibly draft-reduced) plus metadata."""

    image: Image.Image
    info: ImageInfo


def to_rgb(image: Image.Image, background: tuple[int, int, int] = BACKGROUND) -> Image.Image:
    """RGB with any transparency composited on a fixed background, so results do not
    depend on what colour a transparent pixel happens to store."""
    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, background)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grayscale: scale to 8 bits rather than clip at 255.
        import numpy as np

        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        arr8 = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype("uint8")
        return Image.fromarray(arr8, "L").convert("RGB")
    return image.convert("RGB")


def read_file(path: Path) -> bytes:
    """The bytes of a file, with any OS error turned into an ImageError naming it."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def decode(
    data: bytes, name: str, *, min_side: int | None = None, sha256: str | None = None
) -> DecodedImage:
    """Decode image bytes recognised by content (never by extension).

    ``min_side`` lets JPEG decode at a reduced scale (1/2, 1/4, 1/8) while both sides stay
    at least ``min_side``: a model that needs 224 px does not pay for 12 MP. ``sha256`` is
    the content hash when the caller has it already. ``name`` is only used in error messages.
    """
    if not data:
        raise ImageError(f"{name}: not a supported image (empty file)")
    if may_be_raw(data[:16]):
        raw = _decode_raw(data, name, min_side, sha256)
        if raw is not None:
            return raw
    img = _open(data, name)
    rgb: Image.Image | None = None
    try:
        try:
            info = _info(img, data, sha256)
            if min_side is not None and img.format in ("JPEG", "MPO"):
                img.draft("RGB", (min_side, min_side))
            img.load()
            ImageOps.exif_transpose(img, in_place=True)  # in place: no copy of the pixels
            rgb = to_rgb(img)
            return DecodedImage(image=rgb, info=info)
        except Image.DecompressionBombError as exc:  # a frame or entry larger than the header
            raise ImageError(
                f"{name}: image is over the {MAX_PIXELS // 1_000_000} MP limit (an embedded "
                f"frame declares more pixels than its {img.width}{_TIMES}{img.height} header)"
            ) from exc
        except _DECODE_ERRORS as exc:
            # The header was fine, so this is the pixel data (or EXIF) being bad.
            raise ImageError(f"{name}: truncated or corrupt image data ({_reason(exc)})") from exc
    finally:
        if rgb is not img:  # closing frees the pixels: not those we hand back (no copy)
            img.close()


def _decode_raw(
    data: bytes, name: str, min_side: int | None, sha256: str | None
) -> DecodedImage | None:
    """A camera RAW file's pixels and facts (None: not a RAW file, Pillow's job)."""
    raw = decode_raw(data, name, min_side=min_side or _RAW_FULL_SIDE, max_pixels=MAX_PIXELS)
    if raw is None:
        return None
    facts = read_exif(raw.exif)
    if facts.taken is None and raw.taken is not None:
        facts = dataclasses.replace(facts, taken=raw.taken)
    digest = sha256 or hashlib.sha256(data).hexdigest()
    width, height = raw.size
    return DecodedImage(raw.image, ImageInfo(digest, len(data), width, height, raw.format, facts))


def thumbnail(image: Image.Image, size: int = 256) -> bytes:
    """WebP bytes of a small copy (longest side at most ``size``) for galleries."""
    scale = min(1.0, size / max(image.size))
    small = image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
        Image.Resampling.LANCZOS,
        reducing_gap=2.0,
    )
    if small.mode not in ("RGB", "RGBA"):
        small = to_rgb(small)
    out = io.BytesIO()
    small.save(out, format="WEBP", quality=80, method=2)  # 2x faster than 4, 3% larger
    return out.getvalue()


def _open(data: bytes, name: str) -> ImageFile.ImageFile:
    """Identify the format from the header and check the declared size before decoding."""
    Image.init()
    formats = [f for f in _FORMAT_ORDER if f in Image.OPEN]
    try:
        img = Image.open(io.BytesIO(data), formats=formats)
    except Image.DecompressionBombError as exc:
        # PIL's own (global, larger) guard fired first; report the size it refused.
        size = _declared_size(data, formats)
        if size is None:
            raise ImageError(
                f"{name}: image is over the {MAX_PIXELS // 1_000_000} MP limit"
            ) from exc
        raise _too_large(name, *size) from exc
    except UnidentifiedImageError as exc:
        raise ImageError(
            f"{name}: not a supported image (content is not a {_FORMAT_NAMES} image)"
        ) from exc
    except _DECODE_ERRORS as exc:
        raise ImageError(f"{name}: not a supported image ({_reason(exc)})") from exc
    if img.format not in SUPPORTED_FORMATS:  # pragma: no cover - formats= already filters
        img.close()
        raise ImageError(f"{name}: not a supported image ({img.format} files are not supported)")
    width, height = img.size
    if width <= 0 or height <= 0:
        img.close()
        raise ImageError(f"{name}: not a supported image (declared size {width}{_TIMES}{height})")
    if width * height > MAX_PIXELS:
        img.close()
        raise _too_large(name, width, height)
    return img


def _too_large(name: str, width: int, height: int) -> ImageError:
    """The decompression-bomb refusal, with the declared size."""
    return ImageError(
        f"{name}: image is {width}{_TIMES}{height} = {width * height / 1e6:.0f} MP, "
        f"over the {MAX_PIXELS // 1_000_000} MP limit"
    )


def _declared_size(data: bytes, formats: list[str]) -> tuple[int, int] | None:
    """Width and height from the header alone (the plugin parses it; no pixels decoded)."""
    prefix = data[:16]
    for fmt in formats:
        factory, accept = Image.OPEN[fmt]
        if accept is not None:
            accepted = accept(prefix)
            if isinstance(accepted, str) or not accepted:
                continue
        try:
            with factory(io.BytesIO(data), "") as img:
                return img.size
        except (*_DECODE_ERRORS, Image.DecompressionBombError):  # an entry past the limit
            continue
    return None


def _info(img: Image.Image, data: bytes, sha256: str | None = None) -> ImageInfo:
    """Metadata from the header: oriented size, format, capture time, content hash."""
    exif = img.getexif()
    width, height = img.size
    orientation = exif.get(_ORIENTATION)
    if orientation in _SWAPS_SIDES:
        width, height = height, width
    return ImageInfo(
        sha256=sha256 or hashlib.sha256(data).hexdigest(),
        size=len(data),
        width=width,
        height=height,
        format=img.format or "",
        exif=read_exif(exif),
    )


def read_exif_of(path: Path) -> ExifFacts:
    """The EXIF facts of a file, from its header (no pixels decoded for JPEG, HEIC, WebP, TIFF;
    a PNG whose eXIf chunk follows its pixels is decoded). Empty when the file cannot be
    read or is not a supported image; never raises."""
    Image.init()
    formats = [f for f in _FORMAT_ORDER if f in Image.OPEN]
    try:
        with Image.open(path, formats=formats) as img:
            return read_exif(img.getexif())
    except Exception:  # unreadable, gone, not an image: nothing to read, nothing to stop
        return ExifFacts()


def _reason(exc: BaseException) -> str:
    """A short human reason from a decoder exception."""
    if isinstance(exc, MemoryError):
        return "out of memory while decoding"
    text = str(exc).strip()
    return text or type(exc).__name__
