"""The text query: compact form, terms, phrases, snippets (pure functions, no store)."""

from __future__ import annotations

import pytest

from imagefind.ocr.textquery import (
    MARK_CLOSE,
    MARK_OPEN,
    Term,
    compact,
    parse_terms,
    shorten,
    snippet,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("WiFi-Password: hunter2", "wifipasswordhunter2"),
        ("Café MÜLLER", "cafemuller"),
        ("27.11.2026", "27112026"),
        ("Straße", "strasse"),
        ("欢迎 光临", "欢迎光临"),
        ("", ""),
    ],
)
def test_compact_folds_case_accents_and_punctuation(text: str, expected: str) -> None:
    assert compact(text) == expected


def test_terms_words_phrases_and_arithmetic() -> None:
    terms = parse_terms('wifi "Open Air 2023" + 2:Lidl - #42 + a 北 wifi')
    assert terms == [
        Term("wifi", 1),
        Term("openair2023", 3),
        Term("lidl", 1),
        Term("北", 1),  # one CJK character is a word; one Latin letter ("a") is not
    ]


def test_an_id_is_left_out_only_as_a_whole_part() -> None:
    assert parse_terms("Room #1984") == [Term("room", 1), Term("1984", 1)]
    assert parse_terms("beach - 2:#42") == [Term("beach", 1)]


def test_an_unclosed_quote_is_a_phrase_to_the_end() -> None:
    assert parse_terms('"open air') == [Term("openair", 2)]


def test_snippet_marks_the_original_characters() -> None:
    text = "Settings\nNetwork: Home-1000 WiFi-Password: EE3R Updated"
    got = snippet(text, parse_terms("wifi password"))
    assert got is not None
    assert f"{MARK_OPEN}WiFi{MARK_CLOSE}-{MARK_OPEN}Password{MARK_CLOSE}" in got
    phrase = snippet(text, parse_terms('"wifi password"'))
    assert phrase is not None and f"{MARK_OPEN}WiFi-Password{MARK_CLOSE}" in phrase


def test_snippet_is_accent_blind_and_cut_around_the_match() -> None:
    text = "x" * 200 + " Café Müller " + "y" * 200
    got = snippet(text, parse_terms("cafe"), context=10)
    assert got is not None
    assert got.startswith("…") and got.endswith("…")
    assert f"{MARK_OPEN}Café{MARK_CLOSE}" in got and len(got) < 40


def test_snippet_none_without_a_match_and_shorten() -> None:
    assert snippet("nothing here", parse_terms("wifi")) is None
    assert shorten("a  b\n c") == "a b c"
    long = shorten("word " * 100, 20)
    assert len(long) <= 20 and long.endswith("…")
