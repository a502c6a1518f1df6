"""The images table's columns, once for both SQL dialects, and the statements that create a
store's first tables from them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from imagefind.records import ImageRecord, NewImage

# The images table's columns as ImageRecord takes them, for every SELECT and RETURNING.
RECORD_NAMES = tuple(f.name for f in fields(ImageRecord))
RECORD_COLUMNS = ", ".join(RECORD_NAMES)
NEW_COLUMNS = [f.name for f in fields(NewImage)]  # what an insert or an update writes


@dataclass(frozen=True)
class Column:
    """One column of the images table, in a type both dialects spell their own way."""

    name: str
    kind: str  # a key of the dialect's type map: "id", "path", "text", "int", "real"
    constraint: str = ""


IMAGE_COLUMNS: tuple[Column, ...] = (
    Column("id", "id"),
    Column("path", "path", "UNIQUE"),
    Column("upload_key", "text", "UNIQUE"),
    Column("sha256", "text", "NOT NULL"),
    Column("size", "int", "NOT NULL"),
    Column("mtime", "real"),
    Column("width", "int", "NOT NULL"),
    Column("height", "int", "NOT NULL"),
    Column("format", "text", "NOT NULL"),
    Column("taken_at", "text"),
    Column("added_at", "real", "NOT NULL"),
    Column("name", "text"),
    # Circumstance (imagefind.metadata): when, where and with what, for filters and display.
    Column("taken_at_source", "text"),
    Column("taken_local", "text"),
    Column("camera", "text"),
    Column("lens", "text"),
    Column("orientation", "text"),
    Column("latitude", "real"),
    Column("longitude", "real"),
    Column("city", "text"),
    Column("region", "text"),
    Column("country", "text"),
    Column("country_code", "text"),
    Column("folder", "path"),  # bytewise in PostgreSQL too: folder prefixes are plain ranges
    Column("meta_version", "int"),
)
"""ImageRecord's fields as columns (statements name them; this order is history). A new
column is appended here and added by a migration of each store (``ALTER TABLE``); the tables'
creation below is history and takes a prefix."""


def create_images(types: dict[str, str], columns: Sequence[Column]) -> str:
    """The ``CREATE TABLE images`` statement of one dialect."""
    body = ",\n        ".join(f"{c.name} {types[c.kind]} {c.constraint}".rstrip() for c in columns)
    return (
        f"CREATE TABLE images (\n        {body},\n"
        "        CHECK (path IS NOT NULL OR upload_key IS NOT NULL))"
    )


def first_schema(types: dict[str, str], columns: Sequence[Column], vector: str) -> list[str]:
    """A store's first tables, in its dialect: images, vectors (``vector`` names the column
    and its type), meta with the generation counter."""
    return [
        create_images(types, columns),
        "CREATE INDEX images_sha256 ON images (sha256)",
        "CREATE INDEX images_newest ON images (added_at DESC, id DESC)",
        f"""CREATE TABLE vectors (
        image_id {types["int"]} PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE,
        {vector} NOT NULL)""",
        "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)",
        "INSERT INTO meta (key, value) VALUES ('generation', '0')",
    ]


def columns_until(last: str) -> tuple[Column, ...]:
    """The columns up to ``last``, included: a table as an early migration created it."""
    names = [c.name for c in IMAGE_COLUMNS]
    return IMAGE_COLUMNS[: names.index(last) + 1]


METADATA_INDEXED = (
    "taken_local",
    "camera",
    "country_code",
    "city",
    "folder",
    "format",
    "orientation",
)
"""The filter columns, each with an index (``images_<column>``) made by the metadata migration."""


def _metadata_added() -> tuple[Column, ...]:
    names = [c.name for c in IMAGE_COLUMNS]
    return IMAGE_COLUMNS[names.index("taken_at_source") : names.index("meta_version") + 1]


METADATA_COLUMNS = ("taken_at", *(c.name for c in _metadata_added()))
"""What the metadata reader fills (``imagefind.metadata.Circumstance``), and re-fills."""


def metadata_schema(types: dict[str, str]) -> list[str]:
    """The metadata migration in one dialect: the circumstance columns and their indexes."""
    added = _metadata_added()
    return [
        *(f"ALTER TABLE images ADD COLUMN {c.name} {types[c.kind]}" for c in added),
        *(f"CREATE INDEX images_{name} ON images ({name})" for name in METADATA_INDEXED),
    ]


def record(row: Sequence[object]) -> ImageRecord:
    """An ImageRecord from a row selected as ``RECORD_COLUMNS``."""
    return ImageRecord(**dict(zip(RECORD_NAMES, row, strict=True)))  # type: ignore[arg-type]
