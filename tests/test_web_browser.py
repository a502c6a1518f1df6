"""End to end: a real server on a free port, driven by a real Chromium through Playwright.

Screenshots of each step go to ``IMAGEFIND_TEST_OUTPUT`` (default ``<repo>/test-output``);
``web-app.png`` is the one the README shows.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright

from imagefind.library import Library
from imagefind.web import create_app
from tests.synth import natural_image, shape_image

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.browser


def output_dir() -> Path:
    default = Path(__file__).resolve().parent.parent / "test-output"
    out = Path(os.environ.get("IMAGEFIND_TEST_OUTPUT", default))
    out.mkdir(parents=True, exist_ok=True)
    return out


def jpeg_file(folder: Path, name: str, seed: int) -> Path:
    buf = BytesIO()
    natural_image(320, 240, seed=seed).save(buf, "JPEG", quality=88)
    path = folder / name
    path.write_bytes(buf.getvalue())
    return path


@contextmanager
def running(library: Library, **options: Any) -> Iterator[str]:
    """uvicorn in a thread on a port the OS picked; yields its base URL once it answers.
    ``options`` go to ``create_app`` (e.g. ``auth_required=True``, as off loopback)."""
    app = create_app(library, allowed_hosts=["127.0.0.1"], **options)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the server did not answer /api/health within 30 s")
        time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def server(tmp_path: Path, tiny_model_dir: Path) -> Iterator[str]:
    """A real server over a fresh library with the tiny model."""
    with (
        Library.open(tmp_path / "lib", model=str(tiny_model_dir)) as library,
        running(library) as url,
    ):
        yield url


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup.sh --dev")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def shot(page: Page, name: str, full: bool = False) -> None:
    page.wait_for_timeout(150)  # let images and smooth scrolling settle
    page.screenshot(path=str(output_dir() / name), full_page=full)


def visible_results(page: Page) -> int:
    return page.locator('[data-testid="result"]:visible').count()


def test_upload_search_similar_threshold_delete(
    server: str, browser: Browser, tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    files = [jpeg_file(folder, f"holiday-{i}.jpg", seed=i) for i in range(3)]
    errors: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(server)
    expect(page.get_by_test_id("empty-state")).to_be_visible()
    expect(page.get_by_test_id("model-name")).not_to_have_text("none")
    shot(page, "web-01-empty.png")

    # 1. Upload three images through the file input: they appear in the gallery.
    page.get_by_test_id("upload-input").set_input_files([str(f) for f in files])
    gallery = page.get_by_test_id("gallery-item")
    expect(gallery).to_have_count(3)
    expect(page.get_by_test_id("count")).to_have_text("3 images")
    expect(page.get_by_test_id("empty-state")).to_be_hidden()
    expect(page.locator('[data-testid="upload-row"] .state')).to_have_text(["added"] * 3)
    expect(page.get_by_test_id("upload-summary")).to_have_text("Uploads: 3 added")
    shot(page, "web-02-uploaded.png")

    # 2. Text search: scored results, best first, three decimals.
    page.get_by_label("Search text").fill("a holiday photo of the sea")
    page.get_by_test_id("search-button").click()
    results = page.get_by_test_id("result")
    expect(results).to_have_count(3)
    scores = [float(s) for s in page.get_by_test_id("score").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)
    assert all(len(s.split(".")[1]) == 3 for s in page.get_by_test_id("score").all_inner_texts())
    expect(page.get_by_test_id("results-title")).to_contain_text("Text results")
    shot(page, "web-03-text-search.png")

    # 3. "Similar" on a result gives image search results, without the image itself.
    first = results.first
    query_id = first.get_attribute("data-id")
    first.get_by_test_id("similar").click()
    expect(page.get_by_test_id("results-title")).to_contain_text("Image results")
    expect(page.get_by_test_id("mode-image")).to_have_attribute("aria-pressed", "true")
    expect(results).to_have_count(2)
    assert query_id not in [r.get_attribute("data-id") for r in results.all()]
    shot(page, "web-04-similar.png")

    # 4. The threshold slider hides weaker results live, without a new request.
    before = visible_results(page)
    slider = page.get_by_test_id("threshold")
    slider.fill(slider.get_attribute("max") or "1")
    expect(page.locator('[data-testid="result"]:visible')).to_have_count(1)
    assert visible_results(page) < before
    expect(page.get_by_test_id("results-meta")).to_contain_text("1 of 2 shown")
    shot(page, "web-05-threshold.png")
    slider.fill(slider.get_attribute("min") or "-1")
    expect(page.locator('[data-testid="result"]:visible')).to_have_count(2)

    # 5. Delete from the gallery (accepting the confirm): gone from gallery and search.
    victim = gallery.first
    victim_id = victim.get_attribute("data-id")
    page.once("dialog", lambda dialog: dialog.accept())
    victim.get_by_test_id("delete").click()
    expect(page.get_by_test_id("count")).to_have_text("2 images")
    expect(page.locator(f'[data-testid="gallery-item"][data-id="{victim_id}"]')).to_have_count(0)
    expect(page.locator(f'[data-testid="result"][data-id="{victim_id}"]')).to_have_count(0)
    page.get_by_test_id("mode-text").click()
    page.get_by_label("Search text").fill("anything at all")
    page.get_by_test_id("search-button").click()
    expect(results).to_have_count(2)
    assert victim_id not in [r.get_attribute("data-id") for r in results.all()]
    shot(page, "web-06-deleted.png")
    assert errors == []


def test_readme_and_phone_screenshots(server: str, browser: Browser, tmp_path: Path) -> None:
    """A fuller library for the README picture, and the same page at phone width."""
    folder = tmp_path / "photos"
    folder.mkdir()
    colours = [(220, 60, 50), (40, 120, 220), (40, 170, 90), (240, 180, 30), (150, 70, 190)]
    paths = [jpeg_file(folder, f"photo-{i:02d}.jpg", seed=10 + i) for i in range(7)]
    for i, colour in enumerate(colours):
        path = folder / f"shape-{i}.png"
        shape_image(colour, ("circle", "square")[i % 2], size=240, seed=i).save(path)
        paths.append(path)
    paths.append(folder / "notes.txt")
    paths[-1].write_text("not an image")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(server)
    page.get_by_test_id("upload-input").set_input_files([str(p) for p in paths])
    expect(page.get_by_test_id("gallery-item")).to_have_count(12)
    expect(page.get_by_test_id("upload-error")).to_contain_text("not a supported image")
    expect(page.get_by_test_id("upload-summary")).to_have_text("Uploads: 12 added, 1 failed")
    page.get_by_label("Search text").fill("a red circle")
    page.get_by_test_id("search-button").click()
    expect(page.get_by_test_id("result")).to_have_count(12)
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "web-app.png", full=True)

    page.get_by_test_id("tab-duplicates").click()
    expect(page.get_by_test_id("duplicates-view")).to_be_visible()
    expect(page.get_by_test_id("duplicates-meta")).not_to_be_empty()
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "web-duplicates.png", full=True)

    phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    phone.goto(server)
    expect(phone.get_by_test_id("gallery-item")).to_have_count(12)
    phone.get_by_label("Search text").fill("a blue square")
    phone.get_by_test_id("search-button").click()
    expect(phone.get_by_test_id("result")).to_have_count(12)
    phone.evaluate("window.scrollTo(0, 0)")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at phone width ({width}px)"
    shot(phone, "web-phone.png")
    shot(phone, "web-phone-full.png", full=True)


def test_missing_model_message(browser: Browser, tmp_path: Path) -> None:
    """Without a model the page still opens, says why and how to fix it; browsing works."""
    broken = tmp_path / "no-model"
    broken.mkdir()
    with Library.open(tmp_path / "lib", model=str(broken)) as library, running(library) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(url)
        banner = page.get_by_test_id("model-missing")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("imagefind models download")
        expect(page.get_by_test_id("empty-state")).to_be_visible()
        page.get_by_label("Search text").fill("cat")
        page.get_by_test_id("search-button").click()
        expect(page.get_by_test_id("status")).to_contain_text("Search failed")
        shot(page, "web-model-missing.png")


def test_the_api_docs_render_offline_under_the_csp(server: str, browser: Browser) -> None:
    """Swagger UI comes from a package, not a CDN, and runs without inline script."""
    errors: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{server}/api/docs")
    expect(page.locator(".opblock-summary-path", has_text="/api/search").first).to_be_visible()
    expect(page.locator(".info .title")).to_contain_text("imagefind")
    shot(page, "web-api-docs.png")
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
