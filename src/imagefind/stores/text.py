"""Text found in images (OCR), as both SQL stores keep it: one ``image_text`` row per image
once read (its text, the compact searchable form ``norm``, confidence, line boxes as JSON,
the engine, or the error that stopped it), and the text search over ``norm``.

An image without a row has not been read yet (``unread_ids``): that is how an index run
whose OCR fell behind, and a library indexed before OCR was turned on, catch up
(``imagefind ocr``). Each dialect adds its full-text index (``_text_prefilter``): FTS5
trigrams in SQLite, a pg_trgm GIN index in PostgreSQL (which serves ``LIKE`` itself).

Text writes do not move the generation: they change no vector, and text search reads the
table on every query.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass
from typing import Any, ClassVar

OCR_SETTING = "ocr"  # meta key: "on" while the library reads text at index time


@dataclass(frozen=True)
class StoredText:
    """One image's OCR outcome as stored; ``error`` set means it could not be read."""

    image_id: int
    text: str
    norm: str
    confidence: float | None
    boxes: str  # JSON: [{"box": [[x, y] * 4], "text": …, "confidence": …}]
    engine: str
    error: str | None = None


@dataclass(frozen=True)
class TextCounts:
    read: int  # images with a row (text, none found, or an error)
    with_text: int
    errors: int
    unread: int


class TextTable:
    """The ``image_text`` half of a SQL store (mixed into ``SqlStore``)."""

    PLACEHOLDER: ClassVar[str]

    def _guard(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _id_list(self, ids: Sequence[int]) -> tuple[str, object]:
        raise NotImplementedError

    def _text_prefilter(self, terms: Sequence[str]) -> tuple[str, list[object]] | None:
        """A condition on ``t.image_id`` from the dialect's full-text index that every
        matching row passes, or None where ``LIKE`` uses the index itself."""
        return None

    # --- the library's setting ------------------------------------------------------------

    def ocr_enabled(self) -> bool:
        with self._guard() as conn:
            row = conn.execute(
                f"SELECT value FROM meta WHERE key = {self.PLACEHOLDER}", (OCR_SETTING,)
            ).fetchone()
        return bool(row and row[0] == "on")

    def set_ocr_enabled(self, enabled: bool) -> None:
        p = self.PLACEHOLDER
        with self._transaction() as conn:
            conn.execute(
                f"INSERT INTO meta (key, value) VALUES ({p}, {p}) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (OCR_SETTING, "on" if enabled else "off"),
            )

    # --- writing and reading --------------------------------------------------------------

    def put_texts(self, rows: Sequence[StoredText]) -> None:
        """Store OCR outcomes in one transaction, replacing earlier ones; rows of images
        removed meanwhile are dropped (the OCR ran while someone deleted them)."""
        if not rows:
            return
        p = self.PLACEHOLDER
        now = time.time()
        with self._transaction() as conn, closing(conn.cursor()) as cur:
            cur.executemany(
                "INSERT INTO image_text "
                "(image_id, text, norm, confidence, boxes, engine, error, read_at) "
                f"SELECT {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p} "
                f"WHERE EXISTS (SELECT 1 FROM images WHERE id = {p}) "
                "ON CONFLICT (image_id) DO UPDATE SET text = excluded.text, "
                "norm = excluded.norm, confidence = excluded.confidence, "
                "boxes = excluded.boxes, engine = excluded.engine, error = excluded.error, "
                "read_at = excluded.read_at",
                [
                    (
                        r.image_id,
                        r.text,
                        r.norm,
                        r.confidence,
                        r.boxes,
                        r.engine,
                        r.error,
                        now,
                        r.image_id,
                    )
                    for r in rows
                ],
            )

    def texts(self, ids: Sequence[int]) -> dict[int, StoredText]:
        """Stored OCR outcomes by image id (images not read yet are absent)."""
        if not ids:
            return {}
        condition, param = self._id_list(ids)
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT image_id, text, norm, confidence, boxes, engine, error "
                f"FROM image_text WHERE image_id {condition}",
                (param,),
            ).fetchall()
        return {int(row[0]): StoredText(int(row[0]), *row[1:]) for row in rows}

    def unread_ids(self, limit: int | None = None, *, errors: bool = False) -> list[int]:
        """Images OCR has not read yet (oldest first); ``errors`` adds those it failed on."""
        retry = " OR t.error IS NOT NULL" if errors else ""
        sql = (
            "SELECT i.id FROM images i LEFT JOIN image_text t ON t.image_id = i.id "
            f"WHERE t.image_id IS NULL{retry} ORDER BY i.id"
        )
        params: tuple[object, ...] = ()
        if limit is not None:
            sql += f" LIMIT {self.PLACEHOLDER}"
            params = (int(limit),)
        with self._guard() as conn:
            return [int(row[0]) for row in conn.execute(sql, params).fetchall()]

    def text_counts(self) -> TextCounts:
        with self._guard() as conn:
            row = conn.execute(
                "SELECT count(*), count(CASE WHEN norm <> '' THEN 1 END), "
                "count(error), (SELECT count(*) FROM images) FROM image_text"
            ).fetchone()
        read, with_text, errors, images = (int(v) for v in row)
        return TextCounts(read, with_text, errors, max(0, images - read))

    def has_text(self) -> bool:
        """Whether any image has recognised text (text search has something to find)."""
        with self._guard() as conn:
            row = conn.execute("SELECT 1 FROM image_text WHERE norm <> '' LIMIT 1").fetchone()
        return row is not None

    # --- searching ------------------------------------------------------------------------

    def search_text(
        self,
        terms: Sequence[tuple[str, int]],
        k: int,
        where: str | None = None,
        params: Sequence[object] = (),
        together: str | None = None,
    ) -> list[tuple[int, float]]:
        """Images whose text holds any of ``terms`` (compact form, weight), best first, as
        (id, score): score = the weight of the terms found / the weight of all terms; ties go
        to a text that holds ``together`` (the query's words side by side, in order), then to
        the shorter text (the match is more of it), then to the older image. ``where`` is an
        extra SQL condition on ``images`` (with its ``params``): filters restrict the ranking
        here, before the top ``k`` is cut."""
        terms = [(t, w) for t, w in terms if t]
        if not terms:
            return []
        p = self.PLACEHOLDER
        total = float(sum(w for _, w in terms))
        patterns = [f"%{t}%" for t, _ in terms]
        score = " + ".join(f"CASE WHEN t.norm LIKE {p} THEN {int(w)} ELSE 0 END" for _, w in terms)
        conditions = ["(" + " OR ".join([f"t.norm LIKE {p}"] * len(terms)) + ")"]
        args: list[object] = [*patterns, *patterns]
        prefilter = self._text_prefilter([t for t, _ in terms])
        if prefilter is not None:
            conditions.append(prefilter[0])
            args += prefilter[1]
        if where:
            conditions.append(f"t.image_id IN (SELECT id FROM images WHERE {where})")
            args += list(params)
        adjacent = f"CASE WHEN t.norm LIKE {p} THEN 0 ELSE 1 END, " if together else ""
        order = [f"%{together}%"] if together else []
        sql = (
            f"SELECT t.image_id, {score} AS score FROM image_text t "
            f"WHERE {' AND '.join(conditions)} "
            f"ORDER BY score DESC, {adjacent}length(t.norm), t.image_id LIMIT {p}"
        )
        with self._guard() as conn:
            rows = conn.execute(sql, [*args, *order, int(k)]).fetchall()
        return [(int(i), round(float(s) / total, 6)) for i, s in rows]
