"""The shapes of what imagefind returns: one set of objects for the library, the CLI's
``--json`` and the HTTP API, so the three never drift apart.

Plain dataclasses: the HTTP API validates and documents them with pydantic (a field's
docstring is its description there), while a CLI query never imports pydantic (~75 ms).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from imagefind.records import ImageRecord

# Read by pydantic when the web app uses these classes.
_PYDANTIC = {"use_attribute_docstrings": True}


def as_json(value: Any) -> Any:
    """Plain JSON-ready data (dicts, lists, numbers, strings) from schema objects."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    return value


@dataclass(kw_only=True)
class ImageOut:
    __pydantic_config__ = _PYDANTIC

    id: int
    name: str
    """The file name, or the name an upload arrived with"""
    source: str
    """The file path, or upload:<sha256> for uploaded images"""
    path: str | None
    sha256: str
    size: int
    width: int
    height: int
    format: str
    taken_at: str | None = None
    added_at: str

    @classmethod
    def of(cls, rec: ImageRecord) -> ImageOut:
        return cls(
            id=rec.id,
            name=rec.display_name,
            source=rec.source,
            path=rec.path,
            sha256=rec.sha256,
            size=rec.size,
            width=rec.width,
            height=rec.height,
            format=rec.format,
            taken_at=rec.taken_at,
            added_at=datetime.fromtimestamp(rec.added_at, UTC).isoformat(timespec="seconds"),
        )


@dataclass(kw_only=True)
class Hit:
    """One search result: cosine similarity in [-1, 1], higher is closer."""

    __pydantic_config__ = _PYDANTIC

    id: int
    score: float
    image: ImageOut


@dataclass(kw_only=True)
class Skipped:
    __pydantic_config__ = _PYDANTIC

    path: str
    reason: str


@dataclass(kw_only=True)
class IndexSummary:
    __pydantic_config__ = _PYDANTIC

    added: int = 0
    updated: int = 0
    renamed: int = 0
    removed: int = 0
    unchanged: int = 0
    copies: int = 0
    """New files whose content was already indexed (no encode)"""
    encoded: int = 0
    """Images that went through the visual encoder"""
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    batch_size: int = 0
    """Encoder batch size the run settled on"""
    decoders: int = 0
    """Decoder threads the run settled on"""

    @property
    def skipped_count(self) -> int:
        return len(self.skipped)


@dataclass(kw_only=True)
class AddResult:
    """An upload: its image, and whether the same content was already in the library."""

    __pydantic_config__ = _PYDANTIC

    name: str
    id: int
    duplicate: bool
    image: ImageOut


@dataclass(kw_only=True)
class DuplicateGroup:
    __pydantic_config__ = _PYDANTIC

    kind: str
    """'exact' (same bytes) or 'near' (cosine over the threshold)"""
    score: float
    """Lowest similarity between linked members"""
    images: list[ImageOut]


@dataclass(kw_only=True)
class RootOut:
    """A folder the library follows (``imagefind roots``)."""

    __pydantic_config__ = _PYDANTIC

    path: str
    images: int
    """Images indexed under it"""
    exists: bool
    """False while the folder is missing (an unmounted drive): its images are kept"""
    added_at: str
    scanned_at: str | None
    """When its last full scan ended (ISO 8601, UTC)"""


@dataclass(kw_only=True)
class WatchEvent:
    """One thing a watcher did or saw (``imagefind watch --json`` prints one per line)."""

    __pydantic_config__ = _PYDANTIC

    event: Literal[
        "watching", "scanned", "added", "updated", "renamed", "removed", "skipped", "batch",
        "error", "stopped",
    ]  # fmt: skip
    time: str
    path: str | None = None
    source: str | None = None
    """For ``renamed``: where the file was before (when the watcher saw both halves of the
    move; a move across folders may reach it as a create, then a delete)"""
    id: int | None = None
    reason: str | None = None
    summary: IndexSummary | None = None
    """For ``scanned`` (the catch-up) and ``batch``: what the run did"""


@dataclass(kw_only=True)
class WatcherState:
    """What ``/api/health`` says about a server's watcher."""

    __pydantic_config__ = _PYDANTIC

    state: Literal["starting", "catching up", "watching", "stopped", "failed"]
    folders: list[str]
    observer: str
    """inotify, FSEvents, polling every N s..."""
    pending: int
    """Changes seen, not yet in the library (files still being written included)"""
    events: int
    last_change: str | None
    error: str | None = None


def iso_time(seconds: float | None) -> str | None:
    """A Unix time as ISO 8601 in UTC (what every time in these schemas looks like)."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


@dataclass(kw_only=True)
class Stats:
    __pydantic_config__ = _PYDANTIC

    library: str
    count: int
    model: str | None
    dim: int | None
    fingerprint: str | None
    size_bytes: int
    catalog_bytes: int
    generation: int


@dataclass(kw_only=True)
class Dropped:
    """An image a re-embed removed: its original could not be read any more."""

    __pydantic_config__ = _PYDANTIC

    id: int
    source: str
    reason: str


@dataclass(kw_only=True)
class ReindexSummary:
    """A re-embed: every image encoded by ``model``, switched in one transaction."""

    __pydantic_config__ = _PYDANTIC

    model: str
    reembedded: int
    removed: list[Dropped] = field(default_factory=list)
    """Images whose original is gone (or unreadable), removed in the same switch"""
    seconds: float = 0.0


@dataclass(kw_only=True)
class SearchResult:
    """A search as ``search --json``, ``similar --json`` and the search routes print it."""

    __pydantic_config__ = _PYDANTIC

    query: str
    """The query as given: text, a path, or #id"""
    kind: Literal["text", "image"]
    hits: list[Hit]


@dataclass(kw_only=True)
class Duplicates:
    """Duplicate groups as ``duplicates --json`` and ``GET /api/duplicates`` print them."""

    __pydantic_config__ = _PYDANTIC

    threshold: float | None
    """The near-duplicate cosine asked for (none: the default, 0.95)"""
    groups: list[DuplicateGroup]


@dataclass(kw_only=True)
class Removed:
    """What ``remove --json`` prints (``DELETE /api/images/{id}`` returns the one image)."""

    __pydantic_config__ = _PYDANTIC

    removed: list[ImageOut]


@dataclass(kw_only=True)
class ImagePage:
    """One page of the library, newest first."""

    __pydantic_config__ = _PYDANTIC

    total: int
    """Images in the whole library"""
    offset: int
    """How many newer images come before this page"""
    limit: int
    items: list[ImageOut]
