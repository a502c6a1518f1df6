"""Following folders: catch up with an incremental index, then apply file-system events as
they come (``watchdog``: inotify, FSEvents, ReadDirectoryChanges, or polling for network
shares where events do not arrive).

Every change goes through the same incremental path as ``index`` (``Library.apply_changes``):
a new or changed file is encoded once it has stopped growing (cameras and copy tools write
in pieces), a moved file or folder is re-linked by content without encoding, a deleted one
pruned, and a burst of files is taken in batches. Nothing is kept only in memory: after a
crash the next start's catch-up finds whatever was not committed, and no file is doubled
(rows are keyed by path).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler

from imagefind.errors import ImagefindError, LibraryError
from imagefind.records import ImageRecord
from imagefind.roots import absolute
from imagefind.scanner import JUNK_DIRS, JUNK_FILES, RawPairs
from imagefind.schemas import IndexSummary, WatcherState, WatchEvent, iso_time

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

    from imagefind.library import Library

TICK = 0.1  # seconds between looks at the pending changes
QUIET = 0.25  # a burst is taken once no event came for this long...
MAX_WAIT = 1.0  # ...or once its first ready file has waited this long
MAX_BATCH = 512  # ...or once this many files are ready
GONE_WAIT = 2.0  # deletions wait this long for files still settling (a move's other half)
RETRY_FIRST, RETRY_MAX = 1.0, 60.0  # after a failed batch (the store away): wait, doubling


@dataclass
class _Pending:
    signature: tuple[int, float] | None  # size and mtime when last looked at
    since: float  # when the signature last changed


def _signature(path: str) -> tuple[int, float] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime


class Watcher:
    """Keeps a library in step with folders until ``stop`` is set (see the module docs).

    ``folders`` default to the library's roots; ``poll`` (seconds) polls instead of using
    the platform's events; ``settle`` is how long a file must stop changing before it is
    read; ``on_event`` hears every ``WatchEvent``."""

    def __init__(
        self,
        library: Library,
        folders: Sequence[str | Path] = (),
        *,
        poll: float | None = None,
        settle: float = 0.5,
        raw_pairs: RawPairs = "jpeg",
        on_event: Callable[[WatchEvent], None] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.library = library
        self.folders = [absolute(f) for f in folders]
        self.poll = poll
        self.settle = settle
        self.raw_pairs: RawPairs = raw_pairs
        self.on_event = on_event
        self.progress = progress  # the catch-up's, as ``index`` reports it
        self.stop_event = threading.Event()
        self._queue: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self._pending: dict[str, _Pending] = {}
        self._gone: set[str] = set()
        self._missing: set[str] = set()  # watched folders seen missing (already reported)
        self._failures = 0  # batches failed in a row; the next waits until ``_retry_at``
        self._retry_at = 0.0
        self._state: WatcherState = WatcherState(
            state="starting", folders=self.folders, observer="", pending=0, events=0,
            last_change=None,
        )  # fmt: skip
        self._thread: threading.Thread | None = None

    # -- running ----------------------------------------------------------------------------

    def start(self) -> None:
        """Run in a background thread (``imagefind serve --watch``)."""
        self._thread = threading.Thread(target=self.run, name="watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def state(self) -> WatcherState:
        self._state.pending = len(self._pending) + len(self._gone)
        return self._state

    def run(self) -> None:
        """Catch up, then follow events until ``stop_event`` is set. Blocking."""
        try:
            self._run()
        except ImagefindError as exc:
            self._state.state, self._state.error = "failed", str(exc)
            self._emit("error", reason=str(exc))
            raise
        finally:
            if self._state.state != "failed":
                self._state.state = "stopped"
            self._emit("stopped")

    def _run(self) -> None:
        if not self.folders:
            self.folders, missing = self.library.roots.to_scan(())
            self._state.folders = self.folders
            for skipped in missing:
                self._emit("skipped", path=skipped.path, reason=skipped.reason)
        for folder in self.folders:
            if not os.path.isdir(folder):
                raise LibraryError(f"{folder}: no such folder to watch")
        observer = self._observer()
        for folder in self.folders:  # events queue up during the catch-up: none is lost
            observer.schedule(_Handler(self), folder, recursive=True)
        observer.start()
        try:
            self._state.state = "catching up"
            summary = self.library.index(
                self.folders, raw_pairs=self.raw_pairs, progress=self.progress
            )
            self._emit("scanned", summary=summary)
            self._state.state = "watching"
            self._emit("watching", reason=self._state.observer)
            self._loop()
        finally:
            observer.stop()
            observer.join(10)

    def _observer(self) -> BaseObserver:
        if self.poll is not None:
            from watchdog.observers.polling import PollingObserver

            self._state.observer = f"polling every {self.poll:g} s"
            return PollingObserver(timeout=self.poll)
        from watchdog.observers import Observer

        observer = Observer()
        self._state.observer = type(observer).__name__.removesuffix("Observer") or "events"
        return observer

    # -- events -----------------------------------------------------------------------------

    def notice(self, kind: str, path: str) -> None:
        """An event from the observer's thread: ``changed``, ``closed`` or ``gone``."""
        self._queue.put((kind, path))

    def _loop(self) -> None:
        last_event = time.monotonic()
        first_ready: float | None = None
        while not self.stop_event.is_set():
            try:
                kind, path = self._queue.get(timeout=TICK)
            except queue.Empty:
                pass
            else:
                last_event = time.monotonic()
                self._take(kind, path)
                while True:  # everything already queued, before deciding
                    try:
                        self._take(*self._queue.get_nowait())
                    except queue.Empty:
                        break
            now = time.monotonic()
            ready = self._ready(now)
            if not ready and not self._gone:
                first_ready = None
                continue
            first_ready = first_ready or now
            if now < self._retry_at:
                continue  # the last batch failed: its changes wait, then are tried again
            if not ready and self._pending and now - first_ready < GONE_WAIT:
                continue  # what went away may be coming back (a move): re-link, not prune
            if (
                now - last_event >= QUIET
                or now - first_ready >= MAX_WAIT
                or len(ready) >= MAX_BATCH
            ):
                self._apply(ready)
                first_ready = None

    def _take(self, kind: str, path: str) -> None:
        self._state.events += 1
        if kind == "gone":
            self._gone.add(path)
            self._pending.pop(path, None)
            return
        signature = _signature(path)
        since = time.monotonic()
        if kind == "closed":  # the writer is done: ready once its size is seen to hold
            since -= self.settle
        self._pending[path] = _Pending(signature, since)

    def _ready(self, now: float) -> list[str]:
        """Pending paths whose size and time have held for ``settle`` seconds."""
        ready = []
        for path, pending in list(self._pending.items()):
            signature = _signature(path)
            if signature is None:  # gone before it settled (a temporary file)
                del self._pending[path]
                self._gone.add(path)
            elif signature != pending.signature:
                pending.signature, pending.since = signature, now
            elif now - pending.since >= self.settle:
                ready.append(path)
        return ready[:MAX_BATCH]

    def _apply(self, ready: list[str]) -> None:
        """One incremental run over what is ready and what went away, and its events."""
        gone = sorted(self._gone)
        self._gone.clear()
        missing = [f for f in self.folders if not os.path.isdir(f)]
        if missing:  # an unmounted drive: its images are kept, as `index` keeps them
            gone = [g for g in gone if not any(_inside(g, f) for f in missing)]
            for folder in missing:
                if folder not in self._missing:
                    reason = "folder is missing (unmounted?); its images are kept"
                    self._emit("skipped", path=folder, reason=reason)
        self._missing = set(missing)
        for path in ready:
            self._pending.pop(path, None)
        folders = [p for p in ready if os.path.isdir(p)]
        ready = [p for p in ready if not any(_inside(p, f) and p != f for f in folders)]
        store = self.library.store
        places = [*ready, *gone]
        before = _rows(store, places)
        top = store.max_id()  # ids are never reused: a higher one is a new row
        try:
            summary = self.library.apply_changes(ready, gone, raw_pairs=self.raw_pairs)
        except ImagefindError as exc:
            self._retry_later(ready, gone, str(exc))
            return
        self._failures = 0
        after = _rows(store, places)
        self._report(before, after, top, summary)

    def _retry_later(self, ready: list[str], gone: list[str], reason: str) -> None:
        """A batch the library refused (its store unreachable, say): nothing is dropped; the
        same changes are tried again after a wait that doubles up to ``RETRY_MAX``."""
        delay = min(RETRY_MAX, RETRY_FIRST * 2**self._failures)
        self._failures += 1
        self._retry_at = time.monotonic() + delay
        for path in ready:
            self._pending.setdefault(path, _Pending(_signature(path), 0.0))
        self._gone.update(gone)
        self._emit("error", reason=f"{reason}; trying again in {delay:g} s")

    def _report(
        self,
        before: dict[int, ImageRecord],
        after: dict[int, ImageRecord],
        top: int,
        s: IndexSummary,
    ) -> None:
        for image_id, rec in sorted(after.items()):
            old = before.get(image_id)
            if old is None and image_id > top:
                self._emit("added", path=rec.path, id=image_id)
            elif old is None:  # moved here from a path this batch was not told about
                self._emit("renamed", path=rec.path, id=image_id)
            elif old.path != rec.path:
                self._emit("renamed", path=rec.path, source=old.path, id=image_id)
            elif (old.sha256, old.mtime, old.size) != (rec.sha256, rec.mtime, rec.size):
                self._emit("updated", path=rec.path, id=image_id)
        for image_id, rec in sorted(before.items()):
            if image_id not in after:
                self._emit("removed", path=rec.path, id=image_id)
        for skipped in s.skipped:
            self._emit("skipped", path=skipped.path, reason=skipped.reason)
        if s.added or s.updated or s.renamed or s.removed or s.encoded:
            self._state.last_change = iso_time(time.time())
        self._emit("batch", summary=s)

    def _emit(self, event: Any, **fields: Any) -> None:
        if self.on_event is not None:
            self.on_event(WatchEvent(event=event, time=iso_time(time.time()) or "", **fields))

    def wanted(self, path: str) -> bool:
        """Whether a changed path could be an image of the library (inside a watched folder,
        not the library's own, not hidden, not a cache or trash folder)."""
        if _inside(path, str(self.library.path)):
            return False
        if not any(_inside(path, folder) for folder in self.folders):
            return False  # moved out of the watched folders: only its source matters
        parts = Path(path).parts
        name = parts[-1] if parts else ""
        return name not in JUNK_FILES and not any(
            p.startswith(".") or p in JUNK_DIRS for p in parts
        )


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _rows(store: Any, places: Sequence[str]) -> dict[int, ImageRecord]:
    """Rows at or under each path, by id (before and after a run, to tell what it did)."""
    rows: dict[int, ImageRecord] = {}
    for place in places:
        for rec in store.paths_under(place).values():
            rows[rec.id] = rec
    return rows


class _Handler(FileSystemEventHandler):
    """watchdog's callback: turns its events into the watcher's three kinds."""

    def __init__(self, watcher: Watcher) -> None:
        super().__init__()
        self.watcher = watcher

    def dispatch(self, event: FileSystemEvent) -> None:
        w = self.watcher
        src = os.fsdecode(event.src_path)
        kind = event.event_type
        if kind == "moved":
            w.notice("gone", src)
            dest = os.fsdecode(event.dest_path)
            if w.wanted(dest):  # a rename is whole at once: no need to wait for it to settle
                w.notice("closed", dest)
        elif kind == "deleted":
            w.notice("gone", src)
        elif kind in ("created", "modified", "closed") and w.wanted(src):
            if event.is_directory and kind == "modified":
                return  # a folder's own time changes with every file in it
            w.notice("closed" if kind == "closed" else "changed", src)
