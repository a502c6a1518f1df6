"""What a text search matches: recognised text and queries, normalised alike, and the
snippet that shows a match.

Both are *compacted* before they meet: case folded, accents removed (NFKD, combining marks
dropped), and everything that is not a letter or a digit left out. OCR often drops or adds
spaces and reads punctuation loosely ("WiFi-Password:hunter2"); in compact form the query
``wifi password`` finds it word by word and ``"wifi password"`` as a phrase, and ``café``
finds ``CAFE``. The stores index the compact text with trigrams (SQLite FTS5, PostgreSQL
pg_trgm), so a word is found inside a longer string ("wifi" in "WiFi-Password").

A query is words and ``"quoted phrases"``. An image matches when it holds any of them; it
ranks by how many it holds (a phrase counts as many as its words). Query arithmetic is
not text: standalone ``+``/``-``, weights (``2:``) and parts that are an id (``#42``) are
left out.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

SHORT_TEXT = 160
"""Characters of recognised text a hit carries (``text``); the full text is in the store."""
SNIPPET_CONTEXT = 40
"""Characters of context on each side of the first match in ``text_match``."""
MARK_OPEN, MARK_CLOSE = "\u27e6", "\u27e7"  # ⟦match⟧: never produced by OCR of Latin/CJK text

_PART = re.compile(r'"([^"]*)"?|(\S+)')
_ID = re.compile(r"^(?:\d+(?:\.\d+)?:)?#\d+$")  # a part that is an id, weighted or not
_WEIGHT = re.compile(r"^\d+(?:\.\d+)?:(?=\D)")


def _fold(char: str) -> str:
    """One character, case folded, accents off, only letters and digits kept."""
    decomposed = unicodedata.normalize("NFKD", char.casefold())
    return "".join(c for c in decomposed if c.isalnum())


def compact(text: str) -> str:
    """The searchable form of a text: folded letters and digits, nothing else."""
    return "".join(_fold(c) for c in text)


@dataclass(frozen=True)
class Term:
    """One thing to find: a word, or a quoted phrase, in compact form."""

    compact: str
    weight: int  # words it stands for: a phrase of three words counts three


def _keep(term: str) -> bool:
    """Single Latin letters and digits match almost everything; a CJK character does not."""
    return len(term) >= 2 or any(ord(c) > 0x2E7F for c in term)


def parse_terms(query: str) -> list[Term]:
    """The words and phrases of a query, each once, in order (see the module docstring).
    Parts are split at standalone ``+``/``-`` as in the CLIP grammar: a part that is only an
    id (``#42``) is left out, while ``Room #1984`` is text, words ``room`` and ``1984``."""
    terms: dict[str, Term] = {}
    parts: list[list[tuple[str | None, str | None]]] = [[]]
    for match in _PART.finditer(query):
        phrase, word = match.group(1), match.group(2)
        if phrase is None and word in ("+", "-"):
            parts.append([])
        else:
            parts[-1].append((phrase, word))
    for part in parts:
        if len(part) == 1 and part[0][1] is not None and _ID.match(part[0][1]):
            continue  # an indexed image's id, not text
        for position, (phrase, word) in enumerate(part):
            if phrase is not None:
                term = Term(compact(phrase), max(1, len(phrase.split())))
            else:
                assert word is not None
                text = _WEIGHT.sub("", word) if position == 0 else word
                term = Term(compact(text), 1)
            if _keep(term.compact) and term.compact not in terms:
                terms[term.compact] = term
    return list(terms.values())


def shorten(text: str, limit: int = SHORT_TEXT) -> str:
    """Recognised text for a hit: whitespace collapsed, cut at ``limit`` with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def snippet(text: str, terms: list[Term], context: int = SNIPPET_CONTEXT) -> str | None:
    """The recognised text around its first match, each match marked ``⟦…⟧``; None when
    no term is in it. Matching is on the compact form, mapped back to the original
    characters, so the marks sit on what the image shows ("⟦WiFi-Password⟧")."""
    flat = " ".join(text.split())
    folded: list[str] = []
    origin: list[int] = []  # folded character -> index in ``flat``
    for i, char in enumerate(flat):
        for c in _fold(char):
            folded.append(c)
            origin.append(i)
    haystack = "".join(folded)
    spans: list[tuple[int, int]] = []
    for term in sorted(terms, key=lambda t: -len(t.compact)):
        start = haystack.find(term.compact)
        while start >= 0 and term.compact:
            end = start + len(term.compact)
            span = (origin[start], origin[end - 1] + 1)
            if not any(s < span[1] and span[0] < e for s, e in spans):
                spans.append(span)
            start = haystack.find(term.compact, end)
    if not spans:
        return None
    spans.sort()
    first, last = spans[0][0], spans[0][1]
    lo, hi = max(0, first - context), min(len(flat), last + context)
    out, pos = [], lo
    for s, e in spans:
        if s < lo or e > hi:
            continue
        out += [flat[pos:s], MARK_OPEN, flat[s:e], MARK_CLOSE]
        pos = e
    out.append(flat[pos:hi])
    return ("…" if lo > 0 else "") + "".join(out) + ("…" if hi < len(flat) else "")
