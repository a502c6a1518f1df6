"""``create_app`` builds the web app and JSON API over one library; ``serve`` runs it.

The app is a thin face over :class:`imagefind.Library`: it translates HTTP into library calls
and the library's exceptions into JSON errors, and guards the edges (body size, credentials,
same-origin writes, no file paths from clients).
"""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from imagefind.errors import ImagefindError
from imagefind.library import Library
from imagefind.schemas import WatchEvent
from imagefind.watch import Watcher
from imagefind.web import api, browse, docs, errors, login, pages
from imagefind.web.access import AccessMiddleware
from imagefind.web.auth import MAX_SECRET_CHARS, Auth
from imagefind.web.live import watching
from imagefind.web.security import (
    BodyLimitMiddleware,
    HostCheckMiddleware,
    SecurityHeadersMiddleware,
    is_loopback,
)
from imagefind.web.state import AppState

MiB = 1024 * 1024
TOKEN_ENV = "IMAGEFIND_API_TOKEN"
# Multipart framing around the files of one request.
FRAMING_BYTES = 256 * 1024


def create_app(
    library: Library,
    *,
    max_upload_bytes: int = 10 * MiB,
    token: str | None = None,
    password: str | None = None,
    auth_required: bool = False,
    public_read: bool = False,
    session_hours: float = 12.0,
    cors_origins: list[str] | None = None,
    allowed_hosts: list[str] | None = None,
    watcher: Watcher | None = None,
) -> FastAPI:
    """The web page at ``/`` and the JSON API under ``/api`` over ``library``.

    ``auth_required`` (``serve`` sets it off loopback): every request needs a credential,
    ``Authorization: Bearer <token>`` or the session cookie of a login with the token or
    ``password`` (kept as a hash only); ``public_read`` opens reads again. Without it, only a
    ``token`` guards writes. ``cors_origins``: other origins allowed to call the API (none by
    default). ``allowed_hosts``: Host headers accepted (``serve`` pins loopback names, which
    stops DNS-rebinding pages). ``watcher``: runs for the life of the app (``--watch``).
    """
    if max_upload_bytes < 1:
        raise ImagefindError(f"max_upload_bytes={max_upload_bytes}: must be at least 1")
    auth = Auth.configure(
        token=token,
        password=password,
        auth_required=auth_required,
        public_read=public_read,
        session_hours=session_hours,
    )
    state = AppState(library, max_upload_bytes, auth, cors_origins=list(cors_origins or []))
    state.watcher = watcher

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(state.load_model)  # once, at start; sessions load lazily
        async with watching(watcher):
            yield

    app = FastAPI(
        title="imagefind",
        summary="Semantic image search over your own images, with CLIP.",
        version="0.1.0",
        openapi_url="/api/openapi.json",
        docs_url=None,  # web.docs serves Swagger UI from a package, not a CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.imagefind = state
    errors.install(app)
    app.include_router(api.router)
    app.include_router(browse.router)
    app.include_router(pages.router)
    app.include_router(login.router)
    docs.install(app)
    app.mount("/static", StaticFiles(directory=str(pages.HERE / "static")), name="static")

    # Added innermost first: the body cap sits outside everything that reads a body; CORS
    # answers preflights before the gate (they carry no credentials by design).
    app.add_middleware(AccessMiddleware, auth=auth)
    if state.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=state.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-CSRF-Token"],
        )
    if allowed_hosts:
        app.add_middleware(HostCheckMiddleware, allowed_hosts=allowed_hosts)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=max_upload_bytes * api.MAX_FILES + FRAMING_BYTES
    )
    return app


def read_password(path: str | Path) -> str:
    """The password in ``path`` (its first line), with a one-line error for each way the file
    can be wrong."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ImagefindError(f"--password-file {file}: no such file") from None
    except IsADirectoryError:
        raise ImagefindError(f"--password-file {file}: is a folder, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImagefindError(f"--password-file {file}: cannot read it ({exc})") from None
    password = text.splitlines()[0] if text.strip() else ""
    if not password:
        raise ImagefindError(f"--password-file {file}: is empty; put the password on line 1")
    if len(password) > MAX_SECRET_CHARS:
        raise ImagefindError(f"--password-file {file}: over {MAX_SECRET_CHARS} characters")
    return password


def check_tls(certfile: str | Path | None, keyfile: str | Path | None) -> None:
    """Both or neither, readable, and a key that belongs to the certificate: found here with
    a clear message rather than as a traceback from inside uvicorn."""
    if certfile is None and keyfile is None:
        return
    if certfile is None or keyfile is None:
        given, missing = (
            ("--certfile", "--keyfile") if keyfile is None else ("--keyfile", "--certfile")
        )
        raise ImagefindError(f"{given} needs {missing} too (HTTPS takes a certificate and its key)")
    for flag, file in (("--certfile", certfile), ("--keyfile", keyfile)):
        if not Path(file).is_file() or not os.access(file, os.R_OK):
            raise ImagefindError(f"{flag} {file}: no such readable file")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, ValueError) as exc:
        raise ImagefindError(
            f"--certfile {certfile} / --keyfile {keyfile}: not a PEM certificate and its "
            f"private key ({exc})"
        ) from None


def serve(
    library: str | Path | None,
    model: str | None,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    token: str | None,
    insecure: bool,
    max_upload_mb: float,
    store: str | None = None,
    password_file: str | Path | None = None,
    public_read: bool = False,
    session_hours: float = 12.0,
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
    forwarded_allow_ips: str | None = None,
    watch: Sequence[str | Path] | None = None,
    poll: float | None = None,
) -> None:
    """Run the app with uvicorn until interrupted. Off loopback every request needs the token
    or a login (``public_read``: reads do not). ``store``: where the library's rows live (see
    ``Library.open``). ``forwarded_allow_ips``: proxies whose X-Forwarded-* headers are
    believed (uvicorn's default: 127.0.0.1). ``watch``: follow these folders (empty: the
    library's roots) as ``imagefind watch`` does, polling every ``poll`` seconds if given."""
    import uvicorn

    token = token or os.environ.get(TOKEN_ENV) or None
    password = read_password(password_file) if password_file is not None else None
    loopback = is_loopback(host)
    if not loopback and token is None and password is None and not insecure:
        raise ImagefindError(
            f"refusing to serve on {host} without a token: anyone who can reach it could see, "
            f"add and delete images. Set {TOKEN_ENV} (e.g. {TOKEN_ENV}=$(openssl rand -hex 16)) "
            "or --password-file, or pass --insecure to allow it anyway"
        )
    if not max_upload_mb > 0:
        raise ImagefindError(f"max upload size {max_upload_mb} MB: must be more than 0")
    if not session_hours > 0:
        raise ImagefindError(f"--session-hours {session_hours}: must be more than 0")
    check_tls(certfile, keyfile)
    auth_required = not loopback and (token is not None or password is not None)
    lib = Library.open(library, model=model, store=store)
    watcher = None if watch is None else Watcher(lib, watch, poll=poll, on_event=_log_event)
    hosts = ["127.0.0.1", "localhost", "[::1]", host.lower()] if loopback else None
    app = create_app(
        lib,
        max_upload_bytes=int(max_upload_mb * MiB),
        token=token,
        password=password,
        auth_required=auth_required,
        public_read=public_read,
        session_hours=session_hours,
        allowed_hosts=hosts,
        watcher=watcher,
    )
    del password  # only its hash stays, inside the app
    if not loopback:
        print(_exposure(auth_required, public_read), file=sys.stderr, flush=True)
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="info",
            server_header=False,
            ssl_certfile=str(certfile) if certfile else None,
            ssl_keyfile=str(keyfile) if keyfile else None,
            forwarded_allow_ips=forwarded_allow_ips,
        )
    finally:
        lib.close()


def _log_event(event: WatchEvent) -> None:
    """The server's watcher speaks on stderr, one line per change, like ``imagefind watch``."""
    if event.event != "batch":
        where = f" {event.path}" if event.path else ""
        why = f": {event.reason}" if event.reason else ""
        print(f"imagefind watch: {event.event}{where}{why}", file=sys.stderr, flush=True)


def _exposure(auth_required: bool, public_read: bool) -> str:
    """The start-up line that says who can see this library."""
    if not auth_required:
        return (
            "imagefind: WARNING: --insecure: anyone who can reach this server can see, add "
            "and delete every image"
        )
    if public_read:
        return (
            "imagefind: --public-read: anyone who can reach this server can list, search and "
            "download every image; adding and deleting still need the token or a login"
        )
    return "imagefind: private: every request needs the token (Bearer) or a login at /login"
