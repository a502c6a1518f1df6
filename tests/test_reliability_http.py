"""HTTP hardening, from the outside: schemathesis against the OpenAPI document (no 5xx, every
response as documented), a 100 MB upload stream against a real server with its memory
measured, traversal strings in every path parameter, the token on every write, and oversized
query parameters."""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from imagefind.library import Library
from imagefind.web import create_app
from tests.test_reliability_crash import jpeg, server

TOKEN = "reliability-token"
TRAVERSALS = [
    "..",
    "../../../../etc/passwd",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fcatalog.sqlite3",
    "%252e%252e%252fcatalog.sqlite3",
    "..\\..\\catalog.sqlite3",
    "..%5c..%5ccatalog.sqlite3",
    "/etc/passwd",
    "%2Fetc%2Fpasswd",
    "....//....//etc/passwd",
    "1%00.jpg",
    "1/../../catalog.sqlite3",
    "%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
    "~root",
    "file:%2F%2F%2Fetc%2Fpasswd",
    "-1",
    "99999999999999999999999",
]
# Operations whose inputs can be schema-valid yet refused on their content: uploads must decode
# as images (415 otherwise), and a text query must parse ("cat - cat" is 422). Schemathesis'
# "schema-valid data is accepted" check does not apply to them; every other check does.
# Requests the schema cannot fully describe: image bytes, queries, and dates the pattern lets
# through but the calendar does not (2019-02-30), or an --after later than --before.
SEMANTIC_INPUT = {
    "POST /api/images",
    "POST /api/search/image",
    "GET /api/search",
    "GET /api/images",
    "GET /api/images/{image_id}/similar",
}
SECRETS = (b"root:", b"SQLite format", b"def create_app", b"Traceback")


@pytest.fixture
def lib(tmp_path: Path, tiny_model_dir: Path) -> Iterator[Library]:
    with Library.open(tmp_path / "lib", model=str(tiny_model_dir)) as library:
        for seed in range(3):
            library.add(jpeg(seed, (64, 48)), name=f"{seed}.jpg")
        yield library


def openapi(app: FastAPI) -> dict:
    with TestClient(app) as client:
        return client.get("/api/openapi.json").json()


# -- schemathesis ----------------------------------------------------------------------------


@pytest.mark.slow
def test_schemathesis_finds_no_5xx_and_no_schema_violation(lib: Library) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    app = create_app(lib, max_upload_bytes=256 * 1024)
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    statuses: Counter[int] = Counter()
    per_operation: dict[str, int] = {}
    examples = int(os.environ.get("IMAGEFIND_SCHEMATHESIS_EXAMPLES", "100"))
    started = time.monotonic()
    with TestClient(app):  # the lifespan loads the model once
        for result in schema.get_all_operations():
            operation = result.ok()

            def check(case: schemathesis.Case, label: str = operation.label) -> None:
                response = case.call()
                statuses[response.status_code] += 1
                per_operation[label] = per_operation.get(label, 0) + 1
                assert response.status_code < 500, (label, response.status_code, response.text)
                semantic = label in SEMANTIC_INPUT
                case.validate_response(
                    response, excluded_checks=[positive_data_acceptance] if semantic else []
                )

            run = settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )(given(case=operation.as_strategy())(_no_defaults(check)))
            run()
    cases = sum(statuses.values())
    assert cases >= 5 * len(per_operation)
    assert not [s for s in statuses if s >= 500]
    print(
        f"\nschemathesis: {cases} cases over {len(per_operation)} operations in "
        f"{time.monotonic() - started:.1f} s, 0 responses 5xx; "
        f"statuses {dict(sorted(statuses.items()))}"
    )


def _no_defaults(check: Callable[[Any], None]) -> Callable[[Any], None]:
    def body(case: Any) -> None:  # hypothesis refuses functions with default arguments
        check(case)

    return body


# -- a 100 MB upload against a real server ---------------------------------------------------

BOUNDARY = "reliabilityboundary"
MiB = 1024 * 1024


def _memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident) of a process, in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def _stream(parts: list[tuple[str, int]]) -> Iterator[bytes]:
    """A multipart body of files of the given sizes, generated as it is sent."""
    chunk = os.urandom(MiB)
    for name, size in parts:
        yield (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{name}"'
            "\r\nContent-Type: image/jpeg\r\n\r\n"
        ).encode()
        for start in range(0, size, MiB):
            yield chunk[: min(MiB, size - start)]
        yield b"\r\n"
    yield f"--{BOUNDARY}--\r\n".encode()


class _Sized:
    """A streamed body with a declared Content-Length (httpx sends it, not chunked)."""

    def __init__(self, parts: list[tuple[str, int]]) -> None:
        self.parts = parts
        self.length = sum(len(c) for c in _stream([(n, 0) for n, _ in parts])) + sum(
            size for _, size in parts
        )

    def __iter__(self) -> Iterator[bytes]:
        return _stream(self.parts)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc to measure")
@pytest.mark.slow
def test_100mb_upload_is_413_with_bounded_memory(tiny_model_dir: Path, tmp_path: Path) -> None:
    """One 100 MB file, streamed (chunked) and with its length declared: 413, read no further
    than the per-file limit, with the server's peak memory measured around the requests."""
    library = tmp_path / "lib"
    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    results: dict[str, tuple[int, float, float]] = {}
    with server(library, tiny_model_dir) as (base, proc):
        for label, body in {
            "chunked": _stream([("big.jpg", 100 * MiB)]),
            "content-length": _Sized([("big.jpg", 100 * MiB)]),
        }.items():
            before = _memory(proc.pid)
            started = time.monotonic()
            extra = {"content-length": str(body.length)} if isinstance(body, _Sized) else {}
            try:
                r = httpx.post(
                    f"{base}/api/images",
                    content=iter(body),
                    headers=headers | extra,
                    timeout=60,
                )
                status = r.status_code
            except httpx.HTTPError:  # closed mid-upload after answering: read the answer
                status = 413
            growth = _memory(proc.pid)["VmHWM"] - before["VmHWM"]
            results[label] = (status, round(time.monotonic() - started, 2), growth / MiB)
        assert httpx.get(f"{base}/api/health").json()["status"] == "ok"
        peak = _memory(proc.pid)["VmHWM"] / MiB
    for label, (status, seconds, growth) in results.items():
        assert status == 413, (label, status)
        assert seconds < 30, (label, seconds)
        assert growth < 40, f"{label}: peak RSS grew by {growth:.1f} MiB"
    print(f"\n100 MB upload (status, s, peak RSS growth MiB): {results}; peak {peak:.0f} MiB")


# -- traversal strings in every path parameter -----------------------------------------------


def _raw_get(base: str, target: str) -> tuple[int, bytes]:
    """GET with the request target sent byte for byte (no client-side normalisation)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data


@pytest.mark.slow
def test_traversal_in_every_path_parameter(tiny_model_dir: Path, tmp_path: Path) -> None:
    library = tmp_path / "lib"
    with Library.open(library, model=str(tiny_model_dir)) as lib:
        lib.add(jpeg(1, (64, 48)), name="1.jpg")
        doc = openapi(create_app(lib))
    templates = [p for p in doc["paths"] if "{" in p]
    assert templates, "no path parameters in the OpenAPI document?"
    probes = 0
    with server(library, tiny_model_dir) as (base, _):
        for template in templates:
            name = template[template.index("{") : template.index("}") + 1]
            for value in TRAVERSALS:
                status, raw = _raw_get(base, template.replace(name, value))
                probes += 1
                assert status in (400, 404, 422), (template, value, status, raw[:300])
                assert not any(s in raw for s in SECRETS), (template, value, raw[:300])
        for target in ("/static/../catalog.sqlite3", "/static/%2e%2e/catalog.sqlite3",
                       "/static/..%2f..%2fcatalog.sqlite3", "/../catalog.sqlite3",
                       "/static//etc/passwd", "/api/../catalog.sqlite3"):  # fmt: skip
            status, raw = _raw_get(base, target)
            probes += 1
            assert status in (400, 404), (target, status, raw[:300])
            assert not any(s in raw for s in SECRETS)
    print(f"\ntraversal: {probes} probes over {len(templates)} parameterised paths, 0 served")


# -- the token -------------------------------------------------------------------------------


def test_token_is_enforced_on_every_write(lib: Library) -> None:
    app = create_app(lib, token=TOKEN)
    doc = openapi(app)
    writes = [
        (method.upper(), path)
        for path, ops in doc["paths"].items()
        for method in ops
        if method in ("post", "put", "patch", "delete")
    ]
    assert {m for m, _ in writes} >= {"POST", "DELETE"}
    image_id = lib.images(0, 1)[0].id
    files = [("files", ("a.jpg", jpeg(77, (64, 48)), "image/jpeg"))]
    for n, (method, path) in enumerate(writes):
        url = path.replace("{image_id}", str(image_id))
        field = "file" if path.endswith("/search/image") else "files"
        upload = [(field, files[0][1])]
        # One address per operation: more than 10 wrong tokens from one would be 429.
        with TestClient(app, client=(f"10.0.0.{n}", 1)) as client:
            for auth in (None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "):
                headers = {"authorization": auth} if auth else {}
                r = client.request(method, url, files=upload, headers=headers)
                assert r.status_code == 401, (method, path, auth, r.status_code)
                assert r.headers.get("www-authenticate") == "Bearer"
    with TestClient(app) as client:
        assert lib.count() == 3  # nothing was written or deleted
        ok = client.post("/api/images", files=files, headers={"authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 201
        for path in ("/api/health", "/api/stats", "/api/images", "/api/search?q=cat"):
            assert client.get(path).status_code == 200, path  # reads stay open


# -- oversized query parameters --------------------------------------------------------------

OVERSIZED = [
    "/api/search?q=" + "a" * 60_000,
    "/api/search?q=" + "cat+" * 15_000,
    "/api/search?q=cat&k=1000000000",
    "/api/search?q=cat&k=-1000000000",
    "/api/search?q=cat&k=1e9",
    "/api/search?q=cat&threshold=1e309",
    "/api/search?q=cat&threshold=-inf",
    "/api/images/1/similar?k=1000000000",
    "/api/images?limit=1000000000",
    "/api/images?offset=99999999999999999999999999",
    "/api/duplicates?threshold=1e400",
]


def test_oversized_queries_are_422_and_fast(lib: Library) -> None:
    app = create_app(lib)
    with TestClient(app) as client:
        for url in OVERSIZED:
            started = time.monotonic()
            r = client.get(url)
            seconds = time.monotonic() - started
            assert r.status_code == 422, (url[:80], r.status_code, r.text[:200])
            assert seconds < 1.0, (url[:80], seconds)
            assert len(r.content) < 4096, "the error must not echo the whole input"
        r = client.post("/api/search/image?k=1000000000", files=[("file", ("a.jpg", jpeg(1)))])
        assert r.status_code == 422


@pytest.mark.slow
def test_oversized_query_against_a_real_server(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Through uvicorn a 100 KB query string is refused fast (a 4xx) and the server lives on."""
    library = tmp_path / "lib"
    with server(library, tiny_model_dir) as (base, _):
        seen = {}
        for label, target in {
            "q of 100 KB": "/api/search?q=" + "a" * 100_000,
            "q of 100 KB of arithmetic": "/api/search?q=" + "cat+" * 25_000,
            "k of 10^9": "/api/search?q=cat&k=1000000000",
        }.items():
            started = time.monotonic()
            status, raw = _raw_get(base, target)
            seconds = time.monotonic() - started
            assert 400 <= status < 500, (label, status, raw[:200])
            assert seconds < 5, (label, seconds)
            assert b"Traceback" not in raw
            seen[label] = (status, round(seconds, 3))
        assert httpx.get(f"{base}/api/health").status_code == 200
    assert seen["k of 10^9"][0] == 422
    print(f"\noversized queries through uvicorn: {seen}")
