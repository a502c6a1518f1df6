"""What the authentication tests share: an app built as ``serve`` builds it off loopback, a
library with two images, clients from addresses of their own, and login."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from imagefind.library import Library
from imagefind.web import create_app
from tests.webkit import jpeg

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


def upload_call(field: str) -> Callable[[Library], Call]:
    url = "/api/images" if field == "files" else "/api/search/image"
    return lambda lib: Call(
        "POST", url, files=[(field, ("a.jpg", jpeg(next(_seeds)), "image/jpeg"))]
    )


def first_image(lib: Library) -> int:
    return lib.images(0, 1)[0].id


def fresh_image(lib: Library) -> int:
    """An image of its own for each DELETE."""
    return lib.add(jpeg(next(_seeds)), name="victim.jpg").id


# Every route, as one request a client would send. Open ones answer anyone.
