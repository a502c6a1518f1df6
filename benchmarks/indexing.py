"""Indexing end to end (files on disk to catalog), against the bound of its two halves.

For each corpus and precision, measured in the same run, next to each other:

- ``t_model``: seconds per image for inference alone on all cores (``encode_pixels`` on
  random pixels at the pipeline's batch size);
- ``t_decode``: seconds per image for a decode worker's work alone, on one core:
  ``Pipeline.prepare`` (read, sha256, draft decode at 2*S, preprocess, thumbnail) in a loop;
- ``bound = 1 / (t_model + t_decode / cores)``: what a perfect pipeline would do if the
  decode work spread over every core and the encoder ran at its own speed in between;
- measured: ``Library.index(folder)`` into a fresh library, images/s of the whole call;
- naive: the seed's loop (full decode, no draft, one image at a time, batch 1), fp32.

    python -m benchmarks.indexing [--quick]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks.data import CORPORA, DATA, Corpus, corpus_files, corpus_subset
from benchmarks.modelcache import b32_model_dirs
from imagefind.library import Library
from imagefind.models import ClipModel, load_model
from imagefind.pipeline import Pipeline
from imagefind.prepare import Item
from imagefind.scanner import FoundFile

BATCH = 16  # the batch size Library.index starts from (and keeps on a CPU)
Log = Callable[[str], object]


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Meter:
    """Wall time and CPU time of this process over a block: cpu/wall is how many cores the
    block kept busy (on a shared machine, it also shows what the others left us)."""

    def __enter__(self) -> Meter:
        self.wall0, self.cpu0 = time.perf_counter(), _cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = _cpu_seconds() - self.cpu0

    @property
    def cores_busy(self) -> float:
        return round(self.cpu / self.wall, 2) if self.wall > 0 else 0.0


def t_model(model: ClipModel, batch: int, repeats: int) -> dict[str, Any]:
    s = model.image_size
    pixels = np.random.default_rng(0).standard_normal((batch, 3, s, s), dtype=np.float32)
    model.encode_pixels(pixels)  # warm-up
    times = []
    with Meter() as m:
        for _ in range(repeats):
            t = time.perf_counter()
            model.encode_pixels(pixels)
            times.append(time.perf_counter() - t)
    return {
        "s_per_image": round(statistics.median(times) / batch, 5),
        "s_per_image_best": round(min(times) / batch, 5),
        "batch": batch,
        "repeats": repeats,
        "cores_busy": m.cores_busy,
        "cpu_s_per_image": round(m.cpu / (repeats * batch), 5),
    }


def model_ratio(
    models: dict[str, ClipModel], batch: int, rounds: int, big: int = 64
) -> dict[str, Any]:
    """fp32 and int8 inference alone at the pipeline's batch (and at ``big``, once per
    round), in alternating rounds so both see the same machine."""
    s = next(iter(models.values())).image_size
    pixels = np.random.default_rng(0).standard_normal((big, 3, s, s), dtype=np.float32)
    times: dict[tuple[str, int], list[float]] = {}
    for model in models.values():
        model.encode_pixels(pixels[:batch])  # warm-up
    for r in range(rounds):
        for precision, model in models.items():
            for b in (batch, big) if r < 2 else (batch,):
                t = time.perf_counter()
                model.encode_pixels(pixels[:b])
                times.setdefault((precision, b), []).append(time.perf_counter() - t)
    out: dict[str, Any] = {"batch": batch, "rounds": rounds}
    for (precision, b), ts in times.items():
        key = precision if b == batch else f"{precision}_batch{b}"
        out[key] = {
            "img_per_s": round(b / statistics.median(ts), 2),
            "img_per_s_best": round(b / min(ts), 2),
        }
    out["int8_over_fp32"] = round(out["int8"]["img_per_s"] / out["fp32"]["img_per_s"], 2)
    out["int8_over_fp32_best"] = round(
        out["int8"]["img_per_s_best"] / out["fp32"]["img_per_s_best"], 2
    )
    return out


def t_decode(files: list[Path], model: ClipModel, scratch: Path) -> dict[str, Any]:
    """``Pipeline.prepare`` on one thread: exactly a decode worker's work per file."""
    shutil.rmtree(scratch, ignore_errors=True)
    # The library's own pipeline, so this follows whatever the workers do today.
    lib = Library.open(scratch, model=model)
    try:
        pipe = lib._pipeline(BATCH, 1, None)
        assert isinstance(pipe, Pipeline), pipe  # the in-process one: it has a prepare step

        def item(p: Path) -> Item:
            st = p.stat()
            return Item(name=str(p), found=FoundFile(str(p), st.st_size, st.st_mtime))

        pipe.prepare(item(files[0]))  # warm-up: imports, codec tables
        times = []
        with Meter() as m:
            for p in files:
                t = time.perf_counter()
                out = pipe.prepare(item(p))
                times.append(time.perf_counter() - t)
                if not isinstance(out, Item) or out.pixels is None:
                    raise RuntimeError(f"{p}: prepare did not decode it ({out})")
    finally:
        lib.close()
    return {
        "s_per_image": round(statistics.median(times), 5),
        "s_per_image_mean": round(statistics.fmean(times), 5),
        "s_per_image_best": round(min(times), 5),
        "files": len(times),
        "cores_busy": m.cores_busy,
        "cpu_s_per_image": round(m.cpu / len(times), 5),
    }


def naive(files: list[Path], model: ClipModel) -> dict[str, Any]:
    """The seed's loop: open, full decode to RGB, preprocess, encode one image at a time."""
    with Meter() as m:
        for p in files:
            rgb = Image.open(p).convert("RGB")
            model.encode_pixels(model.preprocess(rgb)[None])
    return {
        "images": len(files),
        "seconds": round(m.wall, 3),
        "img_per_s": round(len(files) / m.wall, 3),
        "cores_busy": m.cores_busy,
    }


def index_once(folder: Path, model: ClipModel, scratch: Path) -> dict[str, Any]:
    shutil.rmtree(scratch, ignore_errors=True)
    with Meter() as m, Library.open(scratch, model=model) as lib:
        summary = lib.index([folder])  # as users run it: batch size and decoders tuned
    shutil.rmtree(scratch, ignore_errors=True)
    if summary.skipped or summary.encoded == 0:
        raise RuntimeError(f"indexing {folder}: {summary}")
    return {
        "images": summary.encoded,
        "seconds": round(m.wall, 3),
        "img_per_s": round(summary.encoded / m.wall, 3),
        "cores_busy": m.cores_busy,
        "cpu_s_per_image": round(m.cpu / summary.encoded, 5),
        "tuned": {"batch_size": summary.batch_size, "decoders": summary.decoders},
    }


def bench_corpus(
    corpus: Corpus,
    count: int,
    models: dict[str, ClipModel],
    *,
    quick: bool,
    cores: int,
    log: Log,
) -> dict[str, Any]:
    folder = corpus_subset(corpus, count, log=log)
    files = corpus_files(corpus, count, log=log)
    scratch = Path(tempfile.mkdtemp(prefix="bench-index-", dir=DATA))
    try:
        decode_files = files[: 8 if quick else 24]
        naive_files = files[: 12 if quick else 40]
        row: dict[str, Any] = {
            "corpus": corpus.name,
            "label": corpus.label,
            "size": f"{corpus.width}x{corpus.height}",
            "images": count,
            "bytes_per_file": int(sum(f.stat().st_size for f in files) / len(files)),
            "cores": cores,
        }
        dec = t_decode(decode_files, models["fp32"], scratch / "decode")
        row["t_decode"] = dec
        log(f"  {corpus.label}: t_decode {dec['s_per_image'] * 1000:.0f} ms/image (1 core)")
        for precision, model in models.items():
            mod = t_model(model, BATCH, 2 if quick else 4)
            measured = index_once(folder, model, scratch / f"lib-{precision}")
            bound = 1.0 / (mod["s_per_image"] + dec["s_per_image"] / cores)
            row[precision] = {
                "t_model": mod,
                "measured": measured,
                "bound_img_per_s": round(bound, 3),
                "ratio": round(measured["img_per_s"] / bound, 3),
                # CPU seconds the pipeline spent per image over those of its parts apart:
                # ~1 means no overhead, so a ratio below 1 is cores we did not get.
                "cpu_overhead": round(
                    measured["cpu_s_per_image"] / (mod["cpu_s_per_image"] + dec["cpu_s_per_image"]),
                    3,
                ),
            }
            log(
                f"  {corpus.label} {precision}: {measured['img_per_s']:.2f} img/s, bound "
                f"{bound:.2f} (t_model {mod['s_per_image'] * 1000:.0f} ms), "
                f"ratio {measured['img_per_s'] / bound:.2f}"
            )
        nv = naive(naive_files, models["fp32"])
        row["naive_fp32"] = nv
        for precision in models:
            row[precision]["speedup_vs_naive"] = round(
                row[precision]["measured"]["img_per_s"] / nv["img_per_s"], 2
            )
        row["int8_over_fp32_end_to_end"] = round(
            row["int8"]["measured"]["img_per_s"] / row["fp32"]["measured"]["img_per_s"], 2
        )
        row["int8_over_fp32_model"] = round(
            row["fp32"]["t_model"]["s_per_image"] / row["int8"]["t_model"]["s_per_image"], 2
        )
        log(
            f"  {corpus.label} naive fp32: {nv['img_per_s']:.2f} img/s -> speedup "
            f"{row['fp32']['speedup_vs_naive']:.1f}x fp32, {row['int8']['speedup_vs_naive']:.1f}x "
            "int8"
        )
        return row
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run(quick: bool, *, log: Log = print) -> dict[str, Any]:
    fp32_dir, int8_dir = b32_model_dirs(log=log)
    cores = os.cpu_count() or 1
    models = {"fp32": load_model(str(fp32_dir)), "int8": load_model(str(int8_dir))}
    sessions = {}
    for precision, model in models.items():
        t = time.perf_counter()
        _ = model.visual.session
        sessions[precision] = round(time.perf_counter() - t, 3)
    ratio = model_ratio(models, BATCH, 4 if quick else 8)
    log(
        f"  model alone, batch {BATCH}: fp32 {ratio['fp32']['img_per_s']:.1f} img/s, int8 "
        f"{ratio['int8']['img_per_s']:.1f} img/s: int8 {ratio['int8_over_fp32']:.2f}x "
        f"(best runs {ratio['int8_over_fp32_best']:.2f}x); batch 64: fp32 "
        f"{ratio['fp32_batch64']['img_per_s']:.1f}, int8 {ratio['int8_batch64']['img_per_s']:.1f}"
    )
    rows = []
    for corpus in CORPORA:
        count = corpus.quick_count if quick else corpus.full_count
        rows.append(bench_corpus(corpus, count, models, quick=quick, cores=cores, log=log))
    return {
        "cores": cores,
        "batch_size": BATCH,
        "visual_session_load_s": sessions,
        "model_alone": ratio,
        "note": (
            "Library.index into a fresh library with the model already loaded (the session "
            "load is listed apart); files in the page cache (they were just generated or read)"
        ),
        "corpora": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.indexing", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    run(args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
