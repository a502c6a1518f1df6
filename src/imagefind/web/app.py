"""``create_app`` builds the web app and JSON API over one library; ``serve`` runs it.

The app is a thin face over :class:`imagefind.Library`: it translates HTTP into library calls
and the library's exceptions into JSON errors, and guards the edges (body size, tokens,
same-origin writes, no file paths from clients).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from imagefind.errors import ImagefindError
from imagefind.library import Library
from imagefind.web import api, errors, pages
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
    cors_origins: list[str] | None = None,
    allowed_hosts: list[str] | None = None,
) -> FastAPI:
    """The web page at ``/`` and the JSON API under ``/api`` over ``library``.

    ``token``: writes (POST, DELETE) need ``Authorization: Bearer <token>``. ``cors_origins``:
    other origins allowed to call the API (none by default). ``allowed_hosts``: Host headers
    accepted (``serve`` pins loopback names, which stops DNS-rebinding pages).
    """
    if max_upload_bytes < 1:
        raise ImagefindError(f"max_upload_bytes={max_upload_bytes}: must be at least 1")
    state = AppState(
        library, max_upload_bytes, token=token or None, cors_origins=list(cors_origins or [])
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(state.load_model)  # once, at start; sessions load lazily
        yield

    app = FastAPI(
        title="imagefind",
        summary="Semantic image search over your own images, with CLIP.",
        version="0.1.0",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.imagefind = state
    errors.install(app)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(pages.HERE / "static")), name="static")

    # Added innermost first: the body cap sits outside everything that reads a body.
    if state.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=state.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    if allowed_hosts:
        app.add_middleware(HostCheckMiddleware, allowed_hosts=allowed_hosts)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=max_upload_bytes * api.MAX_FILES + FRAMING_BYTES
    )
    return app


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
) -> None:
    """Run the app with uvicorn until interrupted. Off loopback, writes need a token.
    ``store``: where the library's rows live (see ``Library.open``)."""
    import uvicorn

    token = token or os.environ.get(TOKEN_ENV) or None
    loopback = is_loopback(host)
    if not loopback and token is None and not insecure:
        raise ImagefindError(
            f"refusing to serve on {host} without a token: anyone who can reach it could add "
            f"and delete images. Set {TOKEN_ENV} (e.g. {TOKEN_ENV}=$(openssl rand -hex 16)), "
            "or pass --insecure to allow it anyway"
        )
    if not max_upload_mb > 0:
        raise ImagefindError(f"max upload size {max_upload_mb} MB: must be more than 0")
    lib = Library.open(library, model=model, store=store)
    hosts = ["127.0.0.1", "localhost", "[::1]", host.lower()] if loopback else None
    app = create_app(
        lib, max_upload_bytes=int(max_upload_mb * MiB), token=token, allowed_hosts=hosts
    )
    try:
        uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)
    finally:
        lib.close()
