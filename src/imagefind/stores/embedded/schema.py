"""The SQLite catalog's schema, as an ordered list of migrations (``PRAGMA user_version``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

_SCHEMA_V1 = (
    """CREATE TABLE images (
        id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: ids leak into caches and URLs
        path TEXT UNIQUE, upload_key TEXT UNIQUE, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
        mtime REAL, width INTEGER NOT NULL, height INTEGER NOT NULL, format TEXT NOT NULL,
        taken_at TEXT, added_at REAL NOT NULL,
        CHECK (path IS NOT NULL OR upload_key IS NOT NULL))""",
    "CREATE INDEX images_sha256 ON images(sha256)",
    "CREATE INDEX images_newest ON images(added_at DESC, id DESC)",
    """CREATE TABLE vectors (
        image_id INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
        vector BLOB NOT NULL)""",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "INSERT INTO meta (key, value) VALUES ('generation', '0')",
)


def _migrate_v1(conn: sqlite3.Connection) -> None:
    """Initial schema (statement by statement: executescript would commit)."""
    for statement in _SCHEMA_V1:
        conn.execute(statement)


def _migrate_v2(conn: sqlite3.Connection) -> None:
    """Uploads keep the file name they arrived with, for display."""
    conn.execute("ALTER TABLE images ADD COLUMN name TEXT")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_v1, _migrate_v2]
"""Ordered; migration i takes a catalog from schema version i to i + 1. Append only."""

SCHEMA_VERSION = len(MIGRATIONS)
