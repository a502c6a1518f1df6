"""End to end, a private server (as off loopback) in a real Chromium: log in, work, log out;
an expired session; and a page from another origin that tries to write with the victim's
session, refused with nothing changed."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from imagefind.library import Library
from imagefind.web.auth import SESSION_COOKIE, Secrets, Sessions
from tests.test_web_browser import browser as browser  # fixture: browser
from tests.test_web_browser import jpeg_file, running, shot
from tests.webkit import jpeg

pytestmark = pytest.mark.browser

TOKEN = "browser-test-token-0123456789"
PASSWORD = "browser test passphrase"


@pytest.fixture
def private(tmp_path: Path, tiny_model_dir: Path) -> Iterator[tuple[str, Library]]:
    """A real server that needs a login for everything, as ``serve`` builds it off loopback."""
    with (
        Library.open(tmp_path / "lib", model=str(tiny_model_dir)) as library,
        running(library, token=TOKEN, password=PASSWORD, auth_required=True) as url,
    ):
        yield url, library


def watch_errors(page: Page) -> list[str]:
    """Script errors and CSP violations (Chromium logs those as console errors); the 401 of
    a wrong login is expected and left out."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and "status of 401" not in msg.text
            else None
        ),
    )
    return errors


def log_in(page: Page, base: str, secret: str) -> None:
    page.goto(base)
    expect(page).to_have_url(f"{base}/login?next=%2F")
    page.get_by_label("Key or password").fill(secret)
    page.get_by_test_id("login-button").click()
    expect(page).to_have_url(f"{base}/")


def session_cookie(base: str, issued_at: float | None = None) -> dict[str, str]:
    """A cookie signed with the server's key (derived from its token), issued when asked."""
    sessions = Sessions(Secrets(TOKEN, None).session_key(), 12 * 3600)
    return {"name": SESSION_COOKIE, "value": sessions.issue(issued_at), "url": base}


def test_login_work_logout(private: tuple[str, Library], browser: Browser, tmp_path: Path) -> None:
    base, _ = private
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors = watch_errors(page)
    page.goto(base)
    expect(page).to_have_url(f"{base}/login?next=%2F")
    shot(page, "auth-01-login.png")

    page.get_by_label("Key or password").fill("not the password")
    page.get_by_test_id("login-button").click()
    expect(page.get_by_test_id("login-error")).to_have_text("Wrong key or password.")
    page.get_by_label("Key or password").fill(PASSWORD)
    page.get_by_test_id("login-button").click()
    expect(page).to_have_url(f"{base}/")
    expect(page.get_by_test_id("empty-state")).to_be_visible()
    expect(page.get_by_test_id("token")).to_have_count(0)  # the session writes, not a token

    # Writes from the page carry the session's CSRF token.
    photo = jpeg_file(tmp_path, "mine.jpg", seed=3)
    page.get_by_test_id("upload-input").set_input_files([str(photo)])
    expect(page.get_by_test_id("gallery-item")).to_have_count(1)
    page.get_by_label("Search text").fill("a photo")
    page.get_by_test_id("search-button").click()
    expect(page.get_by_test_id("result")).to_have_count(1)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("gallery-item").first.get_by_test_id("delete").click()
    expect(page.get_by_test_id("count")).to_have_text("0 images")
    shot(page, "auth-02-signed-in.png")

    page.get_by_test_id("logout").click()
    expect(page).to_have_url(f"{base}/login")
    page.goto(f"{base}/api/images")
    expect(page).to_have_url(f"{base}/login?next=%2Fapi%2Fimages")
    assert page.request.get(f"{base}/api/images").status == 401
    assert errors == []


def test_an_expired_session_means_logging_in_again(
    private: tuple[str, Library], browser: Browser
) -> None:
    base, _ = private
    context: BrowserContext = browser.new_context()
    page = context.new_page()
    context.add_cookies([session_cookie(base, issued_at=time.time() - 13 * 3600)])  # type: ignore[list-item]
    page.goto(base)
    expect(page).to_have_url(f"{base}/login?next=%2F")

    # A fresh cookie from the same key works (so it was the expiry that failed above) ...
    context.add_cookies([session_cookie(base)])  # type: ignore[list-item]
    page.goto(base)
    expect(page).to_have_url(f"{base}/")
    expect(page.get_by_test_id("logout")).to_be_visible()
    # ... and when it runs out while the page is open, the next search leads to the login.
    context.add_cookies([session_cookie(base, issued_at=time.time() - 13 * 3600)])  # type: ignore[list-item]
    page.get_by_label("Search text").fill("anything")
    page.get_by_test_id("search-button").click()
    expect(page).to_have_url(f"{base}/login?next=%2F")
    context.close()


EVIL = """<!doctype html><html><body>
<form id="f" method="post" action="{app}/api/images" enctype="multipart/form-data">
<input name="files" value="not a file"></form>
<script>
const bytes = Uint8Array.from(atob("{jpeg}"), (c) => c.charCodeAt(0));
const body = new FormData();
body.append("files", new Blob([bytes], {{type: "image/jpeg"}}), "planted.jpg");
Promise.allSettled([
  fetch("{app}/api/images", {{method: "POST", body, mode: "no-cors", credentials: "include"}}),
  fetch("{app}/api/images/{victim}", {{method: "DELETE", credentials: "include"}}),
]).then(() => {{ document.title = "tried"; document.getElementById("f").submit(); }});
</script></body></html>"""


@contextmanager
def another_origin(html: str) -> Iterator[str]:
    """A page served from another port on loopback: another origin (same site)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_cross_site_post_is_refused(private: tuple[str, Library], browser: Browser) -> None:
    base, library = private
    victim = library.add(jpeg(7), name="keep-me.jpg").id
    page = browser.new_page()
    log_in(page, base, TOKEN)  # the victim is logged in: the cookie would go along
    seen: list[tuple[str, str, int]] = []
    page.on(
        "response",
        lambda r: (
            seen.append((r.request.method, r.url, r.status)) if r.url.startswith(base) else None
        ),
    )
    evil = EVIL.format(app=base, jpeg=base64.b64encode(jpeg(8)).decode(), victim=victim)
    with another_origin(evil) as url:
        page.goto(url)
        expect(page).to_have_url(f"{base}/api/images")  # the form went through to the app ...
    assert "forbidden" in page.content()  # ... and was refused
    posts = [status for method, _, status in seen if method == "POST"]
    assert posts == [403, 403], seen  # the fetch and the form: no CSRF token, foreign origin
    assert not any(method == "DELETE" for method, _, _ in seen), seen  # CORS stopped it first
    assert library.count() == 1 and library.get(victim).id == victim  # nothing changed
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}) as api:
        assert api.get("/api/images").json()["total"] == 1
