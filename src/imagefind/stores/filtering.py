"""Filters in SQL, once for both dialects: the WHERE clause a ``Filters`` stands for, the
reads built on it (how many pass, which ids, a filtered page) and the facets a filter bar
offers. A store supplies only its placeholder and its id list (``SqlStore``).

Every condition compares a stored column with a parameter in a way the column's index can
serve: dates as text ranges on ``taken_local``, folders as path ranges on the unique path
index, places as exact stored names (``filters.place_matches`` folds case and accents once
per distinct place, in Python, instead of on every row, so no dialect needs an unaccent).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Literal

import numpy as np

from imagefind.filters import Filters, parse_sort, place_matches
from imagefind.records import ImageRecord
from imagefind.schemas import FacetCount, Facets, PlaceFacet, YearFacet

BrowseOrder = Literal["added", "date", "-date"]
ORDERS: dict[str, str] = {
    "added": "added_at DESC, id DESC",
    # Undated images last either way (NULLs sort first in SQLite, last in PostgreSQL).
    "date": "(taken_local IS NULL), taken_local, id",
    "-date": "(taken_local IS NULL), taken_local DESC, id DESC",
}
FACET_LIMIT = 500  # values per facet, most frequent first
COUNTS_KEPT = 256  # filters whose passing count is remembered, per library generation


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class FilteredReads:
    """What ``SqlStore`` gains for filters (a mixin: it supplies ``_guard``, ``_select``,
    ``_id_list``, ``generation`` and ``PLACEHOLDER``)."""

    PLACEHOLDER: ClassVar[str]
    _places: tuple[int, list[tuple[str | None, ...]]] | None = None
    _counts: tuple[int, dict[tuple[Filters | None, int | None], int]] | None = None

    def _guard(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _select(self, where: str, params: Sequence[object] = ()) -> list[ImageRecord]:
        raise NotImplementedError

    def _id_list(self, ids: Sequence[int]) -> tuple[str, object]:
        raise NotImplementedError

    def generation(self) -> int:
        raise NotImplementedError

    # --- the WHERE clause -----------------------------------------------------------------

    def filter_sql(self, filters: Filters | None) -> tuple[str, list[object]]:
        """``filters`` as one condition on the images table (its columns unqualified) and
        its parameters; ``TRUE``-like ``1 = 1`` when there are none."""
        if not filters:
            return "1 = 1", []
        p = self.PLACEHOLDER
        parts: list[str] = []
        params: list[object] = []
        if filters.after:
            parts.append(f"taken_local >= {p}")
            params.append(filters.after)
        if filters.before:
            parts.append(f"taken_local < {p}")
            params.append(filters.before)
        if filters.folders:
            ranges = []
            for folder in filters.folders:
                base = folder.rstrip(os.sep) or os.sep
                prefix = base if base.endswith(os.sep) else base + os.sep
                # A range, not LIKE: no wildcard escaping, bytewise, and it uses the index.
                ranges.append(f"path = {p} OR (path >= {p} AND path < {p})")
                params += [base, prefix, prefix[:-1] + chr(ord(os.sep) + 1)]
            parts.append("(" + " OR ".join(f"({r})" for r in ranges) + ")")
        if filters.camera:
            parts.append(f"lower(camera) LIKE {p} ESCAPE '\\'")
            params.append(f"%{escape_like(filters.camera.lower())}%")
        if filters.place:
            matches = place_matches(filters.place, self._known_places())
            if not matches:
                parts.append("1 = 0")
            else:
                ors = []
                for column, names in matches.items():
                    ors.append(f"{column} IN ({', '.join([p] * len(names))})")
                    params += names
                parts.append("(" + " OR ".join(ors) + ")")
        if filters.format:
            parts.append(f"format = {p}")
            params.append(filters.format)
        if filters.orientation:
            parts.append(f"orientation = {p}")
            params.append(filters.orientation)
        return " AND ".join(parts), params

    def _known_places(self) -> list[tuple[str | None, ...]]:
        """The library's distinct places, read again only after a write."""
        generation = self.generation()
        if self._places is None or self._places[0] != generation:
            with self._guard() as conn:
                rows = conn.execute(
                    "SELECT DISTINCT city, region, country, country_code FROM images "
                    "WHERE city IS NOT NULL OR country_code IS NOT NULL"
                ).fetchall()
            self._places = (generation, [tuple(r) for r in rows])
        return self._places[1]

    # --- reads ----------------------------------------------------------------------------

    def passing_count(self, filters: Filters | None, limit: int | None = None) -> int:
        """How many images pass, counting no further than ``limit + 1`` (a broad filter
        over a large library is known to be broad without counting every row). Remembered
        until the library changes: a filter held while queries are typed is counted once
        (counting 20,000 rows costs more than the filtered search itself)."""
        generation = self.generation()
        if self._counts is None or self._counts[0] != generation:
            self._counts = (generation, {})
        known = self._counts[1]
        if (filters, limit) in known:
            return known[filters, limit]
        where, params = self.filter_sql(filters)
        cap = "" if limit is None else f" LIMIT {int(limit) + 1:d}"
        with self._guard() as conn:
            row = conn.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM images WHERE {where}{cap}) AS passing",
                params,
            ).fetchone()
        count = int(row[0]) if row else 0
        if len(known) < COUNTS_KEPT:
            known[filters, limit] = count
        return count

    def passing_ids(self, filters: Filters | None) -> np.ndarray:
        """The ids of every image that passes (int64, ascending)."""
        where, params = self.filter_sql(filters)
        with self._guard() as conn:
            # No ORDER BY: SQLite would walk the table in id order rather than the indexes.
            cursor = conn.execute(f"SELECT id FROM images WHERE {where}", params)
            return np.sort(np.fromiter((row[0] for row in cursor), dtype=np.int64))

    def passing_among(self, filters: Filters | None, ids: Sequence[int]) -> set[int]:
        """Which of ``ids`` pass (the candidates of an over-fetched vector search)."""
        if not ids:
            return set()
        where, params = self.filter_sql(filters)
        condition, param = self._id_list(ids)
        with self._guard() as conn:
            rows = conn.execute(
                f"SELECT id FROM images WHERE id {condition} AND {where}", [param, *params]
            ).fetchall()
        return {int(row[0]) for row in rows}

    def browse(
        self, offset: int, limit: int, filters: Filters | None = None, order: str = "added"
    ) -> list[ImageRecord]:
        """A page of the images that pass, newest added first or by date taken."""
        order = parse_sort(order, "order", tuple(ORDERS))
        where, params = self.filter_sql(filters)
        p = self.PLACEHOLDER
        return self._select(
            f"WHERE {where} ORDER BY {ORDERS[order]} LIMIT {p} OFFSET {p}",
            [*params, int(limit), int(offset)],
        )

    # --- facets ---------------------------------------------------------------------------

    def facets(self) -> Facets:
        """What a filter bar offers, with counts: years and months taken, cameras, places,
        folders, formats, orientations (one GROUP BY each)."""
        with self._guard() as conn:

            def grouped(expr: str, extra: str = "") -> Iterator[tuple[Any, ...]]:
                yield from conn.execute(
                    f"SELECT {expr}, count(*) AS n FROM images WHERE {expr.split(',')[0]} "
                    f"IS NOT NULL {extra} GROUP BY {expr} ORDER BY n DESC, {expr} "
                    f"LIMIT {FACET_LIMIT:d}"
                ).fetchall()

            total_row = conn.execute("SELECT count(*), count(taken_local) FROM images").fetchone()
            months = conn.execute(
                "SELECT substr(taken_local, 1, 7) AS m, count(*) FROM images "
                "WHERE taken_local IS NOT NULL GROUP BY m ORDER BY m"
            ).fetchall()
            cameras = [FacetCount(value=v, count=n) for v, n in grouped("camera")]
            folders = [FacetCount(value=v, count=n) for v, n in grouped("folder")]
            formats = [FacetCount(value=v, count=n) for v, n in grouped("format")]
            shapes = [FacetCount(value=v, count=n) for v, n in grouped("orientation")]
            places = [
                PlaceFacet(city=c, region=r, country=k, country_code=cc, count=n)
                for cc, k, r, c, n in grouped("country_code, country, region, city")
            ]
        years: dict[str, YearFacet] = {}
        for month, n in months:
            year = years.setdefault(month[:4], YearFacet(year=month[:4], count=0, months=[]))
            year.count += int(n)
            year.months.append(FacetCount(value=month, count=int(n)))
        total, dated = (int(total_row[0]), int(total_row[1])) if total_row else (0, 0)
        return Facets(
            total=total,
            undated=total - dated,
            years=list(years.values()),
            cameras=cameras,
            places=places,
            folders=folders,
            formats=formats,
            orientations=shapes,
        )
