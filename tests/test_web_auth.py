"""Who may see what, in process: every route of the app with no, wrong and right credentials
(bearer and session cookie), off loopback (auth required), on loopback (open) and with
``public_read``; the login contract, sessions, CSRF, the rate limit and the headers.

The route table below is checked against ``app.routes``: a new route without a row fails."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Mount

from imagefind.library import Library
from imagefind.web import create_app
from imagefind.web.auth import SESSION_COOKIE, RateLimiter, Sessions
from tests.webkit import assert_error, jpeg

TOKEN = "auth-test-token-0123456789"
PASSWORD = "correct horse battery staple"
WRONG = "Wrong key or password."
_seeds = itertools.count(1000)


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    data: dict[str, str] | None = None


def _upload(field: str) -> Callable[[Library], Call]:
    url = "/api/images" if field == "files" else "/api/search/image"
    return lambda lib: Call(
        "POST", url, files=[(field, ("a.jpg", jpeg(next(_seeds)), "image/jpeg"))]
    )


def _first(lib: Library) -> int:
    return lib.images(0, 1)[0].id


def _fresh(lib: Library) -> int:
    """An image of its own for each DELETE."""
    return lib.add(jpeg(next(_seeds)), name="victim.jpg").id


# Every route, as one request a client would send. Open ones answer anyone.
ROUTES: dict[tuple[str, str], Callable[[Library], Call]] = {
    ("GET", "/"): lambda lib: Call("GET", "/"),
    ("GET", "/api/stats"): lambda lib: Call("GET", "/api/stats"),
    ("GET", "/api/images"): lambda lib: Call("GET", "/api/images"),
    ("POST", "/api/images"): _upload("files"),
    ("GET", "/api/images/{image_id}"): lambda lib: Call("GET", f"/api/images/{_first(lib)}"),
    ("DELETE", "/api/images/{image_id}"): lambda lib: Call("DELETE", f"/api/images/{_fresh(lib)}"),
    ("GET", "/api/images/{image_id}/file"): lambda lib: Call(
        "GET", f"/api/images/{_first(lib)}/file"
    ),
    ("GET", "/api/images/{image_id}/thumbnail"): lambda lib: Call(
        "GET", f"/api/images/{_first(lib)}/thumbnail"
    ),
    ("GET", "/api/images/{image_id}/similar"): lambda lib: Call(
        "GET", f"/api/images/{_first(lib)}/similar"
    ),
    ("GET", "/api/search"): lambda lib: Call("GET", "/api/search?q=a+red+circle"),
    ("POST", "/api/search/image"): _upload("file"),
    ("GET", "/api/duplicates"): lambda lib: Call("GET", "/api/duplicates"),
    ("GET", "/api/openapi.json"): lambda lib: Call("GET", "/api/openapi.json"),
    ("GET", "/api/docs"): lambda lib: Call("GET", "/api/docs"),
    ("GET", "/api/docs/assets"): lambda lib: Call("GET", "/api/docs/assets/swagger-ui.css"),
    ("GET", "/static"): lambda lib: Call("GET", "/static/app.js"),
}
OPEN = {
    ("GET", "/api/health"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
}
GUARDED = sorted(ROUTES)


def route_table(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route, included routers flattened (FastAPI >= 0.120 keeps
    them as ``_IncludedRouter`` entries with ``effective_route_contexts``)."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        inner = list(contexts()) if contexts is not None else [route]
        for each in inner:
            if isinstance(each, Mount):
                found.add(("GET", each.path))
            else:
                methods = getattr(each, "methods", None) or ()
                found |= {(m, each.path) for m in methods if m != "HEAD"}  # type: ignore[attr-defined]
    return found


@pytest.fixture(name="lib")
def lib_fixture(tmp_path: Path, tiny_model_dir: Path) -> Iterator[Library]:
    """A library with two images in it."""
    with Library.open(tmp_path / "lib", model=str(tiny_model_dir)) as library:
        for seed in range(2):
            library.add(jpeg(seed), name=f"{seed}.jpg")
        yield library


def private(lib: Library, **kw: object) -> FastAPI:
    """The app as ``serve`` builds it off loopback."""
    return create_app(lib, token=TOKEN, password=PASSWORD, auth_required=True, **kw)  # type: ignore[arg-type]


@pytest.fixture(name="app")
def app_fixture(lib: Library) -> FastAPI:
    return private(lib)


_addresses = itertools.count(1)


@pytest.fixture(name="client")
def client_fixture(app: FastAPI) -> Iterator[TestClient]:
    """Each test from an address of its own: failures count per address."""
    with TestClient(app, client=(f"10.1.0.{next(_addresses) % 250}", 1)) as c:
        yield c


def send(client: TestClient, call: Call, headers: dict[str, str] | None = None) -> httpx.Response:
    return client.request(
        call.method, call.url, files=call.files, data=call.data, headers=headers or {}
    )


def log_in(client: TestClient, secret: str = TOKEN) -> str:
    """Logs ``client`` in; returns the page's CSRF token."""
    r = client.post("/login", data={"secret": secret}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get("/")
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert match, page.text[:500]
    return match.group(1)


def ok(r: httpx.Response) -> bool:
    return 200 <= r.status_code < 300


# -- the route table is complete --------------------------------------------------------------


def test_every_route_is_in_the_table(app: FastAPI) -> None:
    assert route_table(app) == set(ROUTES) | OPEN


# -- the matrix: every route x every credential x every mode ---------------------------------


@pytest.mark.parametrize("route", GUARDED, ids=" ".join)
def test_off_loopback_every_route_needs_a_credential(
    route: tuple[str, str], lib: Library, client: TestClient
) -> None:
    make = ROUTES[route]
    static = route[1] == "/static"
    before = lib.count()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        r = send(client, make(lib), headers)
        if static:  # the app's own code, no library content
            assert r.status_code == 200
            continue
        body = assert_error(r, 401)
        assert body["error"] == "unauthorized" and r.headers["www-authenticate"] == "Bearer"
    tampered = client.cookies
    tampered.set(SESSION_COOKIE, "abc.9999999999.forged")
    r = send(client, make(lib))
    assert static or r.status_code == 401
    client.cookies.clear()
    if route[0] == "DELETE":
        assert lib.count() == before + 4  # a fresh victim per try, none deleted
    elif not static:
        assert lib.count() == before

    r = send(client, make(lib), {"Authorization": f"Bearer {TOKEN}"})
    assert ok(r), (route, r.status_code, r.text[:300])  # bearer: no CSRF token needed

    csrf = log_in(client)
    r = send(client, make(lib))
    if route[0] in ("POST", "DELETE"):
        assert_error(r, 403)  # a cookie alone cannot write
        r = send(client, make(lib), {"X-CSRF-Token": "x" + csrf[1:]})
        assert_error(r, 403)
        r = send(client, make(lib), {"X-CSRF-Token": csrf})
    assert ok(r), (route, r.status_code, r.text[:300])


@pytest.mark.parametrize("route", GUARDED, ids=" ".join)
def test_on_loopback_every_route_is_open(route: tuple[str, str], lib: Library) -> None:
    with TestClient(create_app(lib)) as client:
        r = send(client, ROUTES[route](lib))
        assert ok(r), (route, r.status_code, r.text[:300])


@pytest.mark.parametrize("route", GUARDED, ids=" ".join)
def test_public_read_opens_reads_only(route: tuple[str, str], lib: Library) -> None:
    with TestClient(private(lib, public_read=True)) as client:
        r = send(client, ROUTES[route](lib))
        if route[0] == "GET":
            assert ok(r), (route, r.status_code)
            return
        assert_error(r, 401)
        assert_error(send(client, ROUTES[route](lib), {"Authorization": "Bearer no"}), 401)
        assert ok(send(client, ROUTES[route](lib), {"Authorization": f"Bearer {TOKEN}"}))


def test_loopback_with_a_token_guards_writes_only(lib: Library) -> None:
    with TestClient(create_app(lib, token=TOKEN)) as client:
        for route in GUARDED:
            r = send(client, ROUTES[route](lib))
            assert ok(r) if route[0] == "GET" else r.status_code == 401, route


def test_unknown_paths_do_not_say_what_exists(client: TestClient) -> None:
    assert_error(client.get("/api/nothing-here"), 401)
    assert_error(client.get("/api/images/999"), 401)
    assert (
        client.get("/api/nothing-here", headers={"Authorization": f"Bearer {TOKEN}"}).status_code
        == 404
    )


def test_health_shows_nothing_of_the_library_to_strangers(client: TestClient) -> None:
    stranger = client.get("/api/health").json()
    assert stranger == {"status": "ok", "model": None, "model_error": None, "count": None}
    known = client.get("/api/health", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert known["count"] == 2 and known["model"]


def test_a_browser_is_sent_to_the_login_page(client: TestClient) -> None:
    html = {"Accept": "text/html,application/xhtml+xml"}
    r = client.get("/api/images/1/file?x=1", headers=html, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Fapi%2Fimages%2F1%2Ffile%3Fx%3D1"
    page = client.get("/login")
    assert page.status_code == 200 and 'name="secret"' in page.text
    assert '<form method="post" action="/login"' in page.text


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
        victim = _fresh(lib)
        assert_error(a.delete(f"/api/images/{victim}", headers={"X-CSRF-Token": csrf_b}), 403)
        assert (
            a.delete(f"/api/images/{victim}", headers={"X-CSRF-Token": csrf_a}).status_code == 200
        )


def test_cross_site_writes_are_refused_even_with_the_csrf_token(
    client: TestClient, lib: Library
) -> None:
    csrf = log_in(client)
    victim = _fresh(lib)
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
    image_id = _first(lib)
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
    jpg = _first(lib)
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
