"""``imagefind store copy``: SQLite to PostgreSQL and back, ids and vectors kept, no
re-encoding, counts checked; refusals that protect data."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from imagefind import Library
from imagefind.cli import app
from tests.conftest import PHOTO_COUNT
from tests.synth import natural_image


@pytest.fixture(autouse=True)
def _embedded_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMAGEFIND_STORE", raising=False)


@pytest.fixture
def indexed(tmp_path: Path, tiny_model_dir: Path, photo_folder: Path) -> Path:
    """An embedded library over the photo folder."""
    folder = tmp_path / "library"
    with Library.open(folder, model=str(tiny_model_dir), store="") as lib:
        lib.index([photo_folder])
    return folder


def _jpeg(seed: int) -> bytes:
    out = io.BytesIO()
    natural_image(200, 150, seed=seed).save(out, "JPEG", quality=90)
    return out.getvalue()


def _copy(src: str, dst: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, ["store", "copy", src, dst])
    assert result.exit_code == code, result.output
    return result.output


def _snapshot(lib: Library) -> tuple[list, np.ndarray, list]:
    ids, vectors = lib.store.vectors()
    rows = [lib.store.get(int(i)) for i in ids]  # whole rows: mtime and float times too
    hits = [(h.id, round(h.score, 3)) for h in lib.search("a red square", k=10)]
    return rows, vectors, hits


def test_round_trip_keeps_rows_vectors_and_results(
    indexed: Path, pg_url: str, tmp_path: Path
) -> None:
    with Library.open(indexed, store="") as lib:
        upload = lib.add(_jpeg(1), name="upload.jpg")
        before = _snapshot(lib)
    total = PHOTO_COUNT + 1
    assert "counts match" in _copy(str(indexed), pg_url)
    with Library.open(indexed, store=pg_url) as lib:  # same folder: thumbnails, uploads
        on_pg = _snapshot(lib)
        assert lib.thumbnail_path(upload.id).is_file()
        assert lib.original_path(upload.id).read_bytes() == _jpeg(1)
        assert lib.get(upload.id).name == "upload.jpg"
        assert lib.stats().count == total
        assert [r.path for r in lib.roots.all()] == [str(indexed.parent / "photos")]
        summary = lib.index()  # the roots came along
        assert summary.encoded == 0 and summary.unchanged == PHOTO_COUNT
    assert on_pg[0] == before[0]  # ids, paths, times, names: row for row
    np.testing.assert_array_equal(on_pg[1], before[1])  # float16 both sides: bit for bit
    assert on_pg[2] == before[2]
    back = tmp_path / "back"
    out = json.loads(
        CliRunner().invoke(app, ["store", "copy", pg_url, str(back), "--json"]).stdout
    )
    assert out["images"] == total
    with Library.open(back, store="") as lib:
        again = _snapshot(lib)
        new = lib.add(_jpeg(2))
        assert new.id > max(r.id for r in before[0])  # the id sequence moved past the copy
    assert again[0] == before[0] and again[2] == before[2]
    np.testing.assert_array_equal(again[1], before[1])


def test_new_rows_after_copy_to_postgres_get_fresh_ids(indexed: Path, pg_url: str) -> None:
    _copy(str(indexed), pg_url)
    with Library.open(indexed, store=pg_url) as lib:
        top = max(int(i) for i in lib.store.vectors()[0])
        assert lib.add(_jpeg(3)).id == top + 1
        assert lib.count() == PHOTO_COUNT + 1


def test_refuses_a_full_destination_and_a_missing_source(
    indexed: Path, pg_url: str, tmp_path: Path
) -> None:
    _copy(str(indexed), pg_url)
    again = _copy(str(indexed), pg_url, code=1)
    assert f"already holds {PHOTO_COUNT} image(s); copy into an empty store" in again
    missing = _copy(str(tmp_path / "nowhere"), str(tmp_path / "dst"), code=1)
    assert "no library here" in missing
    assert not (tmp_path / "nowhere").exists()
