"""An image's circumstance: when it was taken, with what, where, in which folder, which way
up. Recorded beside each catalog row at index time (and for uploads), so that searches can be
filtered and sorted by it; see ``exif`` (the tags), ``times`` (instants and zones) and
``places`` (positions to names, offline).

Reading never raises: a field that cannot be read is left empty and the image is indexed.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from imagefind.metadata.exif import ExifFacts
from imagefind.metadata.times import when

if TYPE_CHECKING:
    from imagefind.metadata.places import Place

META_VERSION = 1
"""The version of this reader, kept in each row it filled (``meta_version``). Rows with an
older one (or none: catalogued before metadata was recorded) are read again from their
file's header by the next ``index``; raise it when the reader learns something new."""


@dataclass(frozen=True)
class Circumstance:
    """The metadata columns of one catalog row (the names are the columns')."""

    taken_at: str | None = None
    taken_at_source: str | None = None
    taken_local: str | None = None
    camera: str | None = None
    lens: str | None = None
    orientation: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    city: str | None = None
    region: str | None = None
    country: str | None = None
    country_code: str | None = None
    folder: str | None = None
    meta_version: int | None = None

    def columns(self) -> dict[str, Any]:
        return asdict(self)


def describe(
    facts: ExifFacts, width: int, height: int, path: str | None, mtime: float | None
) -> Circumstance:
    """The circumstance of an image from its EXIF ``facts``, its displayed size, and (for a
    file) its path and modification time; uploads have neither."""
    lat, lon = facts.latitude, facts.longitude
    time = when(facts.taken, facts.offset, lat, lon, mtime)
    place = _place(lat, lon)
    return Circumstance(
        taken_at=time.taken_at,
        taken_at_source=time.source,
        taken_local=time.local,
        camera=facts.camera,
        lens=facts.lens,
        orientation=orientation(width, height),
        latitude=lat,
        longitude=lon,
        city=place.city if place else None,
        region=place.region if place else None,
        country=place.country if place else None,
        country_code=place.country_code if place else None,
        folder=os.path.dirname(path) if path else None,
        meta_version=META_VERSION,
    )


def orientation(width: int, height: int) -> str | None:
    """landscape, portrait or square, from the size as displayed (after EXIF rotation)."""
    if width <= 0 or height <= 0:
        return None
    return "landscape" if width > height else "portrait" if height > width else "square"


def _place(lat: float | None, lon: float | None) -> Place | None:
    if lat is None or lon is None:
        return None
    try:
        from imagefind.metadata.places import place_at  # scipy and the data: only with GPS

        return place_at(lat, lon)
    except Exception:  # the gazetteer missing or broken costs the place, not the image
        return None
