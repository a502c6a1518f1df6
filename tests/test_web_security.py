"""The web app and JSON API, in process: every error, size limit, token and guard."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from imagefind.errors import ImagefindError
from imagefind.library import Library
from imagefind.query import MAX_QUERY_LENGTH
from imagefind.search import MAX_K
from imagefind.web import create_app, serve
from tests.webkit import HTML, add, assert_error, jpeg, upload
from tests.webkit import client_fixture as client_fixture  # fixture: client
from tests.webkit import lib_fixture as lib_fixture  # fixture: lib

TOKEN = "s3cret-token"


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["image/png", "text/html"])
def test_non_image_upload_is_415(client: TestClient, content_type: str) -> None:
    body = assert_error(upload(client, ("x.png", HTML, content_type)), 415)
    assert "x.png" in body["detail"] and "not a supported image" in body["detail"]
    assert body["errors"][0]["name"] == "x.png"
    r = client.post("/api/search/image", files={"file": ("q.png", HTML, "image/png")})
    assert_error(r, 415)


@pytest.mark.parametrize(
    "url",
    [
        "/api/search?q=cat&k=0",
        f"/api/search?q=cat&k={10**9}",
        f"/api/search?q={'a' * (MAX_QUERY_LENGTH + 1)}",
        f"/api/search?q=cat&k={MAX_K + 1}",
        "/api/search?q=",
        "/api/search",
        "/api/search?q=cat&threshold=5",
        "/api/search?q=cat&threshold=nan",
        "/api/search?q=cat&k=ten",
        "/api/images/abc",
        "/api/images/1.5/file",
        "/api/images/1/similar?k=0",
        "/api/images?limit=0",
        "/api/images?offset=-1",
    ],
)
def test_bad_parameters_are_422(client: TestClient, url: str) -> None:
    assert_error(client.get(url), 422)


def test_query_of_100kb_is_422(client: TestClient) -> None:
    # Too long for an HTTP client's URL: straight through ASGI, as a lax proxy would pass it.
    messages: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def capture(message: dict) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/search",
        "raw_path": b"/api/search",
        "query_string": b"q=" + b"a" * 100_000,
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "root_path": "",
    }
    asyncio.run(client.app(scope, receive, capture))  # type: ignore[arg-type]
    assert messages[0]["status"] == 422
    assert str(MAX_QUERY_LENGTH).encode() in b"".join(m.get("body", b"") for m in messages[1:])


def test_bad_query_syntax_is_422(client: TestClient) -> None:
    add(client, 1)
    assert_error(client.get("/api/search", params={"q": "cat - cat"}), 422)


def test_upload_without_files_is_422(client: TestClient) -> None:
    assert_error(client.post("/api/images", data={"x": "1"}), 422)
    assert_error(
        client.post("/api/images", content=b"raw", headers={"content-type": "image/png"}), 422
    )


@pytest.mark.parametrize(
    "url",
    [
        "/api/images/999",
        "/api/images/999/file",
        "/api/images/999/thumbnail",
        "/api/images/999/similar",
        "/api/nothing-here",
        "/nope",
    ],
)
def test_unknown_is_404(client: TestClient, url: str) -> None:
    assert_error(client.get(url), 404)


@pytest.mark.parametrize(
    "url",
    [
        "/api/images/..%2F..%2Fetc%2Fpasswd/file",
        "/api/images/%2e%2e/thumbnail",
        "/api/images/%2e%2e%2f%2e%2e%2fetc%2fpasswd/file",
        "/api/images/1%2F..%2F..%2Fcatalog.sqlite3/file",
        "/api/images/..\\..\\catalog.sqlite3/file",
        "/static/..%2F..%2Fapp.py",
        "/static/%2e%2e/app.py",
        "/api/images/-1/file",
    ],
)
def test_path_traversal_never_serves_files(client: TestClient, url: str) -> None:
    add(client, 1)
    r = client.get(url)
    assert r.status_code in (404, 422), (url, r.status_code)
    assert "root:" not in r.text and "SQLite" not in r.text and "create_app" not in r.text
    assert r.json()["error"]


def test_unexpected_error_is_a_bare_500(lib: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kw: object) -> None:
        raise RuntimeError("secret internals at /home/me/.ssh")

    monkeypatch.setattr(lib, "stats", boom)
    with TestClient(create_app(lib), raise_server_exceptions=False) as c:
        body = assert_error(c.get("/api/stats"), 500)
    assert body["error"] == "internal_error" and "secret" not in body["detail"]


# -- size limits (streamed: the body is never read past the limit) -------------------------

LIMIT = 64 * 1024
BOUNDARY = "xXxBOUNDARYxXx"


def multipart_stream(field: str, size: int, chunks: list[int]) -> AsyncIterator[bytes]:
    """A multipart body whose file is ``size`` bytes; ``chunks`` counts the chunks read."""

    async def gen() -> AsyncIterator[bytes]:
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; '
            'filename="big.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        chunks.append(1)
        yield head
        sent = 0
        while sent < size:
            piece = min(8192, size - sent)
            chunks.append(1)
            sent += piece
            yield b"\xff" * piece
        chunks.append(1)
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    return gen()


def send(app: FastAPI, method: str, url: str, **kw: object) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.request(method, url, **kw)  # type: ignore[arg-type]

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("url", "field"), [("/api/images", "files"), ("/api/search/image", "file")]
)
def test_file_over_limit_is_413_while_streaming(lib: Library, url: str, field: str) -> None:
    app = create_app(lib, max_upload_bytes=LIMIT)
    chunks: list[int] = []
    total = 5 * LIMIT // 8192
    r = send(
        app,
        "POST",
        url,
        content=multipart_stream(field, 5 * LIMIT, chunks),
        headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    body = assert_error(r, 413)
    assert "big.jpg" in body["detail"]
    assert len(chunks) < total / 2  # stopped reading near the limit, not at the end


def test_request_over_cap_is_413_while_streaming(lib: Library) -> None:
    app = create_app(lib, max_upload_bytes=1024)  # request cap: 32 files' worth + framing
    chunks: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        # Plain fields, each under the parser's per-field cap: only the request cap stops it.
        for n in range(16):
            chunks.append(1)
            yield (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f{n}"\r\n\r\n').encode()
            for _ in range(7):
                chunks.append(1)
                yield b"a" * 8192
            yield b"\r\n"
        yield f"--{BOUNDARY}--\r\n".encode()

    r = send(
        app,
        "POST",
        "/api/images",
        content=endless(),
        headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert_error(r, 413)
    assert len(chunks) < 16 * 8 // 2


def test_declared_length_over_cap_is_refused_before_reading(lib: Library) -> None:
    app = create_app(lib, max_upload_bytes=1024)
    chunks: list[int] = []
    r = send(
        app,
        "POST",
        "/api/images",
        content=multipart_stream("files", 10, chunks),
        headers={
            "content-type": f"multipart/form-data; boundary={BOUNDARY}",
            "content-length": str(10**9),
        },
    )
    assert_error(r, 413)
    assert chunks == []


def test_file_at_limit_is_accepted(lib: Library) -> None:
    data = jpeg(1)
    with TestClient(create_app(lib, max_upload_bytes=len(data))) as c:
        assert upload(c, ("a.jpg", data, "image/jpeg")).status_code == 201
        assert_error(upload(c, ("b.jpg", data + b"\0", "image/jpeg")), 413)


# -- tokens, origins, CORS, serve ----------------------------------------------------------


def test_token_guards_writes_only(lib: Library) -> None:
    with TestClient(create_app(lib, token=TOKEN)) as c:
        files = [("files", ("a.jpg", jpeg(1), "image/jpeg"))]
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": TOKEN},
            {"Authorization": f"Basic {TOKEN}"},
        ):
            body = assert_error(c.post("/api/images", files=files, headers=headers), 401)
            assert body["error"] == "unauthorized"
            assert_error(c.delete("/api/images/1", headers=headers), 401)
            assert_error(
                c.post("/api/search/image", files={"file": ("q.jpg", jpeg(1))}, headers=headers),
                401,
            )
        good = {"Authorization": f"Bearer {TOKEN}"}
        r = c.post("/api/images", files=files, headers=good)
        assert r.status_code == 201
        image_id = r.json()["added"][0]["id"]
        assert c.get("/api/images").json()["total"] == 1  # reads need no token
        assert c.get("/api/search", params={"q": "cat"}).status_code == 200
        assert c.get(f"/api/images/{image_id}/file").status_code == 200
        assert c.delete(f"/api/images/{image_id}", headers=good).status_code == 200


def test_cross_site_writes_are_refused(client: TestClient) -> None:
    files = [("files", ("a.jpg", jpeg(1), "image/jpeg"))]
    r = client.post("/api/images", files=files, headers={"Origin": "https://evil.example"})
    assert_error(r, 403)
    r = client.post("/api/images", files=files, headers={"Origin": "http://testserver"})
    assert r.status_code == 201


def test_cors_closed_by_default_open_when_asked(lib: Library) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "DELETE"}
    with TestClient(create_app(lib)) as c:
        r = c.options("/api/images/1", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
        assert "access-control-allow-origin" not in c.get("/api/health", headers=preflight).headers
    with TestClient(create_app(lib, cors_origins=["https://app.example"])) as c:
        r = c.options("/api/images/1", headers=preflight)
        assert r.headers["access-control-allow-origin"] == "https://app.example"


def test_allowed_hosts_stop_dns_rebinding(lib: Library) -> None:
    with TestClient(
        create_app(lib, allowed_hosts=["127.0.0.1"]), base_url="http://127.0.0.1:8000"
    ) as c:
        assert c.get("/api/health").status_code == 200
        assert_error(c.get("/api/health", headers={"Host": "evil.example:8000"}), 400)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])
def test_serve_refuses_open_bind_without_token(host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMAGEFIND_API_TOKEN", raising=False)
    with pytest.raises(ImagefindError, match=r"without a token.*IMAGEFIND_API_TOKEN.*--insecure"):
        serve(None, None, host, 8000, token=None, insecure=False, max_upload_mb=10)


def test_serve_builds_the_app_it_runs(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    seen: dict[str, object] = {}

    def fake_run(app: FastAPI, **kw: object) -> None:
        seen.update(kw, app=app)
        with TestClient(app, base_url="http://127.0.0.1") as c:
            seen["health"] = c.get("/api/health").json()
            seen["write"] = c.delete("/api/images/1").status_code

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setenv("IMAGEFIND_API_TOKEN", TOKEN)
    serve(
        tmp_path / "lib",
        str(tiny_model_dir),
        "0.0.0.0",
        9999,
        token=None,
        insecure=False,
        max_upload_mb=0.5,
    )
    assert seen["host"] == "0.0.0.0" and seen["port"] == 9999
    assert seen["health"]["status"] == "ok"  # type: ignore[index]
    assert seen["write"] == 401  # the env token guards writes


def test_error_bodies_are_json_everywhere(client: TestClient) -> None:
    r = client.put("/api/images")
    assert_error(r, 405)
    assert re.match(r"application/json", r.headers["content-type"])
