"""What an image's EXIF says about its circumstance: when (capture time and UTC offset), with
which camera and lens, and where (GPS). Read from Pillow's ``getexif()``, which covers JPEG,
PNG (eXIf), WebP, TIFF and, through pillow-heif, HEIC and AVIF.

Every field is read on its own and checked for sense: a corrupt tag, a latitude of 1000 or a
date in year 0 or 9999 leaves that one field empty and never raises (an image with bad EXIF
is still indexed).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from PIL import Image

EXIF_IFD = 0x8769
GPS_IFD = 0x8825
_MAKE, _MODEL, _DATETIME = 0x010F, 0x0110, 0x0132
# (time tag, its offset tag): DateTimeOriginal first, then Digitized, then the file's DateTime.
_DATETIME_ORIGINAL, _OFFSET_ORIGINAL = 0x9003, 0x9011
_DATETIME_DIGITIZED, _OFFSET_DIGITIZED = 0x9004, 0x9012
_OFFSET_TIME = 0x9010
_LENS_MAKE, _LENS_MODEL = 0xA433, 0xA434
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON = 1, 2, 3, 4

FIRST_YEAR = 1826  # the oldest surviving photograph: anything earlier is a wrong clock
LAST_YEAR = 2200  # a camera clock past this is wrong too (9999 is a common placeholder)
_DATE = re.compile(r"(\d{4})[:\-/.](\d{2})[:\-/.](\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?")
_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})")

T = TypeVar("T")


@dataclass(frozen=True)
class ExifFacts:
    """What the EXIF tags say, each checked; None where a tag is missing or makes no sense."""

    taken: datetime | None = None  # wall-clock time as the camera wrote it (naive)
    offset: timedelta | None = None  # its UTC offset, when the camera wrote one
    camera: str | None = None
    lens: str | None = None
    latitude: float | None = None
    longitude: float | None = None


def read_exif(exif: Image.Exif) -> ExifFacts:
    """The facts of one image's EXIF; never raises."""
    main: Mapping[int, Any] = exif
    sub = _safe(lambda: exif.get_ifd(EXIF_IFD)) or {}
    gps = _safe(lambda: exif.get_ifd(GPS_IFD)) or {}
    when = _safe(lambda: _taken(main, sub))
    taken, offset = when if when else (None, None)
    position = _safe(lambda: _position(gps))
    latitude, longitude = position if position else (None, None)
    return ExifFacts(
        taken=taken,
        offset=offset,
        camera=_safe(lambda: tidy_camera(_text(main.get(_MAKE)), _text(main.get(_MODEL)))),
        lens=_safe(lambda: _lens(sub)),
        latitude=latitude,
        longitude=longitude,
    )


def _safe(read: Callable[[], T]) -> T | None:
    """One field's reading: whatever a corrupt tag makes it raise costs that field only."""
    try:
        return read()
    except Exception:  # corrupt EXIF takes every shape; nothing may stop the indexing
        return None


# --- when -------------------------------------------------------------------------------


def _taken(main: Mapping[int, Any], sub: Mapping[int, Any]) -> tuple[datetime, timedelta | None]:
    for time_tag, offset_tag, tags in (
        (_DATETIME_ORIGINAL, _OFFSET_ORIGINAL, sub),
        (_DATETIME_DIGITIZED, _OFFSET_DIGITIZED, sub),
        (_DATETIME, _OFFSET_TIME, main),
    ):
        taken = parse_datetime(_text(tags.get(time_tag)))
        if taken is not None:
            # The offset written for that time; a file's DateTime takes OffsetTime only.
            return taken, parse_offset(_text(sub.get(offset_tag)))
    raise LookupError("no capture time")


def parse_datetime(text: str | None) -> datetime | None:
    """An EXIF date-time ("2019:07:14 18:30:05", also with dashes) as a naive datetime, or
    None when it is blank, malformed or outside the years a camera could have been used."""
    if not text:
        return None
    match = _DATE.match(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups())
    if not FIRST_YEAR <= year <= LAST_YEAR:
        return None
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:  # month 13, hour 25, February 30…
        return None


def parse_offset(text: str | None) -> timedelta | None:
    """An EXIF offset ("+02:00", "-0530", "Z") as a timedelta, or None."""
    if not text:
        return None
    text = text.strip()
    if text in {"Z", "UTC"}:
        return timedelta(0)
    match = _OFFSET.fullmatch(text)
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if delta > timedelta(hours=14) or int(minutes) >= 60:
        return None
    return -delta if sign == "-" else delta


# --- with what --------------------------------------------------------------------------

# Makers that write their company's legal name, or capitals, as Make: what people call them.
_MAKERS = {
    "nikon corporation": "Nikon",
    "nikon": "Nikon",
    "olympus imaging corp.": "Olympus",
    "olympus corporation": "Olympus",
    "olympus optical co.,ltd": "Olympus",
    "om digital solutions": "OM System",
    "eastman kodak company": "Kodak",
    "ricoh imaging company, ltd.": "Ricoh",
    "pentax corporation": "Pentax",
    "asahi optical co.,ltd": "Pentax",
    "leica camera ag": "Leica",
    "minolta co., ltd.": "Minolta",
    "konica minolta": "Konica Minolta",
    "konica minolta camera, inc.": "Konica Minolta",
    "casio computer co.,ltd.": "Casio",
    "casio computer co.,ltd": "Casio",
    "samsung techwin": "Samsung",
    "lg electronics": "LG",
    "hmd global": "Nokia",
    "gopro": "GoPro",
    "dji": "DJI",
    "htc": "HTC",
    "oneplus": "OnePlus",
    "hasselblad": "Hasselblad",
    "sony": "Sony",
    "fujifilm": "Fujifilm",
    "canon": "Canon",
    "panasonic": "Panasonic",
    "samsung": "Samsung",
    "motorola": "Motorola",
    "huawei": "Huawei",
    "xiaomi": "Xiaomi",
    "sigma": "Sigma",
    "apple": "Apple",
    "google": "Google",
}
_LEGAL = re.compile(
    r"[\s,]+(corporation|corp\.?|co\.?,?\s*ltd\.?|ltd\.?|inc\.?|ag|gmbh|imaging|company)$",
    re.IGNORECASE,
)


def tidy_make(make: str | None) -> str | None:
    """A maker's usual name: "NIKON CORPORATION" → "Nikon", "SONY" → "Sony"."""
    if not make:
        return None
    known = _MAKERS.get(make.lower())
    if known:
        return known
    short = make
    while (trimmed := _LEGAL.sub("", short)) != short and trimmed:
        short = trimmed
    known = _MAKERS.get(short.lower())
    if known:
        return known
    return short.title() if short.isupper() and len(short) > 3 else short


def tidy_camera(make: str | None, model: str | None) -> str | None:
    """Make and model as one name, the maker said once: ("Canon", "Canon EOS 5D Mark IV") →
    "Canon EOS 5D Mark IV"; ("NIKON CORPORATION", "NIKON D750") → "Nikon D750";
    ("Apple", "iPhone 12") → "Apple iPhone 12"."""
    maker = tidy_make(make)
    if not model:
        return maker
    if not maker:
        return model
    first, _, rest = model.partition(" ")
    said = {maker.lower(), maker.split()[0].lower()}
    if make:
        said |= {make.lower(), make.split()[0].lower()}
    if model.lower().startswith(maker.lower() + " "):
        return maker + model[len(maker) :]
    if first.lower() in said:
        return f"{maker} {rest}".strip() if rest else maker
    return f"{maker} {model}"


def _lens(sub: Mapping[int, Any]) -> str | None:
    model = _text(sub.get(_LENS_MODEL))
    if not model or not any(ch.isalnum() for ch in model):
        return None  # "", "----": written by bodies that do not know the lens
    return model


def _text(value: object) -> str | None:
    """A tag's text: NUL padding and whitespace trimmed, None when nothing is left."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    text = " ".join(value.replace("\x00", " ").split())
    return text or None


# --- where ------------------------------------------------------------------------------


def _position(gps: Mapping[int, Any]) -> tuple[float, float]:
    latitude = _degrees(gps[_GPS_LAT], _text(gps.get(_GPS_LAT_REF)), "S")
    longitude = _degrees(gps[_GPS_LON], _text(gps.get(_GPS_LON_REF)), "W")
    if not (abs(latitude) <= 90 and abs(longitude) <= 180):
        raise ValueError("position off the globe")
    if latitude == 0 and longitude == 0:
        raise ValueError("0, 0: a receiver without a fix, not a place in the Gulf of Guinea")
    return round(latitude, 7), round(longitude, 7)


def _degrees(value: Any, ref: str | None, negative: str) -> float:
    """Degrees, minutes, seconds (rationals) as signed decimal degrees."""
    parts = [float(v) for v in (value if isinstance(value, tuple | list) else (value,))]
    if not 1 <= len(parts) <= 3 or not all(math.isfinite(p) and p >= 0 for p in parts):
        raise ValueError("not degrees")
    degrees = sum(p / 60.0**i for i, p in enumerate(parts))
    return -degrees if ref and ref.upper().startswith(negative) else degrees
