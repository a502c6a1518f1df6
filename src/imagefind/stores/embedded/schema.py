"""The SQLite catalog's schema, as an ordered list of migrations (``PRAGMA user_version``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from imagefind.stores.columns import columns_until, first_schema, metadata_schema

TYPES = {
    "id": "INTEGER PRIMARY KEY AUTOINCREMENT",  # never reused: ids leak into caches and URLs
    "path": "TEXT",
    "text": "TEXT",
    "int": "INTEGER",
    "real": "REAL",
}

# `name` came with version 2.
_SCHEMA_V1 = first_schema(TYPES, columns_until("added_at"), "vector BLOB")


def _migrate_v1(conn: sqlite3.Connection) -> None:
    """Initial schema (statement by statement: executescript would commit)."""
    for statement in _SCHEMA_V1:
        conn.execute(statement)


def _migrate_v2(conn: sqlite3.Connection) -> None:
    """Uploads keep the file name they arrived with, for display."""
    conn.execute("ALTER TABLE images ADD COLUMN name TEXT")


def _migrate_metadata(conn: sqlite3.Connection) -> None:
    """When, where and which camera: columns for filters and display, indexed; rows from
    before stay ``meta_version`` NULL until the next index re-reads their headers."""
    for statement in metadata_schema(TYPES):
        conn.execute(statement)


def _migrate_ocr(conn: sqlite3.Connection) -> None:
    """Text found in images (OCR): one row per image once read, and its full-text index.
    ``norm`` is the compact searchable form (``ocr.textquery.compact``), indexed by FTS5
    trigrams so a word is found inside longer strings; an external-content index kept in
    step by triggers (a cascade from ``images`` fires them too)."""
    for statement in _OCR:
        conn.execute(statement)


_OCR = (
    """CREATE TABLE image_text (
        image_id INTEGER PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE,
        text TEXT NOT NULL,
        norm TEXT NOT NULL,
        confidence REAL,
        boxes TEXT NOT NULL,
        engine TEXT NOT NULL,
        error TEXT,
        read_at REAL NOT NULL)""",
    "CREATE VIRTUAL TABLE image_text_fts USING fts5(norm, content='image_text', "
    "content_rowid='image_id', tokenize='trigram case_sensitive 0')",
    "CREATE TRIGGER image_text_ai AFTER INSERT ON image_text BEGIN "
    "INSERT INTO image_text_fts (rowid, norm) VALUES (new.image_id, new.norm); END",
    "CREATE TRIGGER image_text_ad AFTER DELETE ON image_text BEGIN "
    "INSERT INTO image_text_fts (image_text_fts, rowid, norm) "
    "VALUES ('delete', old.image_id, old.norm); END",
    "CREATE TRIGGER image_text_au AFTER UPDATE ON image_text BEGIN "
    "INSERT INTO image_text_fts (image_text_fts, rowid, norm) "
    "VALUES ('delete', old.image_id, old.norm); "
    "INSERT INTO image_text_fts (rowid, norm) VALUES (new.image_id, new.norm); END",
)


def _migrate_roots(conn: sqlite3.Connection) -> None:
    """The folders a library follows (``index`` with no argument, ``watch``)."""
    conn.execute(
        "CREATE TABLE roots (path TEXT PRIMARY KEY, added_at REAL NOT NULL, scanned_at REAL)"
    )


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _migrate_v1,
    _migrate_v2,
    _migrate_metadata,
    _migrate_ocr,
    _migrate_roots,
]
"""Ordered; migration i takes a catalog from schema version i to i + 1. Append only."""

SCHEMA_VERSION = len(MIGRATIONS)
