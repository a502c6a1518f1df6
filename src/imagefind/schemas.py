"""The shapes of what imagefind returns: one set of objects for the library, the CLI's
``--json`` and the HTTP API, so the three never drift apart."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field

from imagefind.catalog import ImageRecord


class ImageOut(BaseModel):
    id: int
    name: str = Field(description="The file name, or the name an upload arrived with")
    source: str = Field(description="The file path, or upload:<sha256> for uploaded images")
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


class Hit(BaseModel):
    """One search result: cosine similarity in [-1, 1], higher is closer."""

    id: int
    score: float
    image: ImageOut


class Skipped(BaseModel):
    path: str
    reason: str


class IndexSummary(BaseModel):
    added: int = 0
    updated: int = 0
    renamed: int = 0
    removed: int = 0
    unchanged: int = 0
    copies: int = Field(0, description="New files whose content was already indexed (no encode)")
    encoded: int = Field(0, description="Images that went through the visual encoder")
    skipped: list[Skipped] = Field(default_factory=list)
    seconds: float = 0.0
    batch_size: int = Field(0, description="Encoder batch size the run settled on")
    decoders: int = Field(0, description="Decoder threads the run settled on")

    @property
    def skipped_count(self) -> int:
        return len(self.skipped)


class AddResult(BaseModel):
    """An upload: its image, and whether the same content was already in the library."""

    name: str
    id: int
    duplicate: bool
    image: ImageOut


class DuplicateGroup(BaseModel):
    kind: str = Field(description="'exact' (same bytes) or 'near' (cosine over the threshold)")
    score: float = Field(description="Lowest similarity between linked members")
    images: list[ImageOut]


class Stats(BaseModel):
    library: str
    count: int
    model: str | None
    dim: int | None
    fingerprint: str | None
    size_bytes: int
    catalog_bytes: int
    generation: int
