"""``imagefind serve`` and its access options: what it builds from the bind address, the
one-line errors for bad options, the start-up line, and HTTPS against a real server with a
self-signed certificate made here (``openssl``)."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from imagefind.errors import ImagefindError
from imagefind.web import serve
from tests.crashkit import server

TOKEN = "serve-test-token-0123456789"
PASSWORD = "a long and private passphrase"


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password.txt"
    path.write_text(PASSWORD + "\n")
    return path


@pytest.fixture
def fake_uvicorn(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, object]]:
    """``uvicorn.run`` replaced: records its arguments and answers a few requests in process."""
    import uvicorn

    seen: dict[str, object] = {}

    def fake_run(app: FastAPI, **kw: object) -> None:
        seen.update(kw)
        with TestClient(app, base_url="http://127.0.0.1") as c:
            seen["images"] = c.get("/api/images").status_code
            seen["health"] = c.get("/api/health").json()
            seen["write"] = c.delete("/api/images/1").status_code
            seen["login"] = c.post(
                "/login", data={"secret": PASSWORD}, follow_redirects=False
            ).status_code

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.delenv("IMAGEFIND_API_TOKEN", raising=False)
    yield seen


def run_serve(tmp_path: Path, model: Path, host: str, **kw: object) -> None:
    serve(tmp_path / "lib", str(model), host, 8000, insecure=False, max_upload_mb=1, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "options", "images", "write", "count", "said"),
    [
        # Off loopback: private; the password file's password logs in; health tells nothing.
        ("0.0.0.0", {"password_file": True}, 401, 401, None, "private: every request needs"),
        ("192.168.1.10", {"token": TOKEN, "public_read": True, "password_file": True}, 200, 401,
         0, "--public-read: anyone who can reach this server can list, search and download"),
        # On loopback nothing changes: open (no image 1 to delete), and nothing to say.
        ("127.0.0.1", {}, 200, 404, 0, ""),
    ],
)  # fmt: skip
def test_who_may_see_what_follows_the_bind_address(
    tmp_path: Path,
    tiny_model_dir: Path,
    password_file: Path,
    fake_uvicorn: dict[str, object],
    capsys: pytest.CaptureFixture[str],
    host: str,
    options: dict[str, object],
    images: int,
    write: int,
    count: int | None,
    said: str,
) -> None:
    if options.get("password_file"):
        options = {**options, "password_file": password_file}
    run_serve(tmp_path, tiny_model_dir, host, **{"token": None, **options})
    assert (fake_uvicorn["images"], fake_uvicorn["write"]) == (images, write)
    health = fake_uvicorn["health"]
    assert health["count"] == count and health["status"] == "ok"  # type: ignore[index]
    if count is None:
        assert health == {"status": "ok", "model": None, "model_error": None, "count": None}
    if options.get("password_file"):
        assert fake_uvicorn["login"] == 303
    err = capsys.readouterr().err
    assert said in err if said else err == ""
    assert fake_uvicorn["ssl_certfile"] is None and fake_uvicorn["forwarded_allow_ips"] is None


def openssl_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl CLI."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"password_file": "missing.txt"}, r"--password-file .*missing.txt: no such file"),
        ({"password_file": "."}, r"--password-file .*: is a folder"),
        ({"password_file": "empty.txt"}, r"--password-file .*empty.txt: is empty"),
        ({"certfile": "cert.pem"}, r"--certfile needs --keyfile too"),
        ({"keyfile": "key.pem"}, r"--keyfile needs --certfile too"),
        ({"certfile": "nope.pem", "keyfile": "key.pem"}, r"--certfile nope.pem: no such readable"),
        ({"certfile": "key.pem", "keyfile": "cert.pem"}, r"not a PEM certificate and its"),
        ({"session_hours": 0}, r"--session-hours 0: must be more than 0"),
    ],
)
def test_bad_options_are_one_line_errors(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_uvicorn: dict[str, object],
    options: dict[str, object],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    openssl_cert(tmp_path)
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(ImagefindError, match=message) as caught:
        serve(None, None, "127.0.0.1", 8000, token=TOKEN, insecure=False, max_upload_mb=1,
              **options)  # type: ignore[arg-type]  # fmt: skip
    assert "\n" not in str(caught.value)
    assert fake_uvicorn == {}  # never started


def test_unreadable_password_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_uvicorn: dict[str, object]
) -> None:
    path = tmp_path / "secret.txt"
    path.write_text(PASSWORD)
    real = Path.read_text

    def denied(self: Path, *args: object, **kw: object) -> str:
        if self == path:  # as for a user without read access (root could read it anyway)
            raise PermissionError(13, "Permission denied", str(path))
        return real(self, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", denied)
    with pytest.raises(ImagefindError, match=r"--password-file .*secret.txt: cannot read it"):
        run_serve(tmp_path, tmp_path, "0.0.0.0", token=None, password_file=path)


def test_cli_passes_the_access_options(
    tmp_path: Path, tiny_model_dir: Path, password_file: Path, fake_uvicorn: dict[str, object]
) -> None:
    from typer.testing import CliRunner

    from imagefind.cli import app

    cert, key = openssl_cert(tmp_path)
    result = CliRunner().invoke(
        app,
        ["serve", "--library", str(tmp_path / "lib"), "--model", str(tiny_model_dir),
         "--host", "0.0.0.0", "--password-file", str(password_file), "--public-read",
         "--session-hours", "2", "--certfile", str(cert), "--keyfile", str(key),
         "--forwarded-allow-ips", "10.0.0.5"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert fake_uvicorn["ssl_certfile"] == str(cert) and fake_uvicorn["ssl_keyfile"] == str(key)
    assert fake_uvicorn["forwarded_allow_ips"] == "10.0.0.5"
    assert fake_uvicorn["images"] == 200 and fake_uvicorn["write"] == 401
    bad = CliRunner().invoke(app, ["serve", "--certfile", str(cert)])
    assert bad.exit_code == 1
    assert "Error: --certfile needs --keyfile too" in bad.output


# -- a real server ---------------------------------------------------------------------------


def test_https_with_a_self_signed_certificate(
    tmp_path: Path, tiny_model_dir: Path, password_file: Path
) -> None:
    """The cookie a login sets over HTTPS is ``Secure``; the API works with the token."""
    cert, key = openssl_cert(tmp_path)
    extra = ("--certfile", str(cert), "--keyfile", str(key), "--password-file", str(password_file))
    with (
        server(tmp_path / "lib", tiny_model_dir, *extra, scheme="https") as (base, _),
        httpx.Client(base_url=base, verify=ssl.create_default_context(cafile=cert)) as client,
    ):
        r = client.post("/login", data={"secret": PASSWORD})
        assert r.status_code == 303, r.text
        flags = {f.strip().lower() for f in r.headers["set-cookie"].split(";")}
        assert {"secure", "httponly", "samesite=strict"} <= flags
        assert client.get("/api/images").status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(base.replace("https", "http") + "/api/health", timeout=5)


def test_forwarded_proto_from_a_trusted_proxy_makes_the_cookie_secure(
    tmp_path: Path, tiny_model_dir: Path, password_file: Path
) -> None:
    extra = ("--password-file", str(password_file), "--forwarded-allow-ips", "127.0.0.1")
    with server(tmp_path / "lib", tiny_model_dir, *extra) as (base, _):
        for proto, secure in (("https", True), (None, False)):
            headers = {"X-Forwarded-Proto": proto} if proto else {}
            r = httpx.post(f"{base}/login", data={"secret": PASSWORD}, headers=headers)
            assert r.status_code == 303, r.text
            assert ("secure" in r.headers["set-cookie"].lower()) is secure
