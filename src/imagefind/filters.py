"""Filters on circumstance: when, where, which folder and camera, what shape and format.

One ``Filters`` object carries them through every face (CLI options, library keywords,
HTTP parameters); ``Filters.parse`` reads user input and refuses it with one line naming
the option and the forms it takes. Semantics, the same everywhere:

- ``after`` / ``before``: on the wall-clock time where the photo was taken (``taken_local``),
  both inclusive at the precision given: ``--after 2019-06 --before 2019-08`` is June to
  August 2019, whole months. Forms: ``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD``,
  ``YYYY-MM-DDTHH:MM[:SS]`` (a space for the ``T`` too). Images with no date never pass.
- ``folders``: recursive; an image passes if it lies in (or below) any of them.
- ``camera``: case-insensitive substring of make and model ("canon" matches "Canon EOS R5").
- ``place``: case- and accent-insensitive name of the city, region or country, or a
  two-letter country code ("sao paulo", "Bavaria", "PT").
- ``format``: JPEG, PNG, … (``jpg`` and ``tif`` are read as JPEG and TIFF).
- ``orientation``: landscape, portrait or square.

Every given filter must hold (AND); an empty ``Filters`` passes everything.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Literal, TypeVar, get_args

from imagefind.errors import QueryError

Orientation = Literal["landscape", "portrait", "square"]
ORIENTATIONS: tuple[str, ...] = get_args(Orientation)
Sort = Literal["score", "date", "-date"]
SORTS: tuple[str, ...] = get_args(Sort)
DATE_FORMS = "YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]"
T = TypeVar("T")
FORMAT_ALIASES = {"JPG": "JPEG", "TIF": "TIFF", "HEIF": "HEIC"}

_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?)?)?")
_STAMP = "%Y-%m-%dT%H:%M:%S"  # taken_local's form: compared as text, so zero-padded always


class FilterError(QueryError):
    """A filter value that cannot be read (HTTP 422, CLI exit 1)."""


def _option(name: str) -> str:
    """How the library's keyword arguments are named in messages."""
    return name


@dataclass(frozen=True)
class Filters:
    """Parsed filters. ``after`` is the first second that passes and ``before`` the first
    that does not (both ``YYYY-MM-DDTHH:MM:SS``, compared as text with ``taken_local``)."""

    after: str | None = None
    before: str | None = None
    folders: tuple[str, ...] = ()
    camera: str | None = None
    place: str | None = None
    format: str | None = None
    orientation: Orientation | None = None

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    @classmethod
    def parse(
        cls,
        *,
        after: str | None = None,
        before: str | None = None,
        folders: Iterable[str | os.PathLike[str]] = (),
        camera: str | None = None,
        place: str | None = None,
        format: str | None = None,
        orientation: str | None = None,
        option: Callable[[str], str] = _option,
    ) -> Filters:
        """Filters from user input (blank strings count as absent). ``option`` spells a
        field's name as the face shows it (``--in`` on the CLI) for error messages."""
        start = _bound(after, option("after"), end=False)
        end = _bound(before, option("before"), end=True)
        if start and end and end <= start:
            raise FilterError(
                f"{option('before')} {before}: earlier than {option('after')} {after}; "
                "give a range whose end is not before its start"
            )
        shape = _blank(orientation)
        if shape is not None and shape.lower() not in ORIENTATIONS:
            raise FilterError(
                f"{option('orientation')} {orientation!r}: unknown orientation; use one of "
                + ", ".join(ORIENTATIONS)
            )
        kind = _blank(format)
        if kind is not None:
            kind = kind.upper().lstrip(".")
            kind = FORMAT_ALIASES.get(kind, kind)
        return cls(
            after=start,
            before=end,
            folders=tuple(_folder(f) for f in folders if str(f).strip()),
            camera=_blank(camera),
            place=_blank(place),
            format=kind,
            orientation=shape.lower() if shape else None,  # type: ignore[arg-type]
        )


def _blank(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def _folder(folder: str | os.PathLike[str]) -> str:
    """A folder as the catalog writes paths: absolute, normalised, no trailing separator."""
    return os.path.abspath(os.path.expanduser(os.fspath(folder)))


def _bound(value: str | None, option: str, *, end: bool) -> str | None:
    """The first second of the period a date names, or (``end``) the first second after it."""
    text = _blank(value)
    if text is None:
        return None
    match = _DATE.fullmatch(text)
    try:
        if match is None:
            raise ValueError(text)
        year, month, day, hour, minute, second = (int(g) if g else None for g in match.groups())
        assert year is not None  # the pattern requires it
        start = datetime(year, month or 1, day or 1, hour or 0, minute or 0, second or 0)
    except ValueError:
        raise FilterError(
            f"{option} {value!r}: not a date; use {DATE_FORMS} (local time where the "
            "photo was taken)"
        ) from None
    if not end:
        return start.strftime(_STAMP)
    try:
        if minute is not None:
            after = start + timedelta(seconds=1 if second is not None else 60)
        elif day is not None:
            after = start + timedelta(days=1)
        elif month is not None:
            after = (start + timedelta(days=32)).replace(day=1)
        else:
            after = start.replace(year=start.year + 1)
    except (OverflowError, ValueError):
        return None  # the end of time: no upper bound
    return after.strftime(_STAMP)


def fold(text: str) -> str:
    """A name folded for matching: no accents, no case, single spaces ("São  Paulo" and
    "sao paulo" agree)."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().split())


PLACE_COLUMNS = ("city", "region", "country")


def place_matches(place: str, known: Sequence[tuple[str | None, ...]]) -> dict[str, list[str]]:
    """The stored values a place filter stands for: per column (city, region, country,
    country_code), the exact names that fold to the same text, so the SQL compares stored
    values with ``IN`` (exact, indexed) instead of folding every row. ``known`` holds the
    distinct (city, region, country, country_code) rows of the library."""
    wanted = fold(place)
    out: dict[str, list[str]] = {c: [] for c in (*PLACE_COLUMNS, "country_code")}
    for row in known:
        for column, value in zip((*PLACE_COLUMNS, "country_code"), row, strict=False):
            if value and fold(value) == wanted and value not in out[column]:
                out[column].append(value)
    if len(place.strip()) == 2 and place.strip().isalpha():
        code = place.strip().upper()
        if code not in out["country_code"]:
            out["country_code"].append(code)
    return {c: v for c, v in out.items() if v}


def parse_sort(value: str | None, option: str = "sort", allowed: Sequence[str] = SORTS) -> str:
    """A sort order from user input; ``score`` (or ``allowed[0]``) when absent."""
    text = _blank(value)
    if text is None:
        return allowed[0]
    if text not in allowed:
        raise FilterError(f"{option} {value!r}: unknown order; use one of {', '.join(allowed)}")
    return text


def by_date(items: Sequence[T], taken: Callable[[T], str | None], order: str) -> list[T]:
    """``items`` ordered by the date taken (``date``: oldest first, ``-date``: newest
    first; undated ones last either way, in their given order), or as given."""
    if order not in ("date", "-date"):
        return list(items)
    dated = [item for item in items if taken(item)]
    dated.sort(key=lambda item: taken(item) or "", reverse=order == "-date")
    return dated + [item for item in items if not taken(item)]
