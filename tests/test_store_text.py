"""The image_text table and text search, the same suite on both stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imagefind.ocr.textquery import compact, parse_terms
from imagefind.records import ModelIdentity, NewImage
from imagefind.stores import Store, open_store
from imagefind.stores.embedded.schema import MIGRATIONS as SQLITE_MIGRATIONS
from imagefind.stores.postgres.schema import MIGRATIONS as PG_MIGRATIONS
from imagefind.stores.text import StoredText

DIM = 8


@pytest.fixture
def db(tmp_path: Path, store: str | None) -> Store:
    opened = open_store(store, tmp_path / "lib")
    opened.bind_model(ModelIdentity("test", DIM, "f"))
    yield opened
    opened.close()


def _add(db: Store, n: int) -> list[int]:
    rows = [
        NewImage(
            path=f"/pics/{i}.png",
            upload_key=None,
            sha256=f"{i:064x}",
            size=1,
            mtime=0.0,
            width=10,
            height=10,
            format="PNG",
            taken_at=None,
        )
        for i in range(n)
    ]
    rng = np.random.default_rng(0)
    return db.add(rows, rng.normal(size=(n, DIM)).astype(np.float32))


def _text(image_id: int, text: str) -> StoredText:
    return StoredText(image_id, text, compact(text), 0.9, "[]", "test")


def _search(db: Store, query: str, **kw: object) -> list[int]:
    terms = [(t.compact, t.weight) for t in parse_terms(query)]
    return [i for i, _ in db.search_text(terms, 10, **kw)]  # type: ignore[arg-type]


def test_migration_is_appended_to_both_stores() -> None:
    """After the first schema, never in it: libraries made before OCR gain the table."""
    names = [m.__name__ for m in SQLITE_MIGRATIONS]
    assert names.index("_migrate_ocr") > names.index("_migrate_v1")
    with_text = [i for i, m in enumerate(PG_MIGRATIONS) if any("image_text" in s for s in m)]
    assert len(with_text) == 1 and with_text[0] > 0


def test_texts_are_stored_replaced_and_unread_tracked(db: Store) -> None:
    a, b, c = _add(db, 3)
    assert db.unread_ids() == [a, b, c] and not db.has_text()
    db.put_texts([_text(a, "WiFi-Password"), StoredText(b, "", "", None, "[]", "t", "boom")])
    assert db.unread_ids() == [c]
    assert db.unread_ids(errors=True) == [b, c]
    assert db.texts([a, b])[b].error == "boom"
    db.put_texts([_text(a, "Receipt")])
    assert db.texts([a])[a].text == "Receipt"
    counts = db.text_counts()
    assert (counts.read, counts.with_text, counts.errors, counts.unread) == (2, 1, 1, 1)
    assert db.has_text()


def test_text_of_a_removed_image_goes_and_a_late_write_is_dropped(db: Store) -> None:
    a, b = _add(db, 2)
    db.put_texts([_text(a, "Open Air 2023")])
    db.remove([a, b])
    db.put_texts([_text(b, "late")])  # OCR finished after the image was removed
    assert db.texts([a, b]) == {} and _search(db, "open") == []


def test_words_inside_longer_strings_case_and_accent_blind(db: Store) -> None:
    a, b, c = _add(db, 3)
    db.put_texts([_text(a, "WiFi-Password: hunter2"), _text(b, "CAFÉ Müller"), _text(c, "")])
    assert _search(db, "wifi") == [a]
    assert _search(db, "PASSWORD") == [a]
    assert _search(db, "cafe muller") == [b]
    assert _search(db, "Café") == [b]
    assert _search(db, "nothing") == []


def test_more_words_found_rank_higher_and_phrases_need_order(db: Store) -> None:
    a, b, c = _add(db, 3)
    db.put_texts([_text(a, "air open 2023 and more"), _text(b, "Open Air 2023"), _text(c, "Open")])
    assert _search(db, "open air 2023") == [b, a, c]  # b and a hold all: the shorter first
    assert _search(db, '"open air 2023"') == [b]
    db.put_texts([_text(a, "air open 2023")])  # as short as b: the words side by side win
    ranked = db.search_text([("open", 1), ("air", 1), ("2023", 1)], 10, together="openair2023")
    assert [i for i, _ in ranked][:2] == [b, a]
    scores = dict(db.search_text([("openair2023", 3), ("zzz", 1)], 10))
    assert scores == {b: 0.75}


def test_short_terms_and_chinese(db: Store) -> None:
    a, b = _add(db, 2)
    db.put_texts([_text(a, "Gate B7"), _text(b, "欢迎光临 北京站")])
    assert _search(db, "b7") == [a]  # two characters: below a trigram, still found
    assert _search(db, "北京") == [b]
    assert _search(db, "光临") == [b]


def test_a_condition_restricts_the_ranking(db: Store) -> None:
    ids = _add(db, 4)
    db.put_texts([_text(i, f"Ticket {i}") for i in ids])
    p = "?" if db.PLACEHOLDER == "?" else "%s"  # type: ignore[attr-defined]
    kept = _search(db, "ticket", where=f"id > {p}", params=(ids[1],))
    assert kept == ids[2:]


def test_the_ocr_setting_is_remembered(db: Store, tmp_path: Path, store: str | None) -> None:
    assert not db.ocr_enabled()
    db.set_ocr_enabled(True)
    again = open_store(store, tmp_path / "lib")
    try:
        assert again.ocr_enabled()
        again.set_ocr_enabled(False)
        assert not db.ocr_enabled()
    finally:
        again.close()


def test_store_copy_takes_the_text_and_the_setting(
    db: Store, store: str | None, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from imagefind.stores.copy import copy_store

    a, b = _add(db, 2)
    db.put_texts([_text(a, "WiFi-Password")])
    db.set_ocr_enabled(True)
    other = None if store else request.getfixturevalue("pg_url")  # into the other store
    dst = open_store(other, tmp_path / "copy")
    try:
        copy_store(db, dst)
        assert dst.texts([a, b]) == db.texts([a, b]) and dst.ocr_enabled()
        assert _search(dst, "wifi") == [a] and dst.unread_ids() == [b]
    finally:
        dst.close()
