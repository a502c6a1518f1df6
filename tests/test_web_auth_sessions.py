"""Logging in and staying logged in, in process: the login contract, the rate limit,
sessions, CSRF, CORS and the security headers on every response."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from imagefind.library import Library
from imagefind.web.auth import SESSION_COOKIE, RateLimiter, Sessions
from tests.authkit import PASSWORD, TOKEN, WRONG, first_image, fresh_image, log_in, private
from tests.authkit import app_fixture as app_fixture  # fixture: app
from tests.authkit import client_fixture as client_fixture  # fixture: client
from tests.authkit import lib_fixture as lib_fixture  # fixture: lib
from tests.webkit import assert_error

# -- the login contract (a load test relies on it: keep it exactly) --------------------------


def test_login_contract(client: TestClient) -> None:
    r = client.post("/login", data={"secret": TOKEN}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert "secure" not in flags  # plain HTTP here; see the HTTPS tests
    assert any(f.startswith("max-age=43200") for f in flags)  # 12 hours by default
    assert client.get("/api/images").status_code == 200
    client.cookies.clear()
    r = client.post("/login", data={"secret": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303 and SESSION_COOKIE in r.headers["set-cookie"]


def test_wrong_secrets_are_401_alike(client: TestClient) -> None:
    bodies = set()
    for data in (
        {"secret": "nope"},
        {"secret": TOKEN + "x"},
        {"secret": ""},
        {},
        {"secret": "a" * 2000},
    ):
        r = client.post("/login", data=data, follow_redirects=False)
        assert_error(r, 401)
        assert "set-cookie" not in r.headers
        bodies.add(r.text)
    assert bodies == {'{"error":"unauthorized","detail":"' + WRONG + '"}'}
    page = client.post("/login", data={"secret": "nope"}, headers={"Accept": "text/html"})
    assert page.status_code == 401 and WRONG in page.text and 'name="secret"' in page.text


@pytest.mark.parametrize(
    ("target", "lands"),
    [
        ("/api/images?limit=1", "/api/images?limit=1"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("", "/"),
    ],
)
def test_login_goes_back_to_a_same_site_path_only(
    client: TestClient, target: str, lands: str
) -> None:
    r = client.post("/login", data={"secret": TOKEN, "next": target}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == lands


def test_more_than_ten_failures_a_minute_is_429(app: FastAPI) -> None:
    with (
        TestClient(app, client=("10.9.9.9", 1)) as c,
        TestClient(app, client=("10.9.9.8", 1)) as other,
    ):
        for _ in range(10):
            assert c.post("/login", data={"secret": "guess"}).status_code == 401
        r = c.post("/login", data={"secret": "guess"})
        body = assert_error(r, 429)
        assert body["error"] == "too_many_requests" and 55 <= int(r.headers["retry-after"]) <= 60
        # Blocked: the right secret and the right token are refused too, for a while.
        assert c.post("/login", data={"secret": TOKEN}).status_code == 429
        assert c.get("/api/images", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 429
        assert (
            other.post("/login", data={"secret": TOKEN}, follow_redirects=False).status_code == 303
        )


def test_wrong_bearer_tokens_count_as_failures(app: FastAPI) -> None:
    with TestClient(app, client=("10.9.9.7", 1)) as c:
        codes = [
            c.get("/api/stats", headers={"Authorization": f"Bearer {n}"}).status_code
            for n in range(12)
        ]
    assert codes == [401] * 10 + [429] * 2


def test_the_block_lifts_after_a_while() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    for _ in range(10):
        limiter.failed("a")
    assert limiter.retry_after("a") is None  # ten are allowed
    limiter.failed("a")
    assert limiter.retry_after("a") == 60
    now[0] = 59.5
    assert limiter.retry_after("a") == 1
    now[0] = 60.0
    assert limiter.retry_after("a") is None
    for _ in range(10):  # failures spread over more than a minute never block
        now[0] += 7
        limiter.failed("b")
    now[0] += 7
    limiter.failed("b")
    assert limiter.retry_after("b") is None


# -- sessions --------------------------------------------------------------------------------


def sessions_of(app: FastAPI) -> Sessions:
    sessions: Sessions = app.state.imagefind.auth.sessions
    return sessions


def test_expired_or_tampered_sessions_are_not_logged_in(app: FastAPI, client: TestClient) -> None:
    sessions = sessions_of(app)
    expired = sessions.issue(issued_at=time.time() - 13 * 3600)
    sid, expires, signature = sessions.issue().split(".")
    for value in (
        expired,
        f"{sid}.{int(expires) + 10**6}.{signature}",  # a longer life, with the old signature
        f"{sid}x.{expires}.{signature}",
        f"{sid}.{expires}.{signature[:-2]}AA",
        Sessions(b"another server's key", 3600).issue(),
        "garbage",
    ):
        client.cookies.set(SESSION_COOKIE, value)
        assert_error(client.get("/api/images"), 401)
        r = client.get("/", headers={"Accept": "text/html"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=%2F"
    client.cookies.set(SESSION_COOKIE, f"{sid}.{expires}.{signature}")
    assert client.get("/api/images").status_code == 200


def test_session_hours_sets_the_lifetime(lib: Library) -> None:
    with TestClient(private(lib, session_hours=0.5)) as c:
        r = c.post("/login", data={"secret": TOKEN}, follow_redirects=False)
    assert "max-age=1800" in r.headers["set-cookie"].lower()
    value = r.cookies[SESSION_COOKIE]
    assert abs(int(value.split(".")[1]) - (time.time() + 1800)) < 5


def test_logout_clears_and_revokes_the_session(client: TestClient) -> None:
    log_in(client)
    stolen = client.cookies[SESSION_COOKIE]
    r = client.post("/logout", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert (
        f'{SESSION_COOKIE}=""' in r.headers["set-cookie"]
        and "max-age=0" in r.headers["set-cookie"].lower()
    )
    client.cookies.clear()
    assert_error(client.get("/api/images"), 401)
    client.cookies.set(SESSION_COOKIE, stolen)  # replayed after logout
    assert_error(client.get("/api/images"), 401)


def test_csrf_token_belongs_to_its_session(app: FastAPI, lib: Library) -> None:
    with TestClient(app, client=("10.2.0.1", 1)) as a, TestClient(app, client=("10.2.0.2", 1)) as b:
        csrf_a = log_in(a)
        csrf_b = log_in(b)
        assert csrf_a != csrf_b
        victim = fresh_image(lib)
        assert_error(a.delete(f"/api/images/{victim}", headers={"X-CSRF-Token": csrf_b}), 403)
        assert (
            a.delete(f"/api/images/{victim}", headers={"X-CSRF-Token": csrf_a}).status_code == 200
        )


def test_cross_site_writes_are_refused_even_with_the_csrf_token(
    client: TestClient, lib: Library
) -> None:
    csrf = log_in(client)
    victim = fresh_image(lib)
    headers = {"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
    assert_error(client.delete(f"/api/images/{victim}", headers=headers), 403)
    assert_error(client.post("/logout", headers={"Origin": "http://evil.example"}), 403)
    assert lib.get(victim).id == victim


def test_cors_stays_closed(client: TestClient) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "DELETE"}
    r = client.options("/api/images/1", headers=preflight)
    assert "access-control-allow-origin" not in r.headers
    r = client.get("/api/health", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in r.headers


# -- headers ---------------------------------------------------------------------------------


def test_security_headers_on_every_response(client: TestClient, lib: Library) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    image_id = first_image(lib)
    responses = [
        client.get("/api/images"),  # 401
        client.get("/", headers={"Accept": "text/html"}, follow_redirects=False),  # 303
        client.get("/login"),
        client.post("/login", data={"secret": "x"}),
        client.get("/static/app.js"),
        client.get("/api/health"),
        client.get("/", headers=bearer),
        client.get(f"/api/images/{image_id}/file", headers=bearer),
        client.get(f"/api/images/{image_id}/thumbnail", headers=bearer),
        client.get("/api/nothing", headers=bearer),  # 404
        client.put("/api/images", headers=bearer),  # 405
    ]
    for r in responses:
        where = (r.request.method, r.request.url.path, r.status_code)
        assert r.headers["x-content-type-options"] == "nosniff", where
        assert r.headers["referrer-policy"] == "no-referrer", where
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, where
        assert (
            "'self'" in csp
            if "text/html" in r.headers.get("content-type", "")
            else "default-src 'none'" in csp
        )


def test_files_are_served_as_their_decoded_type_and_private(
    client: TestClient, lib: Library
) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    jpg = first_image(lib)
    png = lib.add(_png(), name="looks-like.html").id
    for url, kind in (
        (f"/api/images/{jpg}/file", "image/jpeg"),
        (f"/api/images/{png}/file", "image/png"),
        (f"/api/images/{png}/thumbnail", "image/webp"),
    ):
        r = client.get(url, headers=bearer)
        assert r.status_code == 200 and r.headers["content-type"] == kind, url
        assert r.headers["cache-control"] == "private"


def _png() -> bytes:
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def test_no_inline_script_or_style_in_any_page() -> None:
    templates = Path(__file__).resolve().parent.parent / "src/imagefind/web/templates"
    pages = sorted(templates.glob("*.html"))
    assert {p.name for p in pages} >= {"index.html", "login.html"}
    for page in pages:
        text = page.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag, (page.name, tag)
        assert not re.search(r"<script\b[^>]*>\s*[^<\s]", text), page.name
        assert "<style" not in text and " style=" not in text, page.name
        assert not re.search(r"\son[a-z]+=", text), page.name  # no inline event handlers
