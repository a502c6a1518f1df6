"""Text in images over HTTP and in the page: the ``mode`` parameter, ``text`` and
``text_match`` on every hit, the selector and the highlighted snippet in a real Chromium.
The text is stored as OCR would store it (the OCR itself is tested in test_ocr_*)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect

from imagefind.library import Library
from imagefind.ocr.textquery import compact
from imagefind.stores.text import StoredText
from tests.test_web_browser import browser as browser  # fixture: browser
from tests.test_web_browser import jpeg_file, running
from tests.webkit import client_fixture as client_fixture  # fixture: client
from tests.webkit import lib_fixture as lib_fixture  # fixture: lib

TEXTS = ["Settings WiFi-Password: Sunflower <b>x</b>", "Open Air 2023", ""]


def _with_text(lib: Library, folder: Path) -> list[int]:
    folder.mkdir(exist_ok=True)
    for i in range(len(TEXTS)):
        jpeg_file(folder, f"{i}.jpg", seed=i)
    lib.index([folder])
    ids = sorted(lib.store.ids())
    lib.store.put_texts(
        [StoredText(i, t, compact(t), 0.9, "[]", "test") for i, t in zip(ids, TEXTS, strict=True)]
    )
    return ids


def test_search_modes_and_text_on_hits(client: TestClient, lib: Library, tmp_path: Path) -> None:
    ids = _with_text(lib, tmp_path / "pics")
    body = client.get("/api/search", params={"q": "wifi password"}).json()
    assert body["mode"] == "hybrid" and body["hits"][0]["id"] == ids[0]
    text = client.get("/api/search", params={"q": "sunflower", "mode": "text"}).json()
    assert [h["id"] for h in text["hits"]] == [ids[0]]
    assert text["hits"][0]["text_match"].count("⟦Sunflower⟧") == 1
    assert text["hits"][0]["text"].startswith("Settings")
    clip = client.get("/api/search", params={"q": "open", "mode": "clip", "k": 3}).json()
    assert clip["mode"] == "clip" and len(clip["hits"]) == 3
    assert {h["id"]: h["text"] for h in clip["hits"]}[ids[2]] is None  # no text read
    bad = client.get("/api/search", params={"q": "x", "mode": "fuzzy"})
    assert bad.status_code == 422
    similar = client.get(f"/api/images/{ids[0]}/similar").json()
    assert similar["mode"] == "clip"


@pytest.fixture
def text_server(tmp_path: Path, tiny_model_dir: Path) -> Iterator[str]:
    with Library.open(tmp_path / "lib", model=str(tiny_model_dir)) as lib:
        _with_text(lib, tmp_path / "pics")
        with running(lib) as base:
            yield base


@pytest.mark.browser
def test_the_page_highlights_the_match(text_server: str, browser: Browser) -> None:
    page = browser.new_page()
    page.goto(text_server)
    page.select_option("[data-testid=search-mode]", "text")
    page.fill("[data-testid=search-input]", "password")
    page.click("[data-testid=search-button]")
    snippet = page.locator("[data-testid=result] [data-testid=text-match]")
    expect(snippet).to_have_count(1)
    expect(snippet.locator("mark")).to_have_text("Password")
    expect(snippet).to_contain_text("<b>x</b>")  # OCR text is shown as text, never as HTML
    page.close()
