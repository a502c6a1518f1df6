"""Images with EXIF written the way cameras write it (piexif): capture time, offset, camera,
lens, GPS; for the metadata tests."""

from __future__ import annotations

import io
from fractions import Fraction

import piexif

import imagefind.images  # noqa: F401 - registers the HEIF and AVIF plugins for saving
from tests.synth import natural_image

LISBON = (38.7223, -9.1393)
TOKYO = (35.6762, 139.6503)
SYDNEY = (-33.8688, 151.2093)
AT_SEA = (0.5, -30.0)  # mid-Atlantic: hundreds of km from any town


def _dms(value: float) -> tuple[tuple[int, int], ...]:
    """Decimal degrees as the three rationals of a GPS tag."""
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = Fraction((value - degrees - minutes / 60) * 3600).limit_denominator(10000)
    return ((degrees, 1), (minutes, 1), (seconds.numerator, seconds.denominator))


def exif_bytes(
    *,
    taken: str | None = None,
    offset: str | None = None,
    make: str | None = None,
    model: str | None = None,
    lens: str | None = None,
    gps: tuple[float, float] | None = None,
    raw_gps: dict[int, object] | None = None,
) -> bytes:
    """An EXIF block (``Exif\\0\\0`` + TIFF) with the given tags."""
    zeroth: dict[int, object] = {}
    sub: dict[int, object] = {}
    gps_ifd: dict[int, object] = dict(raw_gps or {})
    if make is not None:
        zeroth[piexif.ImageIFD.Make] = make.encode()
    if model is not None:
        zeroth[piexif.ImageIFD.Model] = model.encode()
    if taken is not None:
        sub[piexif.ExifIFD.DateTimeOriginal] = taken.encode()
    if offset is not None:
        sub[piexif.ExifIFD.OffsetTimeOriginal] = offset.encode()
    if lens is not None:
        sub[piexif.ExifIFD.LensModel] = lens.encode()
    if gps is not None:
        lat, lon = gps
        gps_ifd.update(
            {
                piexif.GPSIFD.GPSLatitudeRef: b"N" if lat >= 0 else b"S",
                piexif.GPSIFD.GPSLatitude: _dms(lat),
                piexif.GPSIFD.GPSLongitudeRef: b"E" if lon >= 0 else b"W",
                piexif.GPSIFD.GPSLongitude: _dms(lon),
            }
        )
    return piexif.dump({"0th": zeroth, "Exif": sub, "GPS": gps_ifd})


def photo(
    fmt: str = "JPEG", size: tuple[int, int] = (64, 48), seed: int = 0, **tags: object
) -> bytes:
    """An image file's bytes in ``fmt`` with EXIF from ``tags`` (see ``exif_bytes``); none
    without tags."""
    out = io.BytesIO()
    extra = {"exif": exif_bytes(**tags)} if tags else {}  # type: ignore[arg-type]
    natural_image(*size, seed=seed).save(out, fmt, **extra)
    return out.getvalue()
