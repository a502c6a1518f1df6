"""catalog: opening, schema and migrations, refusals, the bound model."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from imagefind.errors import LibraryError
from imagefind.records import ModelIdentity
from imagefind.stores.embedded import catalog as catalog_module
from imagefind.stores.embedded.catalog import SCHEMA_VERSION, Catalog
from tests.catalogkit import MODEL, item, unit
from tests.catalogkit import cat_fixture as cat_fixture  # fixture: cat
from tests.catalogkit import db_path_fixture as db_path_fixture  # fixture: db_path


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


# --- opening and migrations ---------------------------------------------------------------


def test_open_creates_parents_and_schema(db_path: Path) -> None:
    with Catalog.open(db_path) as c:
        assert c.count() == 0
        assert c.model() is None
        assert c.generation() == 0
        conn = c._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert user_version(db_path) == SCHEMA_VERSION


@pytest.mark.parametrize("kind", ["empty file", "v0 database"])
def test_v0_is_migrated(db_path: Path, kind: str) -> None:
    db_path.parent.mkdir(parents=True)
    if kind == "empty file":
        db_path.write_bytes(b"")
    else:
        sqlite3.connect(db_path).close()
    with Catalog.open(db_path) as c:
        c.bind_model(MODEL)
        assert c.add([item("/a.jpg")], unit(1)) == [1]
    assert user_version(db_path) == SCHEMA_VERSION


def test_reopen_keeps_data(db_path: Path) -> None:
    with Catalog.open(db_path) as c:
        c.bind_model(MODEL)
        c.add([item("/a.jpg")], unit(1))
    with Catalog.open(db_path) as c:
        assert c.count() == 1
        assert c.model() == MODEL


def test_migrations_run_in_order(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Catalog.open(db_path) as c:
        c.bind_model(MODEL)
        c.add([item("/a.jpg")], unit(1))
    calls: list[int] = []

    def v2(conn: sqlite3.Connection) -> None:
        calls.append(2)
        conn.execute("ALTER TABLE images ADD COLUMN rating INTEGER")

    monkeypatch.setattr(catalog_module, "MIGRATIONS", [*catalog_module.MIGRATIONS, v2])
    monkeypatch.setattr(catalog_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with Catalog.open(db_path) as c:
        assert c.count() == 1
    with Catalog.open(db_path):
        pass
    assert calls == [2]
    assert user_version(db_path) == SCHEMA_VERSION + 1


def test_newer_schema_refused(db_path: Path) -> None:
    Catalog.open(db_path).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(LibraryError, match="newer than this imagefind supports") as err:
        Catalog.open(db_path)
    assert str(db_path) in str(err.value)
    assert "upgrade imagefind" in str(err.value)


@pytest.mark.parametrize(
    "content",
    [b"this is a text file, not a database\n" * 10, bytes(range(256)) * 8],
    ids=["text", "binary"],
)
def test_not_sqlite_refused(db_path: Path, content: bytes) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(content)
    with pytest.raises(LibraryError, match="not an imagefind catalog") as err:
        Catalog.open(db_path)
    assert str(err.value).startswith(str(db_path))
    assert db_path.read_bytes() == content  # untouched


def test_foreign_sqlite_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    with pytest.raises(LibraryError, match="not an imagefind catalog"):
        Catalog.open(db_path)


def test_directory_refused(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="is a directory"):
        Catalog.open(tmp_path)


def test_closed_catalog_raises_library_error(cat: Catalog) -> None:
    cat.close()
    with pytest.raises(LibraryError):
        cat.count()


# --- model --------------------------------------------------------------------------------


def test_bind_model_round_trip_and_bumps(cat: Catalog) -> None:
    assert cat.model() == MODEL
    before = cat.generation()
    other = ModelIdentity(name="other", dim=4, fingerprint="f")
    cat.bind_model(other)
    assert cat.model() == other
    assert cat.generation() == before + 1
