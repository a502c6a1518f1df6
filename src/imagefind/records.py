"""The rows every store keeps (what an image is to imagefind, which model made its vector)
and the lookups every store phrases alike in SQL."""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from imagefind.errors import LibraryError, NotFoundError


@dataclass(frozen=True)
class ModelIdentity:
    """Which model made the stored vectors; a library answers only queries from the same."""

    name: str
    dim: int
    fingerprint: str


@dataclass(frozen=True)
class NewImage:
    """An image as the library hands it in (either a file path or an upload key)."""

    path: str | None
    upload_key: str | None
    sha256: str
    size: int
    mtime: float | None
    width: int
    height: int
    format: str
    taken_at: str | None
    name: str | None = None  # an upload's original file name


@dataclass(frozen=True)
class ImageRecord:
    """One catalog row."""

    id: int
    path: str | None
    upload_key: str | None
    sha256: str
    size: int
    mtime: float | None
    width: int
    height: int
    format: str
    taken_at: str | None
    added_at: float
    name: str | None = None

    @property
    def display_name(self) -> str:
        """What a person calls it: the file's name, or the name it was uploaded under."""
        if self.path is not None:
            return os.path.basename(self.path)
        return self.name or f"upload {self.sha256[:8]}"

    @property
    def source(self) -> str:
        """Where the image came from, for display: its path, or ``upload:<key>``."""
        return self.path if self.path is not None else f"upload:{self.upload_key}"


# The images table's columns as ImageRecord takes them, for every store's SELECT.
RECORD_COLUMNS = ", ".join(f.name for f in fields(ImageRecord))


class RowLookups:
    """Mixed into a store whose ``_guard()`` yields a DB-API connection (SQLite, psycopg)
    over its ``images`` table, with parameters written as ``PLACEHOLDER``."""

    PLACEHOLDER = "?"

    def _guard(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _select(self, where: str, params: Sequence[object] = ()) -> list[ImageRecord]:
        with self._guard() as conn:
            rows = conn.execute(f"SELECT {RECORD_COLUMNS} FROM images {where}", params).fetchall()
        return [ImageRecord(*row) for row in rows]

    def get(self, image_id: int) -> ImageRecord:
        """One row; NotFoundError if there is none."""
        rows = self._select(f"WHERE id = {self.PLACEHOLDER}", (int(image_id),))
        if not rows:
            raise NotFoundError(f"no image with id {image_id}")
        return rows[0]

    def by_path(self, path: str) -> ImageRecord | None:
        rows = self._select(f"WHERE path = {self.PLACEHOLDER}", (path,))
        return rows[0] if rows else None

    def by_sha256(self, sha256: str) -> list[ImageRecord]:
        """Every row with this content (duplicates, renamed files), oldest id first."""
        return self._select(f"WHERE sha256 = {self.PLACEHOLDER} ORDER BY id", (sha256,))

    def shared_content(self) -> list[ImageRecord]:
        """Rows whose bytes another row also has (exact duplicates), grouped by content."""
        return self._select(
            "WHERE sha256 IN (SELECT sha256 FROM images GROUP BY sha256 HAVING COUNT(*) > 1) "
            "ORDER BY sha256, id"
        )


def checked_vectors(
    vectors: np.ndarray, count: int, model: ModelIdentity | None, where: str
) -> np.ndarray:
    """A [count, dim] batch checked against the bound model before any store keeps it:
    both stores refuse the same wrong shapes and non-finite values with the same words."""
    if model is None:
        raise LibraryError(f"{where}: no model bound to this catalog yet")
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape != (count, model.dim):
        raise LibraryError(
            f"{where}: expected vectors of shape ({count}, {model.dim}) for model "
            f"{model.name}, got {vectors.shape}"
        )
    if not np.isfinite(vectors).all():
        raise LibraryError(f"{where}: refusing to store non-finite vectors")
    return vectors
