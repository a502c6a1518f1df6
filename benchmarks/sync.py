"""Keeping in sync: how soon a written file is searchable, how fast a burst goes through the
watcher compared with ``imagefind index``, and RAW images/s by preview and by demosaicing.

Measured in one run, on the random ViT-B/32-size model (fp32; its FLOPs are the real one's):

- latency: ``imagefind watch`` runs as its own process on an empty folder; 50 photos are
  written into it one by one (each waits for the previous to show); a file counts as
  searchable when another connection to the library sees its row (what a new
  ``imagefind search`` reads). p50 and p95 from the start of the write;
- burst: 1,000 photos copied into the watched folder at once, from the first write to the
  last row committed, against ``Library.index`` of the same files into a fresh library, run
  before and after the watcher (their mean; the model loaded and warm in both): the ratio
  is the watcher's images/s over index's;
- RAW: ``Library.index`` of DNGs with a big embedded JPEG preview, and of DNGs without one
  (demosaiced at half size).

    python -m benchmarks.sync [--quick] [--burst N]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.data import DATA, photo
from benchmarks.modelcache import b32_model_dirs
from benchmarks.models import cpu_flags
from imagefind.library import Library
from imagefind.models import load_model

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "sync.json"
SIZE = (1600, 1200)  # a 2 MP photo: a phone's shared copy, a camera's small JPEG


def _photos(folder: Path, count: int, seed: int) -> list[Path]:
    """``count`` distinct JPEGs (a few base photos, each copy with its own pixel changed)."""
    folder.mkdir(parents=True, exist_ok=True)
    bases = [photo(*SIZE, seed=seed + i) for i in range(8)]
    paths = []
    for i in range(count):
        image = bases[i % len(bases)].copy()
        image.putpixel((i % SIZE[0], i // SIZE[0]), (i % 256, 7, 11))
        path = folder / f"IMG_{seed + i:05d}.jpg"
        image.save(path, quality=88)
        paths.append(path)
    return paths


class Watch:
    """``imagefind watch FOLDER --json`` in its own process."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from imagefind.cli import main; main()", "watch",
             str(folder), "--json"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        while self.events.get(timeout=600)["event"] != "watching":
            pass

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)


def _wait_rows(reader: Library, want: int, timeout: float = 1800) -> float:
    end = time.monotonic() + timeout
    while reader.count() < want:
        if time.monotonic() > end:
            raise RuntimeError(f"only {reader.count()} of {want} rows after {timeout} s")
        time.sleep(0.01)
    return time.perf_counter()


def latency(env: dict[str, str], work: Path, files: list[Path]) -> dict[str, Any]:
    folder = work / "latency"
    folder.mkdir()
    watch = Watch(env, folder)
    times = []
    try:
        with Library.open(env["IMAGEFIND_HOME"]) as reader:
            for i, src in enumerate(files):
                data = src.read_bytes()
                started = time.perf_counter()
                (folder / src.name).write_bytes(data)
                path = str(folder / src.name)
                while reader.store.by_path(path) is None:
                    time.sleep(0.005)
                    if time.perf_counter() - started > 120:
                        raise RuntimeError(f"{path} not searchable after 120 s")
                times.append(time.perf_counter() - started)
                assert reader.count() == i + 1
    finally:
        watch.stop()
    times.sort()
    return {
        "files": len(times),
        "p50_s": round(statistics.median(times), 3),
        "p95_s": round(times[min(len(times) - 1, int(0.95 * len(times)))], 3),
        "max_s": round(times[-1], 3),
    }


def burst(env: dict[str, str], work: Path, files: list[Path], model: Any) -> dict[str, Any]:
    folder = work / "burst"
    folder.mkdir()
    # index runs before and after the watcher, so a machine getting busier or quieter
    # during the run weighs on both sides alike.
    before = _index_seconds(work / "index-lib-before", files, model)
    watch = Watch(env, folder)
    try:
        with Library.open(env["IMAGEFIND_HOME"]) as reader:
            base = reader.count()
            started = time.perf_counter()
            for src in files:
                shutil.copyfile(src, folder / src.name)
            copied = time.perf_counter() - started
            done = _wait_rows(reader, base + len(files))
    finally:
        watch.stop()
    watch_s = done - started
    after = _index_seconds(work / "index-lib-after", files, model)
    index_s = (before + after) / 2
    return {
        "files": len(files),
        "copy_s": round(copied, 2),
        "watch_s": round(watch_s, 2),
        "watch_img_per_s": round(len(files) / watch_s, 2),
        "index_s_before_and_after": [round(before, 2), round(after, 2)],
        "index_img_per_s": round(len(files) / index_s, 2),
        "watch_over_index": round(index_s / watch_s, 3),
    }


def _index_seconds(library: Path, files: list[Path], model: Any) -> float:
    """``Library.index`` of the burst's files into a fresh library (the model warm)."""
    with Library.open(library, model=model) as lib:
        t = time.perf_counter()
        summary = lib.index([files[0].parent])
        seconds = time.perf_counter() - t
    assert summary.encoded == len(files), summary
    return seconds


def raw_rates(work: Path, model: Any, count: int) -> dict[str, Any]:
    from tests.rawkit import dng

    out: dict[str, Any] = {"size": "3000x2000 (6 MP) Bayer, 12-bit"}
    for label, preview in (("preview", True), ("demosaic", False)):
        folder = work / f"raw-{label}"
        folder.mkdir()
        for i in range(count):
            scene = photo(3000, 2000, seed=500 + i)
            small = scene.resize((1620, 1080)) if preview else None
            (folder / f"DSC_{i:04d}.dng").write_bytes(dng(scene, preview=small))
        with Library.open(work / f"lib-{label}", model=model) as lib:
            t = time.perf_counter()
            summary = lib.index([folder])
            seconds = time.perf_counter() - t
        assert summary.encoded == count and not summary.skipped, summary
        out[label] = {"files": count, "seconds": round(seconds, 2),
                      "img_per_s": round(count / seconds, 2)}  # fmt: skip
        shutil.rmtree(folder)
    out["preview_over_demosaic"] = round(
        out["preview"]["img_per_s"] / out["demosaic"]["img_per_s"], 2
    )
    return out


def run(quick: bool, burst_count: int) -> dict[str, Any]:
    fp32_dir, _ = b32_model_dirs()
    model = load_model(str(fp32_dir))
    model.encode_pixels(np.zeros((16, 3, model.image_size, model.image_size), np.float32))
    work = Path(tempfile.mkdtemp(prefix="bench-sync-", dir=DATA if DATA.is_dir() else None))
    try:
        env = dict(os.environ)
        env.update(IMAGEFIND_HOME=str(work / "watch-lib"), IMAGEFIND_MODEL=str(fp32_dir))
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
        env.pop("IMAGEFIND_STORE", None)
        print("writing photos ...", flush=True)
        files = _photos(work / "staging-latency", 12 if quick else 50, seed=0)
        burst_files = _photos(work / "staging-burst", burst_count, seed=10_000)
        print("latency ...", flush=True)
        lat = latency(env, work, files)
        print(f"  {lat}", flush=True)
        print("burst ...", flush=True)
        bur = burst(env, work, burst_files, model)
        print(f"  {bur}", flush=True)
        print("RAW ...", flush=True)
        raw = raw_rates(work, model, 6 if quick else 24)
        print(f"  {raw}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "cpu": cpu_flags(),
        "cores": os.cpu_count(),
        "model": "random ViT-B/32-size, fp32",
        "photo_size": f"{SIZE[0]}x{SIZE[1]} JPEG",
        "latency": lat,
        "burst": bur,
        "raw": raw,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sync", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = run(args.quick, 100 if args.quick else args.burst)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
