"""A library made by the previous release's schema (the migrations before
``_migrate_metadata``): opening it adds the metadata columns, and the next ``imagefind index``
fills them from the files' headers with 0 images encoded; on each store."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imagefind import Library
from imagefind.cli import app
from imagefind.metadata import META_VERSION
from imagefind.stores.embedded import schema as sqlite_schema
from imagefind.stores.postgres import schema as pg_schema
from tests.exifkit import LISBON, photo

FILES = {
    "a/lisbon.jpg": photo(
        seed=1, taken="2019:07:14 18:30:05", make="Canon", model="Canon EOS R5", gps=LISBON
    ),
    "a/plain.png": photo("PNG", size=(30, 50), seed=2),
    "b/local.webp": photo("WEBP", seed=3, taken="2018:12:24 20:00:00", lens="RF50mm F1.8 STM"),
}
MTIME = 1_563_125_405.0


def _before_metadata_sqlite() -> int:
    return sqlite_schema.MIGRATIONS.index(sqlite_schema._migrate_metadata)


def _before_metadata_pg() -> int:
    return next(i for i, m in enumerate(pg_schema.MIGRATIONS) if m is pg_schema._METADATA)


def _old_sqlite(new: Path, old: Path) -> None:
    """``old``: a catalog built by the migrations before the metadata one, holding the
    rows of ``new`` as the previous release wrote them (its columns, its naive EXIF time)."""
    k = _before_metadata_sqlite()
    old.mkdir(parents=True)
    conn = sqlite3.connect(old / "catalog.sqlite3", isolation_level=None)
    conn.execute("BEGIN")
    for migration in sqlite_schema.MIGRATIONS[:k]:
        migration(conn)
    conn.execute(f"PRAGMA user_version = {k:d}")
    columns = ", ".join(row[1] for row in conn.execute("PRAGMA table_info(images)"))
    assert "meta_version" not in columns and "camera" not in columns
    conn.execute("ATTACH DATABASE ? AS new", (str(new / "catalog.sqlite3"),))
    conn.execute(f"INSERT INTO images ({columns}) SELECT {columns} FROM new.images")
    conn.execute("UPDATE images SET taken_at = substr(taken_at, 1, 19)")
    conn.execute("INSERT INTO vectors SELECT * FROM new.vectors")
    conn.execute("INSERT INTO meta SELECT * FROM new.meta WHERE key LIKE 'model_%'")
    conn.execute("COMMIT")
    conn.execute("DETACH DATABASE new")
    conn.close()


def _old_postgres(new_url: str, old_url: str, dim: int) -> None:
    """The same for PostgreSQL: ``old_url`` gets the schema before the metadata migration
    and the rows of ``new_url`` as the previous release wrote them."""
    import psycopg

    k = _before_metadata_pg()
    with (
        psycopg.connect(old_url, autocommit=True) as conn,
        psycopg.connect(new_url) as src,
        conn.transaction(),
    ):
        for migration in pg_schema.MIGRATIONS[:k]:
            for statement in migration:
                conn.execute(statement)
        conn.execute("INSERT INTO meta VALUES ('schema_version', %s)", (str(k),))
        names = [
            row[0]
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'images' ORDER BY ordinal_position"
            )
        ]
        assert "meta_version" not in names and "camera" not in names
        columns = ", ".join(names)
        marks = ", ".join(["%s"] * len(names))
        rows = src.execute(f"SELECT {columns} FROM images").fetchall()
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO images ({columns}) VALUES ({marks})", rows)
            conn.execute("UPDATE images SET taken_at = left(taken_at, 19)")
            pg_schema.bind_dimension(conn, dim)
            vectors = src.execute("SELECT image_id, embedding::text FROM vectors").fetchall()
            cur.executemany("INSERT INTO vectors VALUES (%s, %s::halfvec)", vectors)
            meta = src.execute("SELECT key, value FROM meta WHERE key LIKE 'model_%'")
            cur.executemany("INSERT INTO meta VALUES (%s, %s)", meta.fetchall())
        conn.execute("SELECT setval(pg_get_serial_sequence('images', 'id'), max(id)) FROM images")


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    for name, data in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (MTIME, MTIME))
    return root


def test_previous_schema_is_migrated_and_filled_with_nothing_encoded(
    store: str | None,
    request: pytest.FixtureRequest,
    photos: Path,
    tmp_path: Path,
    tiny_model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The rows (and vectors) an index makes, with an upload among them...
    new_lib, old_lib = tmp_path / "new", tmp_path / "old"
    with Library.open(new_lib, model=str(tiny_model_dir), store=store or "") as lib:
        lib.index([photos])
        upload = lib.add(photo(seed=7, gps=LISBON), name="up.jpg")
        dim = lib.model.dim
    # ...as the previous release's schema holds them (uploads' originals in the library).
    if store:
        old_url = request.getfixturevalue("pg_server").new_database()
        _old_postgres(store, old_url, dim)
        old_lib.mkdir()
        monkeypatch.setenv("IMAGEFIND_STORE", old_url)
    else:
        _old_sqlite(new_lib, old_lib)
        monkeypatch.delenv("IMAGEFIND_STORE", raising=False)
    (new_lib / "uploads").rename(old_lib / "uploads")
    monkeypatch.setenv("IMAGEFIND_HOME", str(old_lib))
    monkeypatch.setenv("IMAGEFIND_MODEL", str(tiny_model_dir))
    runner = CliRunner()

    result = runner.invoke(app, ["index", str(photos), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["encoded"] == 0 and summary["added"] == 0
    assert summary["unchanged"] == len(FILES)
    assert summary["metadata_read"] == len(FILES) + 1  # the upload too

    with Library.open(old_lib, store=os.environ.get("IMAGEFIND_STORE", "")) as lib:
        rows = {Path(r.path).name if r.path else "upload": r for r in lib.store.page(0, 10)}
        assert all(r.meta_version == META_VERSION for r in rows.values())
        lisbon = rows["lisbon.jpg"]
        assert (lisbon.taken_at, lisbon.taken_at_source) == ("2019-07-14T18:30:05+01:00", "exif")
        assert lisbon.camera == "Canon EOS R5" and lisbon.city == "Lisbon"
        assert lisbon.folder == str(photos / "a")
        assert rows["plain.png"].taken_at_source == "file"
        assert rows["plain.png"].orientation == "portrait"
        assert rows["local.webp"].taken_at_source == "exif-local"
        assert rows["local.webp"].lens == "RF50mm F1.8 STM"
        assert rows["upload"].id == upload.id and rows["upload"].city == "Lisbon"
        assert rows["upload"].folder is None

    again = runner.invoke(app, ["index", str(photos)])  # human output: nothing left to read
    assert again.exit_code == 0, again.output
    assert "metadata re-read" not in again.stdout and "encoded 0" in again.stdout


def test_human_summary_says_how_many_were_read(
    photos: Path, tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new_lib, old_lib = tmp_path / "new", tmp_path / "old"
    with Library.open(new_lib, model=str(tiny_model_dir), store="") as lib:
        lib.index([photos])
    _old_sqlite(new_lib, old_lib)
    monkeypatch.delenv("IMAGEFIND_STORE", raising=False)
    monkeypatch.setenv("IMAGEFIND_HOME", str(old_lib))
    monkeypatch.setenv("IMAGEFIND_MODEL", str(tiny_model_dir))
    result = CliRunner().invoke(app, ["index", str(photos)])
    assert result.exit_code == 0, result.output
    assert "encoded 0" in result.stdout
    assert f"metadata re-read from {len(FILES)} file headers (none encoded)" in result.stdout
