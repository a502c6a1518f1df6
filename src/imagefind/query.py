"""Query arithmetic: ``beach + 2:sunset - people``, ``cat - ./dog.jpg``, ``sunset + #42``.

A query is a signed, weighted sum of parts; each part is text, an image file or an indexed
image id. Its vector is the weighted sum of the parts' L2-normalised vectors, normalised again
(rclip's approach): adding a part pulls the results towards it, subtracting pushes them away.

Grammar, informally::

    query := [op] part (op part)*
    op    := "+" or "-" with whitespace (or the query's end) on both sides
    part  := [weight ":"] (term | '"' any '"' | "'" any "'")
    term  := "#" digits (an id) | an image path | text

Operators need whitespace around them so that ``t-shirt``, ``sci-fi`` and ``-5 degrees`` stay
text. A leading operator signs the first part (``- people`` is a query for "away from people"),
so every part, the first included, reads ``[op] [weight:] term``. Quotes take ``+`` and ``-``
literally and are how to write a path with spaces; a quoted part is an image path or text,
never an id (``"#42"`` searches for the text #42). A weight prefix is a plain decimal number
followed by a colon and, right after it, a non-digit: ``2:cat``, ``0.5:"a red car"``, while
``12:30 sunset`` stays text, since a digit after the colon reads as a time, not a weight.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .errors import QueryError

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_PARTS",
    "MAX_QUERY_LENGTH",
    "QueryPart",
    "combine",
    "parse_image",
    "parse_query",
]

MAX_QUERY_LENGTH = 2000
"""Longer queries are refused: CLIP reads 77 tokens per text part, so nobody means them."""
MAX_PARTS = 16
"""Each part costs an encoder run: more than this is a mistake or an attack, not a search."""

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
)

_WEIGHT = re.compile(r"(\d+(?:\.\d+)?):(?=[^\s\d])")
_ID = re.compile(r"#(\d+)")
_QUOTES = "\"'"
_MAX_ID = 2**63 - 1  # SQLite's INTEGER PRIMARY KEY range
# Below this norm the summed vector is rounding noise, not a direction.
_CANCELLED = 1e-6


@dataclass(frozen=True)
class QueryPart:
    """One signed, weighted term of a query.

    ``weight`` carries the operator's sign (``- 2:x`` is -2.0) so that callers can sum without
    knowing the syntax. ``value`` is the text, the path string as written, or the integer id.
    """

    weight: float
    kind: Literal["text", "image", "id"]
    value: str | int


def _default_is_image_path(part: str) -> bool:
    """Without a library to ask, an existing file with an image suffix counts as an image."""
    return os.path.splitext(part)[1].lower() in IMAGE_SUFFIXES and os.path.isfile(part)


def parse_query(
    query: str, *, is_image_path: Callable[[str], bool] = _default_is_image_path
) -> list[QueryPart]:
    """Split a query into signed, weighted parts.

    ``is_image_path`` decides which parts are images, because only the caller knows which
    files it may read: by default an existing file with an image suffix is one, while the
    web API's searches (``Library.search(paths=False)``) pass a check that says no to every
    part, so that a client cannot make the server read its files. Every malformed query raises
    :class:`~imagefind.errors.QueryError` with a message that says what to change.
    """
    if len(query) > MAX_QUERY_LENGTH:
        raise QueryError(
            f"query is too long ({len(query)} characters, at most {MAX_QUERY_LENGTH}): shorten it"
        )
    if not query.strip():
        raise QueryError("query is empty: give some text, an image path or an #id")
    parts = _split(query)
    if len(parts) > MAX_PARTS:
        raise QueryError(f"query has {len(parts)} parts, at most {MAX_PARTS}: combine fewer")
    return [
        _classify(sign, weight, raw, quoted, is_image_path) for sign, weight, raw, quoted in parts
    ]


def _is_operator(query: str, i: int) -> bool:
    """A ``+``/``-`` counts only with whitespace (or an end of the query) on both sides."""
    return (
        query[i] in "+-"
        and (i == 0 or query[i - 1].isspace())
        and (i + 1 == len(query) or query[i + 1].isspace())
    )


def _skip_space(query: str, i: int) -> int:
    while i < len(query) and query[i].isspace():
        i += 1
    return i


def _split(query: str) -> list[tuple[float, float, str, bool]]:
    """Scan the query once into (sign, weight, raw term, quoted) tuples.

    A hand-written scanner rather than a regex split, because operators inside quotes must
    not split and the errors should say where the problem is.
    """
    parts: list[tuple[float, float, str, bool]] = []
    n = len(query)
    i = _skip_space(query, 0)
    sign, op = 1.0, ""
    if _is_operator(query, i):
        sign, op = (1.0 if query[i] == "+" else -1.0), query[i]
        i = _skip_space(query, i + 1)
    while True:
        start = i
        weight = 1.0
        m = _WEIGHT.match(query, i)
        if m:
            weight = float(m.group(1))
            i = m.end()
        quoted = i < n and query[i] in _QUOTES
        if quoted:
            close = query.find(query[i], i + 1)
            if close < 0:
                raise QueryError(
                    f"unclosed quote {query[i]} at position {i + 1}: close it, or quote the "
                    f"whole part with the other kind of quote"
                )
            raw = query[i + 1 : close]
            i = _skip_space(query, close + 1)
            if i < n and not _is_operator(query, i):
                raise QueryError(
                    f"unexpected text after the closing quote at position {close + 1}: "
                    f"put it inside the quotes, or join it with + or -"
                )
        else:
            j = i
            while j < n and not _is_operator(query, j):
                j += 1
            raw = query[i:j].strip()
            i = j
        if not raw:
            where = f"after '{op}'" if op else "at the start"
            raise QueryError(
                f"empty query part {where} (position {start + 1}): add a term or remove the "
                "operator"
            )
        if weight == 0:
            raise QueryError(
                f"weight 0 in '{query[start:i].strip()}' makes the part do nothing: remove it "
                "or give it a non-zero weight"
            )
        parts.append((sign, weight, raw, quoted))
        if i >= n:
            return parts
        # Here query[i] is an operator.
        sign, op = (1.0 if query[i] == "+" else -1.0), query[i]
        i = _skip_space(query, i + 1)


def _classify(
    sign: float, weight: float, raw: str, quoted: bool, is_image_path: Callable[[str], bool]
) -> QueryPart:
    signed = math.copysign(weight, sign)
    if not quoted and _ID.fullmatch(raw):
        return QueryPart(signed, "id", _id_of(raw))
    if is_image_path(raw):
        return QueryPart(signed, "image", raw)
    return QueryPart(signed, "text", raw)


def _id_of(raw: str) -> int:
    """The id of an ``#digits`` term, checked against the range ids can have."""
    image_id = int(raw[1:])
    if image_id > _MAX_ID:
        raise QueryError(f"image id {raw} is out of range: no image has such an id")
    return image_id


def parse_image(arg: str) -> int | str:
    """A command-line image argument: ``#42`` is the id 42, anything else a path, so that
    ``3`` (maybe a folder) is never taken for an id. A ``#`` without digits is refused
    rather than guessed at."""
    if not arg.startswith("#"):
        return arg
    if not _ID.fullmatch(arg):
        raise QueryError(
            f"{arg!r} is not an image id: an id is # and digits (#42); write a path that "
            f"starts with # as ./{arg}"
        )
    return _id_of(arg)


def combine(vectors: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Weighted sum of the L2-normalised rows of ``vectors``, L2-normalised.

    Each row is normalised first so that a weight means the same for every part, whatever
    its encoder's scale. The result is float32 [D], ready for cosine search. Parts that
    cancel out (``cat - cat``) leave no direction to search in and raise QueryError.
    """
    vecs = np.asarray(vectors, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if vecs.ndim != 2 or vecs.shape[0] == 0:
        raise ValueError(f"vectors must be a non-empty [N, D] array, got shape {vecs.shape}")
    if w.shape != (vecs.shape[0],):
        raise ValueError(f"{w.size} weights for {vecs.shape[0]} vectors")
    if not (np.isfinite(vecs).all() and np.isfinite(w).all()):
        raise ValueError("vectors and weights must be finite")
    norms = np.linalg.norm(vecs, axis=1)
    if (norms < _CANCELLED).any():
        raise QueryError("a query part has an all-zero vector, so it has no direction to add")
    total = (w / norms) @ vecs
    norm = float(np.linalg.norm(total))
    if norm < _CANCELLED:
        raise QueryError("the query parts cancel each other out: change a part or a weight")
    unit: np.ndarray = (total / norm).astype(np.float32)
    return unit
