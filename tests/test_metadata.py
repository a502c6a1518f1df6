"""Circumstance recorded at index time and for uploads, on each store: what a row holds and
what each JSON hit's image carries; a moved file's folder follows it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imagefind import Library
from imagefind.cli import app
from imagefind.metadata import META_VERSION, Circumstance, describe, orientation
from imagefind.metadata.exif import ExifFacts
from imagefind.records import ImageRecord
from imagefind.stores.columns import METADATA_COLUMNS
from tests.exifkit import LISBON, TOKYO, photo

MTIME = 1_563_125_405.0  # 2019-07-14T17:30:05Z

# name -> (file bytes, what its row records)
FILES = {
    "trip/lisbon.jpg": (
        photo(
            size=(64, 48),
            seed=1,
            taken="2019:07:14 18:30:05",
            offset="+01:00",
            make="NIKON CORPORATION",
            model="NIKON D750",
            lens="24.0-120.0 mm f/4.0",
            gps=LISBON,
        ),
        {
            "taken_at": "2019-07-14T18:30:05+01:00",
            "taken_at_source": "exif",
            "taken_local": "2019-07-14T18:30:05",
            "camera": "Nikon D750",
            "lens": "24.0-120.0 mm f/4.0",
            "orientation": "landscape",
            "city": "Lisbon",
            "country_code": "PT",
            "place": "Lisbon, Portugal",
        },
    ),
    "trip/tokyo.heic": (
        photo("HEIF", size=(40, 60), seed=2, taken="2020:03:01 09:15:00", gps=TOKYO),
        {
            "taken_at": "2020-03-01T09:15:00+09:00",
            "taken_at_source": "exif",
            "orientation": "portrait",
            "place": "Tokyo, Japan",
            "country_code": "JP",
            "camera": None,
        },
    ),
    "home/scan.png": (
        photo("PNG", size=(50, 50), seed=3),
        {"taken_at_source": "file", "orientation": "square", "place": None, "camera": None},
    ),
    "home/local.webp": (
        photo(
            "WEBP",
            size=(60, 40),
            seed=4,
            taken="2018:12:24 20:00:00",
            make="Apple",
            model="iPhone 12",
        ),
        {
            "taken_at": "2018-12-24T20:00:00",
            "taken_at_source": "exif-local",
            "camera": "Apple iPhone 12",
            "latitude": None,
        },
    ),
    "home/bad.jpg": (  # year 9999, latitude 1000: those fields empty, the image indexed
        photo(
            seed=5,
            taken="9999:12:31 23:59:59",
            make="Canon",
            model="Canon EOS 5D Mark IV",
            raw_gps={1: b"N", 2: ((1000, 1), (0, 1), (0, 1)), 3: b"E", 4: ((9, 1), (0, 1), (0, 1))},
        ),
        {
            "taken_at_source": "file",
            "camera": "Canon EOS 5D Mark IV",
            "latitude": None,
            "longitude": None,
            "place": None,
        },
    ),
}


@pytest.fixture(autouse=True)
def _on_each_store(store: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if store:
        monkeypatch.setenv("IMAGEFIND_STORE", store)
    else:
        monkeypatch.delenv("IMAGEFIND_STORE", raising=False)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    for name, (data, _) in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (MTIME, MTIME))
    return root


@pytest.fixture
def lib(tmp_path: Path, tiny_model_dir: Path) -> Library:
    library = Library.open(tmp_path / "lib", model=str(tiny_model_dir))
    yield library
    library.close()


def _check(row: ImageRecord | dict, expected: dict) -> None:
    get = row.get if isinstance(row, dict) else lambda k: getattr(row, k)
    for key, value in expected.items():
        assert get(key) == value, key


def test_index_records_circumstance(lib: Library, photos: Path) -> None:
    summary = lib.index([photos])
    assert summary.added == len(FILES) and summary.metadata_read == 0
    for name, (_, expected) in FILES.items():
        row = lib.store.by_path(str(photos / name))
        assert row is not None
        _check(row, expected)
        assert row.folder == str((photos / name).parent)
        assert row.meta_version == META_VERSION
    lisbon = lib.store.by_path(str(photos / "trip/lisbon.jpg"))
    assert lisbon.latitude == pytest.approx(LISBON[0], abs=1e-5)
    assert lisbon.longitude == pytest.approx(LISBON[1], abs=1e-5)
    assert lisbon.region == "Lisbon" and lisbon.country == "Portugal"


def test_upload_records_circumstance_without_folder_or_file_time(lib: Library) -> None:
    data, expected = FILES["trip/lisbon.jpg"]
    added = lib.add(data, name="lisbon.jpg")
    _check(lib.store.get(added.id), expected)
    assert added.image.place == "Lisbon, Portugal" and added.image.camera == "Nikon D750"
    assert added.image.folder is None
    plain = lib.add(photo(seed=9), name="plain.jpg")
    row = lib.store.get(plain.id)
    assert row.taken_at is None and row.taken_at_source is None and row.folder is None
    assert row.orientation == "landscape" and row.meta_version == META_VERSION


def test_moved_file_and_copy_keep_their_own_folder(lib: Library, photos: Path) -> None:
    lib.index([photos])
    moved = photos / "elsewhere" / "lisbon.jpg"
    moved.parent.mkdir()
    (photos / "trip/lisbon.jpg").rename(moved)
    shutil.copy2(moved, photos / "home" / "lisbon-copy.jpg")
    summary = lib.index([photos])
    assert summary.renamed == 1 and summary.encoded == 0
    row = lib.store.by_path(str(moved))
    assert row.folder == str(moved.parent) and row.camera == "Nikon D750"
    copy = lib.store.by_path(str(photos / "home" / "lisbon-copy.jpg"))
    assert copy.folder == str(photos / "home") and copy.city == "Lisbon"


def test_search_json_hits_carry_circumstance(
    photos: Path, tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEFIND_HOME", str(tmp_path / "cli-lib"))
    monkeypatch.setenv("IMAGEFIND_MODEL", str(tiny_model_dir))
    runner = CliRunner()
    assert runner.invoke(app, ["index", str(photos), "--json"]).exit_code == 0
    result = runner.invoke(app, ["search", "a photo", "-k", "10", "--json"])
    assert result.exit_code == 0, result.output
    images = {Path(h["image"]["path"]).name: h["image"] for h in json.loads(result.stdout)["hits"]}
    assert len(images) == len(FILES)
    for key in (
        "taken_at",
        "taken_at_source",
        "camera",
        "lens",
        "latitude",
        "longitude",
        "place",
        "width",
        "height",
        "orientation",
        "folder",
        "country_code",
    ):
        assert all(key in image for image in images.values()), key
    shown = {k: v for k, v in FILES["trip/lisbon.jpg"][1].items() if k != "city"}  # in place
    _check(images["lisbon.jpg"], shown)
    assert (images["tokyo.heic"]["width"], images["tokyo.heic"]["height"]) == (40, 60)


# --- the pieces ----------------------------------------------------------------------------


def test_circumstance_fields_are_the_metadata_columns() -> None:
    assert tuple(Circumstance.__dataclass_fields__) == METADATA_COLUMNS


@pytest.mark.parametrize(
    ("size", "expected"),
    [((4, 3), "landscape"), ((3, 4), "portrait"), ((5, 5), "square"), ((0, 5), None)],
)
def test_orientation(size: tuple[int, int], expected: str | None) -> None:
    assert orientation(*size) == expected


def test_describe_never_raises_on_a_broken_gazetteer(monkeypatch: pytest.MonkeyPatch) -> None:
    from imagefind.metadata import places

    def broken() -> None:
        raise OSError("data missing")

    monkeypatch.setattr(places, "_gazetteer", broken)
    found = describe(ExifFacts(latitude=LISBON[0], longitude=LISBON[1]), 4, 3, "/a/b.jpg", None)
    assert found.city is None and found.latitude == LISBON[0] and found.folder == "/a"


def test_http_upload_and_image_carry_circumstance(lib: Library) -> None:
    from fastapi.testclient import TestClient

    from imagefind.web import create_app

    data, expected = FILES["trip/lisbon.jpg"]
    with TestClient(create_app(lib)) as client:
        r = client.post("/api/images", files=[("files", ("lisbon.jpg", data, "image/jpeg"))])
        assert r.status_code in (200, 201), r.text
        image = r.json()["added"][0]["image"]
        assert image["place"] == "Lisbon, Portugal" and image["folder"] is None
        got = client.get(f"/api/images/{image['id']}").json()
        shown = {k: v for k, v in expected.items() if k != "city"}
        _check(got, shown)
        schema = client.get("/api/openapi.json").json()["components"]["schemas"]["ImageOut"]
        assert {"taken_at_source", "camera", "place", "orientation"} <= set(schema["properties"])
