"""metadata.exif: capture time and offset, camera and lens, GPS, from EXIF in every format
that carries it; bad values leave their field empty and never raise."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest
from PIL import Image

from imagefind.images import decode, read_exif_of
from imagefind.metadata.exif import (
    ExifFacts,
    parse_datetime,
    parse_offset,
    read_exif,
    tidy_camera,
    tidy_make,
)
from tests.exifkit import LISBON, SYDNEY, photo

FULL = {
    "taken": "2019:07:14 18:30:05",
    "offset": "+01:00",
    "make": "Canon",
    "model": "Canon EOS 5D Mark IV",
    "lens": "EF24-70mm f/2.8L II USM",
    "gps": LISBON,
}
EXPECTED = ExifFacts(
    taken=datetime(2019, 7, 14, 18, 30, 5),
    offset=timedelta(hours=1),
    camera="Canon EOS 5D Mark IV",
    lens="EF24-70mm f/2.8L II USM",
    latitude=LISBON[0],
    longitude=LISBON[1],
)


def _facts(data: bytes) -> ExifFacts:
    return decode(data, "exif").info.exif


def _close(a: ExifFacts, b: ExifFacts) -> bool:
    """Equal, positions to a metre (degrees, minutes, seconds are rounded on the way)."""
    assert a.latitude is not None and a.longitude is not None
    assert b.latitude is not None and b.longitude is not None
    near = abs(a.latitude - b.latitude) < 1e-5 and abs(a.longitude - b.longitude) < 1e-5
    rest = (a.taken, a.offset, a.camera, a.lens) == (b.taken, b.offset, b.camera, b.lens)
    return near and rest


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "HEIF", "AVIF"])
def test_every_format_carries_exif(fmt: str) -> None:
    data = photo(fmt, **FULL)
    assert decode(data, "x").info.format in {fmt, "HEIC", "HEIF", "AVIF"}
    assert _close(_facts(data), EXPECTED)


def test_southern_and_eastern_positions_keep_their_signs() -> None:
    facts = _facts(photo(gps=SYDNEY))
    assert facts.latitude == pytest.approx(SYDNEY[0], abs=1e-5)
    assert facts.longitude == pytest.approx(SYDNEY[1], abs=1e-5)


def test_no_exif_is_empty_facts() -> None:
    assert _facts(photo()) == ExifFacts()


def test_header_only_read_of_a_file(tmp_path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(photo(**FULL))
    assert _close(read_exif_of(path), EXPECTED)
    assert read_exif_of(tmp_path / "gone.jpg") == ExifFacts()
    (tmp_path / "notes.jpg").write_text("not an image")
    assert read_exif_of(tmp_path / "notes.jpg") == ExifFacts()


# --- bad values: that field empty, the rest kept, nothing raised --------------------------


@pytest.mark.parametrize(
    ("tags", "empty"),
    [
        ({"taken": "0000:00:00 00:00:00"}, "taken"),
        ({"taken": "9999:12:31 23:59:59"}, "taken"),
        ({"taken": "2019:02:30 10:00:00"}, "taken"),
        ({"taken": "    :  :     :  :  "}, "taken"),
        ({"taken": "yesterday-ish"}, "taken"),
        ({"offset": "+25:00"}, "offset"),
        ({"offset": "local"}, "offset"),
        (
            {
                "raw_gps": {
                    1: b"N",
                    2: ((1000, 1), (0, 1), (0, 1)),
                    3: b"E",
                    4: ((10, 1), (0, 1), (0, 1)),
                }
            },
            "latitude",
        ),
        (
            {
                "raw_gps": {
                    1: b"N",
                    2: ((10, 1), (0, 1), (0, 1)),
                    3: b"E",
                    4: ((500, 1), (0, 1), (0, 1)),
                }
            },
            "longitude",
        ),
        (
            {
                "raw_gps": {
                    1: b"N",
                    2: ((10, 0), (0, 0), (0, 0)),
                    3: b"E",
                    4: ((10, 1), (0, 1), (0, 1)),
                }
            },
            "latitude",
        ),
        (
            {
                "raw_gps": {
                    1: b"N",
                    2: ((0, 1), (0, 1), (0, 1)),
                    3: b"E",
                    4: ((0, 1), (0, 1), (0, 1)),
                }
            },
            "latitude",
        ),
        ({"raw_gps": {1: b"N", 3: b"E", 4: ((10, 1), (0, 1), (0, 1))}}, "latitude"),
        ({"lens": "----"}, "lens"),
        ({"make": "\x00\x00 ", "model": " \x00"}, "camera"),
    ],
)
def test_bad_values_leave_the_field_empty(tags: dict, empty: str) -> None:
    good = {
        k: v for k, v in FULL.items() if k not in tags and not (k == "gps" and "raw_gps" in tags)
    }
    if empty == "offset":
        good["taken"] = FULL["taken"]
    facts = _facts(photo(**good, **tags))
    assert getattr(facts, empty) is None
    if empty in {"latitude", "longitude"}:
        assert facts.latitude is None and facts.longitude is None  # a position is both or none
    kept = {"taken", "camera", "lens"} - {empty}
    for name in kept:
        assert getattr(facts, name) == getattr(EXPECTED, name), name


def test_corrupt_exif_block_is_indexed_without_facts() -> None:
    """A truncated EXIF segment: the image decodes, its facts are empty, nothing raises."""
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 200, 30)).save(
        out, "JPEG", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01"
    )
    decoded = decode(out.getvalue(), "corrupt-exif.jpg")
    assert decoded.image.size == (32, 24)
    assert decoded.info.exif == ExifFacts()


def test_a_tag_of_the_wrong_type_costs_only_that_field() -> None:
    exif = Image.Exif()
    exif[0x010F] = 12345  # Make as a number
    exif[0x0110] = "EOS R5"
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = b"\xff\xfe\x00garbage"
    sub[0xA434] = "RF24-105mm F4 L IS USM"
    facts = read_exif(exif)
    assert facts.taken is None and facts.camera == "EOS R5"
    assert facts.lens == "RF24-105mm F4 L IS USM"


# --- the pieces ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019:07:14 18:30:05", datetime(2019, 7, 14, 18, 30, 5)),
        ("2019-07-14 18:30:05\x00", datetime(2019, 7, 14, 18, 30, 5)),
        ("2019:07:14 18:30", datetime(2019, 7, 14, 18, 30)),
        ("1826:01:01 00:00:00", datetime(1826, 1, 1)),
        ("1825:12:31 23:59:59", None),
        ("0000:00:00 00:00:00", None),
        ("9999:12:31 23:59:59", None),
        ("2019:13:01 00:00:00", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_datetime(text: str | None, expected: datetime | None) -> None:
    assert parse_datetime(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+01:00", timedelta(hours=1)),
        ("-05:30", -timedelta(hours=5, minutes=30)),
        ("+0900", timedelta(hours=9)),
        ("Z", timedelta(0)),
        ("+14:00", timedelta(hours=14)),
        ("+14:30", None),
        ("+01:75", None),
        ("   :  ", None),
        (None, None),
    ],
)
def test_parse_offset(text: str | None, expected: timedelta | None) -> None:
    assert parse_offset(text) == expected


@pytest.mark.parametrize(
    ("make", "model", "camera"),
    [
        ("Canon", "Canon EOS 5D Mark IV", "Canon EOS 5D Mark IV"),
        ("NIKON CORPORATION", "NIKON D750", "Nikon D750"),
        ("NIKON CORPORATION", "D750", "Nikon D750"),
        ("Apple", "iPhone 12", "Apple iPhone 12"),
        ("SONY", "ILCE-7M3", "Sony ILCE-7M3"),
        ("FUJIFILM", "X-T3", "Fujifilm X-T3"),
        ("OLYMPUS IMAGING CORP.", "E-M5MarkII", "Olympus E-M5MarkII"),
        ("OM Digital Solutions", "OM-1", "OM System OM-1"),
        ("samsung", "SM-G991B", "Samsung SM-G991B"),
        ("LEICA CAMERA AG", "LEICA Q2", "Leica Q2"),
        ("Google", "Pixel 7", "Google Pixel 7"),
        ("HUAWEI", "HUAWEI P30", "Huawei P30"),
        ("Panasonic", "DMC-GH4", "Panasonic DMC-GH4"),
        ("Acme Optics Co., Ltd.", "Zoom 3000", "Acme Optics Zoom 3000"),
        ("DJI", "FC3170", "DJI FC3170"),
        (None, "Some Phone", "Some Phone"),
        ("Canon", None, "Canon"),
        (None, None, None),
    ],
)
def test_tidy_camera(make: str | None, model: str | None, camera: str | None) -> None:
    assert tidy_camera(make, model) == camera


def test_tidy_make_keeps_names_it_does_not_know() -> None:
    assert tidy_make("Hasselblad") == "Hasselblad"
    assert tidy_make("ZEISS") == "Zeiss"
    assert tidy_make("RED") == "RED"  # three letters: an acronym, left as written


def test_camera_tags_are_trimmed_of_nul_and_spaces() -> None:
    facts = _facts(photo(make="Canon\x00\x00", model="  Canon EOS R5 \x00"))
    assert facts.camera == "Canon EOS R5"
