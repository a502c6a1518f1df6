"""metadata.times: the instant and the local wall-clock time, from EXIF with its offset, the
GPS place's zone, the local time alone, or the file's modification time."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from imagefind.metadata.times import EXIF, EXIF_LOCAL, FILE, When, when, zone_at
from tests.exifkit import AT_SEA, LISBON, SYDNEY, TOKYO

SUMMER = datetime(2019, 7, 14, 18, 30, 5)
WINTER = datetime(2019, 1, 14, 18, 30, 5)


def test_offset_written_by_the_camera_wins() -> None:
    got = when(SUMMER, timedelta(hours=-4), *TOKYO, mtime=None)  # offset over the GPS zone
    assert got == When("2019-07-14T18:30:05-04:00", EXIF, "2019-07-14T18:30:05")


@pytest.mark.parametrize(
    ("taken", "where", "offset"),
    [
        (SUMMER, LISBON, "+01:00"),  # Western European Summer Time
        (WINTER, LISBON, "+00:00"),
        (SUMMER, TOKYO, "+09:00"),
        (SUMMER, SYDNEY, "+10:00"),  # southern winter
        (WINTER, SYDNEY, "+11:00"),
    ],
)
def test_without_offset_the_gps_place_gives_the_zone(
    taken: datetime, where: tuple[float, float], offset: str
) -> None:
    got = when(taken, None, *where, mtime=None)
    local = taken.isoformat()
    assert got == When(local + offset, EXIF, local)


def test_without_offset_or_gps_the_time_stays_local() -> None:
    got = when(SUMMER, None, None, None, mtime=1.0e9)
    assert got == When("2019-07-14T18:30:05", EXIF_LOCAL, "2019-07-14T18:30:05")


def test_without_exif_time_the_file_time_in_the_gps_zone() -> None:
    got = when(None, None, *TOKYO, mtime=1_563_125_405.0)  # 2019-07-14T17:30:05Z
    assert got == When("2019-07-15T02:30:05+09:00", FILE, "2019-07-15T02:30:05")


def test_without_exif_time_or_gps_the_file_time_in_this_machines_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        got = when(None, None, None, None, mtime=1_563_125_405.0)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert got == When("2019-07-14T13:30:05-04:00", FILE, "2019-07-14T13:30:05")


@pytest.mark.parametrize("mtime", [None, math.nan, math.inf, -1e20, 1e20, -5e9])
def test_unusable_file_times_leave_it_unknown(mtime: float | None) -> None:
    assert when(None, None, None, None, mtime) == When()


def test_zones() -> None:
    assert str(zone_at(*LISBON)) == "Europe/Lisbon"
    assert str(zone_at(*TOKYO)) == "Asia/Tokyo"
    assert str(zone_at(*AT_SEA)) == "Etc/GMT+2"  # nautical zones at sea
    assert zone_at(None, 10.0) is None
    assert zone_at(1000.0, 10.0) is None


def test_local_times_sort_chronologically_as_text() -> None:
    times = [
        when(datetime(2019, 12, 31, 23, 0), None, None, None, None).local,
        when(datetime(2020, 1, 1, 0, 30), timedelta(hours=9), None, None, None).local,
        when(datetime(2020, 1, 1, 9, 5, 1), None, *LISBON, None).local,
    ]
    assert times == sorted(times)
    assert all(t is not None and len(t) == 19 for t in times)
