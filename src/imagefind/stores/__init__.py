"""Where a library keeps its rows and vectors: the embedded store (SQLite + FAISS, the
default) or a server-backed one. The library, CLI and web app only see the ``Store`` face."""

from __future__ import annotations

from pathlib import Path

from imagefind.errors import LibraryError
from imagefind.stores.base import Store
from imagefind.stores.embedded import EmbeddedStore

CATALOG_NAME = "catalog.sqlite3"

__all__ = ["CATALOG_NAME", "EmbeddedStore", "Store", "open_store"]


def open_store(spec: str | None, library_dir: Path) -> Store:
    """``None`` → the embedded store in ``library_dir``; ``postgresql://…`` → PostgreSQL."""
    if not spec:
        return EmbeddedStore.open(library_dir / CATALOG_NAME)
    if spec.startswith(("postgresql://", "postgres://")):
        try:
            from imagefind.stores.postgres import PostgresStore
        except ImportError as exc:
            raise LibraryError(
                f"{spec.split('@')[-1]}: the PostgreSQL store needs the 'postgres' extra "
                "(pip install 'imagefind[postgres]')"
            ) from exc
        return PostgresStore.open(spec)
    raise LibraryError(f"{spec!r}: unknown store (use a postgresql:// URL, or none for embedded)")
