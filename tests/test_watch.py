"""The watcher with real file-system events (inotify here) and with polling, on each store:
new files indexed once written, growing files waited for, moves re-linked without encoding,
deletes of files and folders pruned, bursts taken in batches."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from imagefind import Library
from imagefind.schemas import WatchEvent
from imagefind.watch import Watcher
from tests.synth import natural_image

TIMEOUT = 60.0  # generous: the machine may be busy; waits end as soon as the state is reached


@pytest.fixture(autouse=True)
def _on_each_store(store: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if store:
        monkeypatch.setenv("IMAGEFIND_STORE", store)
    else:
        monkeypatch.delenv("IMAGEFIND_STORE", raising=False)


class Running:
    """A watcher in a thread, and the events it emitted."""

    def __init__(self, lib: Library, folder: Path, **options: object) -> None:
        self.events: list[WatchEvent] = []
        self.lock = threading.Lock()
        self.watcher = Watcher(lib, [folder], on_event=self._hear, settle=0.3, **options)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.wait(lambda: self.kinds().count("watching") == 1)

    def _run(self) -> None:
        try:
            self.watcher.run()
        except BaseException as exc:  # reported by wait()
            self.error = exc

    def _hear(self, event: WatchEvent) -> None:
        with self.lock:
            self.events.append(event)

    def kinds(self) -> list[str]:
        with self.lock:
            return [e.event for e in self.events]

    def of(self, kind: str) -> list[WatchEvent]:
        with self.lock:
            return [e for e in self.events if e.event == kind]

    def wait(self, done: Callable[[], bool], timeout: float = TIMEOUT) -> None:
        end = time.monotonic() + timeout
        while not done():
            assert self.error is None, self.error
            assert time.monotonic() < end, f"timed out; events: {self.events}"
            time.sleep(0.05)

    def stop(self) -> None:
        self.watcher.stop_event.set()
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive()


def _jpeg(path: Path, seed: int, size: tuple[int, int] = (160, 120)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".part")
    natural_image(*size, seed=seed).save(tmp, "JPEG", quality=90)
    os.replace(tmp, path)  # as copy tools do: a hidden temporary, then a rename
    return path


@pytest.fixture
def lib(tmp_path: Path, tiny_model_dir: Path) -> Iterator[Library]:
    library = Library.open(tmp_path / "lib", model=str(tiny_model_dir))
    yield library
    library.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    _jpeg(root / "old.jpg", seed=1)
    return root


def _encoded(run: Running) -> int:
    """Images encoded so far: the catch-up's and every batch's."""
    return sum(e.summary.encoded for e in run.of("scanned") + run.of("batch") if e.summary)


def _paths(lib: Library) -> dict[str, int]:
    return {path: rec.id for path, rec in lib.store.paths_under("/").items()}


@pytest.mark.parametrize("poll", [None, 0.2], ids=["events", "polling"])
def test_follows_new_moved_and_deleted_files(
    lib: Library, folder: Path, poll: float | None
) -> None:
    run = Running(lib, folder, poll=poll)
    try:
        assert run.of("scanned")[0].summary.added == 1  # the catch-up
        new = _jpeg(folder / "sub" / "new.jpg", seed=2)
        run.wait(lambda: len(run.of("added")) == 1)
        assert run.of("added")[0].path == str(new)
        first_id = _paths(lib)[str(new)]
        encoded = _encoded(run)
        assert encoded == 2

        moved = folder / "elsewhere" / "renamed.jpg"
        moved.parent.mkdir()
        os.rename(new, moved)
        run.wait(lambda: len(run.of("renamed")) == 1)
        renamed = run.of("renamed")[0]
        # A move across folders may reach the watcher as a delete and a create in either
        # order; when the create comes first, where the file was is not known yet.
        assert renamed.path == str(moved) and renamed.source in (str(new), None)
        assert _paths(lib) == {str(folder / "old.jpg"): 1, str(moved): first_id}  # same id
        assert _encoded(run) == encoded  # re-linked, not encoded

        (folder / "old.jpg").unlink()
        run.wait(lambda: len(run.of("removed")) == 1)
        shutil.rmtree(folder / "elsewhere")  # a whole folder
        run.wait(lambda: len(run.of("removed")) == 2)
        assert lib.count() == 0
        assert {e.path for e in run.of("removed")} == {str(folder / "old.jpg"), str(moved)}
        assert len(run.of("added")) == 1
    finally:
        run.stop()
    assert run.kinds()[-1] == "stopped"


def test_waits_for_a_file_to_stop_growing(lib: Library, folder: Path) -> None:
    run = Running(lib, folder)
    try:
        data = (_jpeg(folder / "src.jpg", seed=5, size=(400, 300))).read_bytes()
        run.wait(lambda: lib.count() == 2)
        target = folder / "slow.jpg"
        with open(target, "wb") as out:  # a camera writing in pieces over a slow link
            for start in range(0, len(data), len(data) // 4 + 1):
                out.write(data[start : start + len(data) // 4 + 1])
                out.flush()
                time.sleep(0.15)
        run.wait(lambda: str(target) in _paths(lib))
        assert lib.store.by_path(str(target)).size == len(data)
        assert not run.of("skipped")  # never read half-written
    finally:
        run.stop()


def test_burst_is_encoded_in_batches(lib: Library, folder: Path, tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    for i in range(60):
        _jpeg(staging / f"b{i:03d}.jpg", seed=100 + i, size=(96, 64))
    run = Running(lib, folder)
    try:
        for path in sorted(staging.iterdir()):
            shutil.copy(path, folder / path.name)
        run.wait(lambda: len(run.of("added")) == 60)
        assert lib.count() == 61
        batches = [e for e in run.of("batch") if e.summary and e.summary.encoded]
        assert sum(e.summary.encoded for e in batches) == 60
        assert len(batches) <= 10  # batches, not one run per file
        assert len(run.of("added")) == 60
    finally:
        run.stop()


def test_ignores_hidden_files_and_its_own_library(
    lib: Library, tmp_path: Path, tiny_model_dir: Path
) -> None:
    run = Running(lib, tmp_path)  # the library folder is inside the watched one
    try:
        _jpeg(tmp_path / ".cache" / "x.jpg", seed=7)
        _jpeg(tmp_path / "seen.jpg", seed=8)
        run.wait(lambda: str(tmp_path / "seen.jpg") in _paths(lib))
        time.sleep(1.0)
        assert set(_paths(lib)) == {str(tmp_path / "seen.jpg")}
    finally:
        run.stop()


def test_a_vanished_root_keeps_its_images(lib: Library, folder: Path, tmp_path: Path) -> None:
    run = Running(lib, folder)
    try:
        assert lib.count() == 1
        folder.rename(tmp_path / "unplugged")  # the drive goes away
        time.sleep(2.0)  # whatever events that brings have been handled by now
        assert lib.count() == 1 and not run.of("removed")
    finally:
        run.stop()


def test_a_failed_batch_is_tried_again_not_dropped(
    lib: Library, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store away for a moment (a database restarting): the batch's changes wait and
    are applied once it is back, with no restart of the watcher."""
    from imagefind.errors import LibraryError

    run = Running(lib, folder)
    try:
        real = lib.apply_changes
        failures = [LibraryError("database is unreachable")]

        def flaky(*args: object, **kwargs: object) -> object:
            if failures:
                raise failures.pop()
            return real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(lib, "apply_changes", flaky)
        new = _jpeg(folder / "new.jpg", seed=3)
        run.wait(lambda: len(run.of("added")) == 1)
        errors = run.of("error")
        assert len(errors) == 1 and "database is unreachable; trying again in 1 s" in (
            errors[0].reason or ""
        )
        assert run.of("added")[0].path == str(new) and str(new) in _paths(lib)
    finally:
        run.stop()
