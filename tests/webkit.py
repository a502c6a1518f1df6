"""Shared pieces of the web API tests: an in-process app over a fresh library, and helpers."""

from __future__ import annotations

from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from imagefind.library import Library
from imagefind.web import create_app
from tests.synth import natural_image

HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>"


def jpeg(seed: int, size: tuple[int, int] = (96, 72), quality: int = 90) -> bytes:
    buf = BytesIO()
    natural_image(*size, seed=seed).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(name="lib")
def lib_fixture(tmp_path: Path, tiny_model_dir: Path) -> Iterator[Library]:
    with Library.open(tmp_path / "lib", model=str(tiny_model_dir)) as library:
        yield library


@pytest.fixture(name="client")
def client_fixture(lib: Library) -> Iterator[TestClient]:
    with TestClient(create_app(lib)) as c:
        yield c


def upload(client: TestClient, *files: tuple[str, bytes, str], **kw: object) -> httpx.Response:
    return client.post("/api/images", files=[("files", f) for f in files], **kw)  # type: ignore[arg-type]


def add(client: TestClient, seed: int, name: str | None = None) -> int:
    r = upload(client, (name or f"img{seed}.jpg", jpeg(seed), "image/jpeg"))
    assert r.status_code in (200, 201), r.text
    body = r.json()
    return (body["added"] or body["duplicates"])[0]["id"]


def assert_error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) >= {"error", "detail"}
    assert isinstance(body["error"], str) and isinstance(body["detail"], str) and body["detail"]
    assert "Traceback" not in r.text
    return body
