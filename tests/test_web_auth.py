"""Who may see what, in process: every route of the app with no, wrong and right credentials
(bearer and session cookie), off loopback (auth required), on loopback (open) and with
``public_read``. Login, sessions, CSRF, the rate limit and headers: test_web_auth_sessions.

The route table below is checked against ``app.routes``: a new route without a row fails."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Mount

from imagefind.library import Library
from imagefind.web import create_app
from imagefind.web.auth import SESSION_COOKIE
from tests.authkit import (
    TOKEN,
    Call,
    first_image,
    fresh_image,
    log_in,
    ok,
    private,
    send,
    upload_call,
)
from tests.authkit import app_fixture as app_fixture  # fixture: app
from tests.authkit import client_fixture as client_fixture  # fixture: client
from tests.authkit import lib_fixture as lib_fixture  # fixture: lib
from tests.webkit import assert_error

ROUTES: dict[tuple[str, str], Callable[[Library], Call]] = {
    ("GET", "/"): lambda lib: Call("GET", "/"),
    ("GET", "/api/stats"): lambda lib: Call("GET", "/api/stats"),
    ("GET", "/api/images"): lambda lib: Call("GET", "/api/images"),
    ("POST", "/api/images"): upload_call("files"),
    ("GET", "/api/images/{image_id}"): lambda lib: Call("GET", f"/api/images/{first_image(lib)}"),
    ("DELETE", "/api/images/{image_id}"): lambda lib: Call(
        "DELETE", f"/api/images/{fresh_image(lib)}"
    ),
    ("GET", "/api/images/{image_id}/file"): lambda lib: Call(
        "GET", f"/api/images/{first_image(lib)}/file"
    ),
    ("GET", "/api/images/{image_id}/thumbnail"): lambda lib: Call(
        "GET", f"/api/images/{first_image(lib)}/thumbnail"
    ),
    ("GET", "/api/images/{image_id}/similar"): lambda lib: Call(
        "GET", f"/api/images/{first_image(lib)}/similar"
    ),
    ("GET", "/api/search"): lambda lib: Call("GET", "/api/search?q=a+red+circle"),
    ("POST", "/api/search/image"): upload_call("file"),
    ("GET", "/api/duplicates"): lambda lib: Call("GET", "/api/duplicates"),
    ("GET", "/api/facets"): lambda lib: Call("GET", "/api/facets"),
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
