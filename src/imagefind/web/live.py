"""The watcher inside the server (``imagefind serve --watch``): started with the app, stopped
with it, its state in ``/api/health``. The page follows the library by polling its generation
counter (``static/live.js``), so new images appear without a reload."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.concurrency import run_in_threadpool

from imagefind.schemas import WatcherState
from imagefind.watch import Watcher


@asynccontextmanager
async def watching(watcher: Watcher | None) -> AsyncIterator[None]:
    """Run ``watcher`` (if any) in its own thread for the life of the app."""
    if watcher is None:
        yield
        return
    watcher.start()
    try:
        yield
    finally:
        await run_in_threadpool(watcher.stop)


def state_of(watcher: Watcher | None) -> WatcherState | None:
    return None if watcher is None else watcher.state()
