"""When a photo was taken: the instant (ISO 8601 with its UTC offset where one is known) and
the wall-clock time where it was taken (what date filters, sorting and the timeline use:
a user's "summer 2019" is local dates).

Cameras write local time; newer ones add the offset (OffsetTimeOriginal). Without it, a GPS
position gives the zone through timezonefinder (offline polygons shipped in its wheel);
without either, the time stays local, zone unknown. Without an EXIF time, the file's
modification time stands in, marked as such.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from imagefind.metadata.exif import FIRST_YEAR, LAST_YEAR

if TYPE_CHECKING:
    from timezonefinder import TimezoneFinder

EXIF = "exif"  # EXIF time with its offset: written by the camera, or the GPS place's zone
EXIF_LOCAL = "exif-local"  # EXIF time as written, zone unknown
FILE = "file"  # the file's modification time

_lock = threading.Lock()


@dataclass(frozen=True)
class When:
    taken_at: str | None = None  # ISO 8601, with offset when known
    source: str | None = None  # EXIF, EXIF_LOCAL or FILE
    local: str | None = None  # YYYY-MM-DDTHH:MM:SS, wall clock where it was taken


def when(
    taken: datetime | None,
    offset: timedelta | None,
    latitude: float | None,
    longitude: float | None,
    mtime: float | None,
) -> When:
    """The capture time from EXIF (``taken``, ``offset``), the GPS place's zone, or the
    file's ``mtime``; an empty ``When`` when none of them is usable."""
    if taken is not None:
        local = taken.isoformat(timespec="seconds")
        if offset is not None:
            aware = taken.replace(tzinfo=timezone(offset))
            return When(aware.isoformat(timespec="seconds"), EXIF, local)
        zone = zone_at(latitude, longitude)
        if zone is not None:
            return When(taken.replace(tzinfo=zone).isoformat(timespec="seconds"), EXIF, local)
        return When(local, EXIF_LOCAL, local)
    if mtime is None or not math.isfinite(mtime):
        return When()
    try:
        instant = datetime.fromtimestamp(mtime, UTC)
    except (OverflowError, OSError, ValueError):
        return When()
    if not FIRST_YEAR <= instant.year <= LAST_YEAR:
        return When()
    # Where it was taken, if the GPS says; else this machine's zone (the best guess left).
    zone = zone_at(latitude, longitude)
    there = instant.astimezone(zone) if zone is not None else instant.astimezone()
    return When(
        there.isoformat(timespec="seconds"),
        FILE,
        there.replace(tzinfo=None).isoformat(timespec="seconds"),
    )


def zone_at(latitude: float | None, longitude: float | None) -> ZoneInfo | None:
    """The time zone at a position (an ``Etc/GMT±n`` zone at sea), or None."""
    if latitude is None or longitude is None:
        return None
    try:
        with _lock:  # decoder threads share one finder, which reads its data files
            name = _finder().timezone_at(lng=longitude, lat=latitude)
        return ZoneInfo(name) if name else None
    except Exception:  # an unknown zone name, or the position outside the data: no zone
        return None


_loaded: list[TimezoneFinder] = []


def _finder() -> TimezoneFinder:
    """Loaded once per process (~50 ms; a lookup then takes microseconds); under _lock."""
    if not _loaded:
        from timezonefinder import TimezoneFinder

        _loaded.append(TimezoneFinder())
    return _loaded[0]
