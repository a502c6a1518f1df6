"""The rows every store keeps: what an image is to imagefind, which model made its vector,
and the checks a vector passes before any store keeps it."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from imagefind.errors import LibraryError


@dataclass(frozen=True)
class ModelIdentity:
    """Which model made the stored vectors; a library answers only queries from the same."""

    name: str
    dim: int
    fingerprint: str


@dataclass(frozen=True)
class RootRecord:
    """A folder the library follows: ``index`` without arguments and ``watch`` scan it."""

    path: str
    added_at: float
    scanned_at: float | None  # when its last full scan began


@dataclass(frozen=True, kw_only=True)
class Circumstance:
    """When, where and with what a photo was taken, read by ``imagefind.metadata`` (None:
    unknown, or never read). Keyword-only, so that both row types below take it whole."""

    taken_at_source: str | None = None  # "exif", "exif-local" or "file"
    taken_local: str | None = None  # wall-clock time where taken, YYYY-MM-DDTHH:MM:SS
    camera: str | None = None
    lens: str | None = None
    orientation: str | None = None  # "landscape", "portrait" or "square"
    latitude: float | None = None
    longitude: float | None = None
    city: str | None = None
    region: str | None = None
    country: str | None = None
    country_code: str | None = None  # ISO 3166-1 alpha-2
    folder: str | None = None  # the file's parent directory; None for uploads
    meta_version: int | None = None  # the metadata reader that filled these; None: never


@dataclass(frozen=True)
class NewImage(Circumstance):
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
class ImageRecord(Circumstance):
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
    def place(self) -> str | None:
        """Where it was taken, for display: "City, Region, Country" (parts that are missing
        or repeat the one before are left out), or None without a known place."""
        parts: list[str] = []
        for part in (self.city, self.region, self.country):
            if part and (not parts or parts[-1] != part):
                parts.append(part)
        return ", ".join(parts) or None

    @property
    def source(self) -> str:
        """Where the image came from, for display: its path, or ``upload:<key>``."""
        return self.path if self.path is not None else f"upload:{self.upload_key}"


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
