"""The filter bar end to end: a real server and Chromium. Facets fill the bar, each filter
narrows the gallery and the search, the timeline groups the gallery by month, cards show
date and place, and the URL holds it all: a reload (or a shared link) restores it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from imagefind.library import Library
from tests import filterkit
from tests.test_web_browser import browser as browser
from tests.test_web_browser import running, shot

pytestmark = pytest.mark.browser


@pytest.fixture
def site(tmp_path: Path, tiny_model_dir: Path) -> Iterator[str]:
    root = tmp_path / "photos"
    filterkit.write_photos(root)
    with Library.open(tmp_path / "lib", model=str(tiny_model_dir)) as library:
        library.index([root])
        filterkit.stamp(library.store, root)
        with running(library) as url:
            yield url


def _query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def test_filter_bar_timeline_and_url_state(site: str, browser: Browser) -> None:
    errors: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(site)
    gallery = page.get_by_test_id("gallery-item")
    expect(gallery).to_have_count(12)
    camera = page.get_by_test_id("filter-camera")
    expect(camera.locator("option", has_text="NIKON D750 (4)")).to_have_count(1)  # facets

    # A camera, then a date: the gallery narrows, the URL follows.
    camera.select_option("NIKON D750")
    expect(gallery).to_have_count(4)
    expect(page.get_by_test_id("filter-meta")).to_have_text("4 images pass")
    page.get_by_test_id("filter-after").fill("2020")
    page.get_by_test_id("filter-after").dispatch_event("change")
    expect(gallery).to_have_count(2)
    assert _query(page) == {"camera": ["NIKON D750"], "after": ["2020"]}

    # The timeline: newest first, a header per month; cards say when and where.
    page.get_by_test_id("filter-timeline").click()
    months = page.get_by_test_id("month")
    expect(months).to_have_count(2)
    assert [months.nth(i).get_attribute("data-month") for i in range(2)] == ["2022-06", "2022-01"]
    expect(gallery.first.get_by_test_id("caption")).to_contain_text("2022-06-15")
    expect(gallery.first.get_by_test_id("caption")).to_contain_text("São Paulo")
    shot(page, "web-filters-timeline.png")

    # A text search under the filters, sorted by date; then a reload restores everything.
    page.get_by_test_id("filter-sort").select_option("date")
    page.get_by_test_id("search-input").fill("a photo")
    page.get_by_test_id("search-button").click()
    results = page.get_by_test_id("result")
    expect(results).to_have_count(2)
    expect(results.first.get_by_test_id("caption")).to_contain_text("2022-01-01")
    assert _query(page)["q"] == ["a photo"] and _query(page)["view"] == ["timeline"]
    page.reload()
    expect(page.get_by_test_id("filter-camera")).to_have_value("NIKON D750")
    expect(page.get_by_test_id("filter-after")).to_have_value("2020")
    expect(page.get_by_test_id("filter-sort")).to_have_value("date")
    expect(page.get_by_test_id("search-input")).to_have_value("a photo")
    expect(page.get_by_test_id("result")).to_have_count(2)
    expect(page.get_by_test_id("month")).to_have_count(2)

    # A bad date says why; clearing the filters brings the whole library back.
    page.get_by_test_id("filter-after").fill("yesterday-ish")
    page.get_by_test_id("filter-after").dispatch_event("change")
    expect(page.get_by_test_id("status")).to_contain_text("after 'yesterday-ish': not a date")
    page.get_by_test_id("filter-clear").click()
    expect(gallery).to_have_count(12)
    assert "camera" not in _query(page)
    assert errors == []
