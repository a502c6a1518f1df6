"""metadata.refill and the stores' metadata rows: stale rows are read again from their
files' headers, in id order past any batch size, with no vector touched; on each store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from imagefind.metadata import META_VERSION, refill
from imagefind.metadata.refill import refill_metadata
from imagefind.records import NewImage
from imagefind.stores import Store, open_store
from imagefind.stores.columns import METADATA_COLUMNS
from tests.catalogkit import MODEL, unit
from tests.exifkit import TOKYO, photo


@pytest.fixture
def db(store: str | None, tmp_path: Path) -> Iterator[Store]:
    opened = open_store(store, tmp_path / "lib")
    opened.bind_model(MODEL)
    yield opened
    opened.close()


def _row(path: str | None, sha: str, upload: bool = False) -> NewImage:
    """A row as the previous release wrote it: no metadata read (meta_version NULL)."""
    return NewImage(
        path=None if upload else path,
        upload_key=sha if upload else None,
        sha256=sha,
        size=1,
        mtime=None if upload else 1_563_125_405.0,
        width=30,
        height=40,
        format="JPEG",
        taken_at=None,
    )


def test_stale_rows_are_filled_past_batches_and_missing_files_wait(
    db: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(refill, "BATCH", 2)
    folder = tmp_path / "photos"
    folder.mkdir()
    paths = []
    for i in range(5):
        path = folder / f"{i}.jpg"
        path.write_bytes(photo(seed=i, taken=f"2020:01:0{i + 1} 10:00:00", gps=TOKYO))
        paths.append(str(path))
    rows = [_row(p, f"{i:064x}") for i, p in enumerate(paths)]
    rows.insert(2, _row(str(folder / "gone.jpg"), "e" * 64))  # not there: left stale
    rows.append(_row(None, "f" * 64, upload=True))
    upload = tmp_path / "upload.jpg"
    upload.write_bytes(photo(seed=9))
    ids = db.add(rows, unit(len(rows)))
    before = db.vectors()
    generation = db.generation()

    heard: list[tuple[int, int]] = []
    filled = refill_metadata(
        db, lambda sha: upload if sha == "f" * 64 else None, lambda *p: heard.append(p)
    )

    assert filled == 6
    assert heard == [(2, 7), (4, 7), (6, 7), (7, 7)]  # batches of 2, the missing file counted
    assert db.generation() > generation  # the stores' caches see the change
    np.testing.assert_array_equal(db.vectors()[1], before[1])
    records = db.get_many(ids)
    for i, path in enumerate(paths):
        rec = db.by_path(path)
        assert rec is not None and rec.meta_version == META_VERSION
        assert rec.taken_at == f"2020-01-0{i + 1}T10:00:00+09:00" and rec.city == "Tokyo"
        assert rec.orientation == "portrait" and rec.folder == str(folder)
    gone = db.by_path(str(folder / "gone.jpg"))
    assert gone is not None and gone.meta_version is None
    uploaded = next(r for r in records.values() if r.upload_key)
    assert uploaded.meta_version == META_VERSION and uploaded.folder is None
    assert uploaded.taken_at is None  # an upload has no file time to fall back on
    assert [r.id for r in db.stale_metadata(META_VERSION, 0, 10)] == [gone.id]
    assert refill_metadata(db, lambda sha: None) == 0


def test_update_metadata_writes_every_metadata_column(db: Store, tmp_path: Path) -> None:
    (image_id,) = db.add([_row("/x/a.jpg", "a" * 64)], unit(1))
    values = {c: None for c in METADATA_COLUMNS} | {
        "taken_at": "2019-07-14T18:30:05+01:00",
        "camera": "Canon EOS R5",
        "latitude": 38.5,
        "country_code": "PT",
        "folder": "/x",
        "meta_version": 7,
    }
    db.update_metadata([(image_id, values), (image_id + 99, values)])  # unknown id: passed over
    rec = db.get(image_id)
    assert {c: getattr(rec, c) for c in METADATA_COLUMNS} == values
    assert db.stale_metadata(8, 0, 10)[0].id == image_id
    assert db.stale_metadata(7, 0, 10) == []
    assert db.stale_metadata(8, image_id, 10) == []


def test_relink_moves_the_folder(db: Store) -> None:
    (image_id,) = db.add([_row("/old/place/a.jpg", "b" * 64)], unit(1))
    db.relink(image_id, "/new/place/a.jpg", 1, 2.0)
    assert db.get(image_id).folder == "/new/place"


def test_refill_reads_headers_only(db: Store, tmp_path: Path) -> None:
    """No decode for the model: a JPEG whose pixel data is cut off still gives its EXIF."""
    path = tmp_path / "cut.jpg"
    data = photo(size=(640, 480), seed=3, make="Canon", model="Canon EOS R5")
    path.write_bytes(data[: len(data) // 2])
    os.utime(path, (1.0e9, 1.0e9))
    db.add([_row(str(path), "c" * 64)], unit(1))
    assert refill_metadata(db, lambda sha: None) == 1
    rec = db.by_path(str(path))
    assert rec is not None and rec.camera == "Canon EOS R5"
