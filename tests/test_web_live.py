"""``serve --watch``: the watcher runs inside the server, ``/api/health`` reports it, and the
gallery in a real browser shows a file dropped into a watched folder without a reload."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect

from imagefind.library import Library
from imagefind.watch import Watcher
from imagefind.web import create_app
from tests.test_web_browser import browser as browser
from tests.test_web_browser import jpeg_file, running


def _until(check, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_health_reports_the_watcher(tmp_path: Path, tiny_model_dir: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    jpeg_file(folder, "a.jpg", seed=1)
    with Library.open(tmp_path / "lib", model=str(tiny_model_dir)) as lib:
        watcher = Watcher(lib, [folder], settle=0.2)
        with TestClient(create_app(lib, watcher=watcher)) as client:
            _until(lambda: client.get("/api/health").json()["watcher"]["state"] == "watching")
            health = client.get("/api/health").json()
            assert health["watcher"]["folders"] == [str(folder)]
            assert health["count"] == 1  # caught up
            jpeg_file(folder, "b.jpg", seed=2)
            _until(lambda: client.get("/api/health").json()["count"] == 2)
            assert client.get("/api/health").json()["watcher"]["last_change"] is not None
        assert watcher.state().state == "stopped"  # stopped with the app
        assert create_app(lib).state.imagefind.watcher is None


@pytest.mark.browser
def test_gallery_shows_new_files_without_reload(
    tmp_path: Path, tiny_model_dir: Path, browser: Browser
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    with Library.open(tmp_path / "lib", model=str(tiny_model_dir)) as lib:
        watcher = Watcher(lib, [folder], settle=0.2)
        with running(lib, watcher=watcher) as url:
            _until(lambda: httpx.get(f"{url}/api/health").json()["watcher"]["state"] == "watching")
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url)
            expect(page.get_by_test_id("empty-state")).to_be_visible()
            jpeg_file(folder, "dropped.jpg", seed=3)
            expect(page.get_by_test_id("gallery-item")).to_have_count(1, timeout=30_000)
            expect(page.get_by_test_id("count")).to_have_text("1 image")
            jpeg_file(folder, "second.jpg", seed=4)
            expect(page.get_by_test_id("gallery-item")).to_have_count(2, timeout=30_000)
            assert errors == []
