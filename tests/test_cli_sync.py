"""``imagefind watch`` as a real process: events on stdout with --json, a clean stop on
SIGTERM and SIGINT, and after a SIGKILL the next start catches up with nothing lost or
doubled (on each store)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.synth import natural_image

TIMEOUT = 120.0  # a cold start loads the model; the machine may be busy


class WatchProcess:
    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from imagefind.cli import main; main()", "watch",
             str(folder), "--json", "--settle", "0.2"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.events: queue.Queue[dict] = queue.Queue()
        self.seen: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def until(self, kind: str, path: str | None = None) -> dict:
        end = time.monotonic() + TIMEOUT
        while time.monotonic() < end:
            try:
                event = self.events.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read() if self.proc.stderr else ""
                    raise AssertionError(f"watch exited {self.proc.returncode}: {err}") from None
                continue
            self.seen.append(event)
            if event["event"] == kind and (path is None or event["path"] == path):
                return event
        raise AssertionError(f"no {kind} event; saw {[e['event'] for e in self.seen]}")


@pytest.fixture
def env(tmp_path: Path, tiny_model_dir: Path, store: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(IMAGEFIND_HOME=str(tmp_path / "lib"), IMAGEFIND_MODEL=str(tiny_model_dir))
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).parents[1] / "src"), env.get("PYTHONPATH", "")]
    )
    if store:
        env["IMAGEFIND_STORE"] = store
    else:
        env.pop("IMAGEFIND_STORE", None)
    return env


def _jpeg(path: Path, seed: int) -> str:
    natural_image(128, 96, seed=seed).save(path, "JPEG", quality=90)
    return str(path)


def _library_paths(env: dict[str, str]) -> list[str]:
    from imagefind import Library

    with Library.open(env["IMAGEFIND_HOME"], store=env.get("IMAGEFIND_STORE")) as lib:
        return sorted(str(image.path) for image in lib.images(0, 1000))


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_stops_cleanly(env: dict[str, str], tmp_path: Path, how: signal.Signals) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    watch = WatchProcess(env, folder)
    watch.until("watching")
    added = _jpeg(folder / "a.jpg", seed=1)
    watch.until("added", added)
    watch.proc.send_signal(how)
    watch.until("stopped")
    assert watch.proc.wait(TIMEOUT) == 0


def test_catches_up_after_sigkill(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    kept = _jpeg(folder / "kept.jpg", seed=1)
    watch = WatchProcess(env, folder)
    assert watch.until("scanned")["summary"]["added"] == 1
    watch.until("watching")
    doomed = _jpeg(folder / "doomed.jpg", seed=2)
    watch.until("added", doomed)
    watch.proc.kill()  # SIGKILL: no chance to tidy up
    watch.proc.wait(TIMEOUT)
    # Changes while nobody watches: a new file, a deleted one, a renamed one.
    late = _jpeg(folder / "late.jpg", seed=3)
    os.unlink(doomed)
    moved = str(folder / "moved.jpg")
    os.rename(kept, moved)
    again = WatchProcess(env, folder)
    summary = again.until("scanned")["summary"]
    assert (summary["added"], summary["removed"], summary["renamed"]) == (1, 1, 1)
    again.until("watching")
    again.proc.send_signal(signal.SIGTERM)
    assert again.proc.wait(TIMEOUT) == 0
    assert _library_paths(env) == sorted([late, moved])  # nothing lost, nothing twice


def test_human_output_on_stderr(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from imagefind.cli import main; main()", "watch", str(folder),
         "--settle", "0.2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stderr is not None
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stderr], daemon=True).start()

    def until(text: str) -> str:
        end = time.monotonic() + TIMEOUT
        while time.monotonic() < end:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r}")

    assert "added 0" in until("caught up: ")
    until("watching (")
    added = _jpeg(folder / "a.jpg", seed=1)
    assert until("added ").rstrip().endswith(f"added {added}")
    os.rename(added, folder / "b.jpg")
    assert until(f"renamed {added}").rstrip().endswith(f"renamed {added} -> {folder / 'b.jpg'}")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(TIMEOUT) == 0
    assert proc.stdout is not None and proc.stdout.read() == ""  # events go to stderr
