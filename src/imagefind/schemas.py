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
    """When it was taken, ISO 8601, with the UTC offset when known"""
    added_at: str
    taken_at_source: str | None = None
    """Where taken_at comes from: exif (EXIF with a known offset or the GPS place's zone),
    exif-local (EXIF local time, zone unknown), file (the file's modification time)"""
    taken_local: str | None = None
    """The wall-clock time where it was taken, YYYY-MM-DDTHH:MM:SS (date filters use it)"""
    camera: str | None = None
    """Make and model, tidied ("Canon EOS 5D Mark IV")"""
    lens: str | None = None
    orientation: str | None = None
    """landscape, portrait or square (as displayed, after EXIF rotation)"""
    latitude: float | None = None
    longitude: float | None = None
    place: str | None = None
    """Nearest city, region and country ("Sydney, New South Wales, Australia"), found offline"""
    country_code: str | None = None
    """ISO 3166-1 alpha-2 code of the place's country"""
    folder: str | None = None
    """The file's folder (None for uploads)"""

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
            taken_at_source=rec.taken_at_source,
            taken_local=rec.taken_local,
            camera=rec.camera,
            lens=rec.lens,
            orientation=rec.orientation,
            latitude=rec.latitude,
            longitude=rec.longitude,
            place=rec.place,
            country_code=rec.country_code,
            folder=rec.folder,
        )


@dataclass(kw_only=True)
class Hit:
    """One search result: cosine similarity in [-1, 1], higher is closer (``clip`` mode);
    the share of the query's words found in the image's text (``text``); the reciprocal
    rank fusion score (``hybrid``)."""

    __pydantic_config__ = _PYDANTIC

    id: int
    score: float
    image: ImageOut
    text: str | None = None
    """Text read in the image (OCR), shortened; None when none was read"""
    text_match: str | None = None
    """The recognised text around the match, each match marked ⟦like this⟧"""


@dataclass(kw_only=True)
class Skipped:
    __pydantic_config__ = _PYDANTIC

    path: str
    reason: str


@dataclass(kw_only=True)
class OcrSummary:
    """What a run of OCR did (``index`` with OCR on, ``imagefind ocr``)."""

    __pydantic_config__ = _PYDANTIC

    engine: str
    read: int = 0
    """Images read (with or without text)"""
    with_text: int = 0
    """Images in which text was found"""
    errors: int = 0
    """Images OCR failed on (still indexed; the error is stored with the image)"""
    deferred: int = 0
    """Images read after encoding ended, the OCR queue being full while it ran"""
    seconds: float = 0.0


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
    metadata_read: int = 0
    """Catalogued images whose date, camera and place were re-read from the file's header
    (a library from before those were recorded, or an older reader): none re-encoded"""
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    batch_size: int = 0
    """Encoder batch size the run settled on"""
    decoders: int = 0
    """Decoder threads the run settled on"""
    ocr: OcrSummary | None = None
    """Text read in images, when the library has OCR on"""

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
    mode: Literal["clip", "text", "hybrid"] = "clip"
    """How text queries were ranked (image queries: always clip)"""


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
    """One page of the library (or of the images passing filters), in the order asked."""

    __pydantic_config__ = _PYDANTIC

    total: int
    """Images passing the filters (without any: the whole library)"""
    offset: int
    """How many images come before this page, in its order"""
    limit: int
    items: list[ImageOut]


@dataclass(kw_only=True)
class FacetCount:
    __pydantic_config__ = _PYDANTIC

    value: str
    count: int


@dataclass(kw_only=True)
class YearFacet:
    __pydantic_config__ = _PYDANTIC

    year: str
    count: int
    months: list[FacetCount]
    """YYYY-MM, in order"""


@dataclass(kw_only=True)
class PlaceFacet:
    __pydantic_config__ = _PYDANTIC

    city: str | None
    region: str | None
    country: str | None
    country_code: str | None
    count: int


@dataclass(kw_only=True)
class Facets:
    """The values a filter bar offers, with how many images have each (most first)."""

    __pydantic_config__ = _PYDANTIC

    total: int
    undated: int
    """Images with no date taken (no date filter lets them through)"""
    years: list[YearFacet]
    cameras: list[FacetCount]
    places: list[PlaceFacet]
    folders: list[FacetCount]
    """Folders holding images directly (a folder filter also takes its subfolders)"""
    formats: list[FacetCount]
    orientations: list[FacetCount]
