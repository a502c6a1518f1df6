"""The query-language picker: rendered only for a model that reads the language (NLLB-CLIP),
starting at the browser's language, sent as ``lang`` on ``/api/search``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect

from imagefind.library import Library
from imagefind.models.languages import PICKER_TAGS, to_flores
from imagefind.web import create_app
from tests.familykit import nllb_fixture as nllb_fixture  # fixture: nllb
from tests.test_web_browser import browser as browser  # fixture: browser
from tests.test_web_browser import running


@pytest.fixture
def nllb_library(tmp_path: Path, nllb: tuple) -> Iterator[Library]:
    with Library.open(tmp_path / "nllb-lib", model=str(nllb[0])) as library:
        yield library


@pytest.fixture
def clip_library(tmp_path: Path, tiny_model_dir: Path) -> Iterator[Library]:
    with Library.open(tmp_path / "clip-lib", model=str(tiny_model_dir)) as library:
        yield library


def test_picker_tags_are_known_languages() -> None:
    assert len(set(PICKER_TAGS)) == len(PICKER_TAGS)
    assert {"en", "de", "pt", "zh-Hans", "zh-Hant"} <= set(PICKER_TAGS)
    for tag in PICKER_TAGS:
        to_flores(tag)  # raises for a tag the model would refuse


def test_page_has_the_picker_only_for_a_model_that_reads_the_language(
    nllb_library: Library, clip_library: Library
) -> None:
    with TestClient(create_app(nllb_library)) as client:
        page = client.get("/").text
    assert 'id="lang"' in page and "Query language" in page
    assert '<option value="de">de</option>' in page
    with TestClient(create_app(clip_library)) as client:
        assert 'id="lang"' not in client.get("/").text


def _search(page: Page, text: str) -> str:
    """Runs a text search in the page; the URL of the /api/search request it sent."""
    with page.expect_request(lambda r: "/api/search?" in r.url) as request:
        page.get_by_test_id("search-input").fill(text)
        page.get_by_test_id("search-button").click()
    expect(page.get_by_test_id("results")).to_be_visible()
    return request.value.url


@pytest.mark.browser
def test_picker_defaults_to_the_browser_language_and_is_sent(
    nllb_library: Library, browser: Browser
) -> None:
    errors: list[str] = []
    with running(nllb_library) as url:
        context = browser.new_context(locale="de-DE")
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        picker = page.get_by_test_id("lang")
        expect(picker).to_be_visible()
        expect(page.get_by_label("Query language")).to_have_value("de")
        assert "&lang=de" in _search(page, "Katze am Strand")
        # Another language re-runs the search with it.
        with page.expect_request(lambda r: "lang=fr" in r.url and "/api/search?" in r.url):
            picker.select_option("fr")
        context.close()
    assert errors == []


@pytest.mark.browser
def test_no_picker_and_no_lang_for_a_clip_model(clip_library: Library, browser: Browser) -> None:
    with running(clip_library) as url:
        context = browser.new_context(locale="de-DE")
        page = context.new_page()
        page.goto(url)
        expect(page.get_by_test_id("search-input")).to_be_visible()
        expect(page.get_by_test_id("lang")).to_have_count(0)
        assert "lang=" not in _search(page, "cat")
        context.close()
