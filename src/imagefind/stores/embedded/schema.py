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


def _migrate_roots(conn: sqlite3.Connection) -> None:
    """The folders a library follows (``index`` with no argument, ``watch``)."""
    conn.execute(
        "CREATE TABLE roots (path TEXT PRIMARY KEY, added_at REAL NOT NULL, scanned_at REAL)"
    )


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _migrate_v1,
    _migrate_v2,
    _migrate_metadata,
    _migrate_roots,
]
"""Ordered; migration i takes a catalog from schema version i to i + 1. Append only."""

SCHEMA_VERSION = len(MIGRATIONS)
