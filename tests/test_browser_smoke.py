"""Temporary: proves the browser stack (Playwright driving Debian's Chromium) works here.

To be replaced by the web app's end-to-end tests.
"""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>smoke</title></head>
<body>
  <p id="status">waiting</p>
  <button id="go" onclick="document.getElementById('status').textContent = 'clicked'">Go</button>
</body></html>
"""

pytestmark = pytest.mark.browser


def output_dir() -> Path:
    default = Path(__file__).resolve().parent.parent / "test-output"
    out = Path(os.environ.get("IMAGEFIND_TEST_OUTPUT", default))
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "index.html").write_text(PAGE, encoding="utf-8")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    # Port 0: the OS picks a free port, so parallel runs never collide.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()


def test_click_changes_page(site: str) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup.sh --dev")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(site)
            assert page.text_content("#status") == "waiting"
            page.click("#go")
            expect(page.locator("#status")).to_have_text("clicked")
            page.screenshot(path=str(output_dir() / "browser_smoke.png"))
        finally:
            browser.close()
