"""Benchmark models built once and reused: a random-weight CLIP with ViT-B/32's shapes, and
the tests' tiny one.

The weights are random, so the numbers say nothing about accuracy, only about speed: the
B/32 graphs have the real model's FLOPs. The tiny model (``tests.modelkit``, a few small
layers) is for benchmarks of the server's own work, where the encoder must not take the CPU.
The B/32 build (checkpoint, export, int8 copy) takes a minute or two, the tiny one
seconds; both land in ``.cache/bench-models/`` (git-ignored) and later runs reuse them. Each
copy carries a stamp of the code that made it, so a change to the exporter or the quantiser
rebuilds what it affects.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

from imagefind.errors import ModelError
from imagefind.models.layout import read_model_dir

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench-models"
STAMP = ".bench-stamp"


def _source_stamp(*modules: str, extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for rel in modules:
        digest.update((ROOT / rel).read_bytes())
    return digest.hexdigest()[:16]


def _ready(path: Path, stamp: str) -> bool:
    try:
        read_model_dir(path)
        return (path / STAMP).read_text() == stamp
    except (ModelError, OSError):
        return False


def b32_model_dirs(
    *, rebuild: bool = False, log: Callable[[str], object] = print
) -> tuple[Path, Path]:
    """The fp32 and int8 model directories of the ViT-B/32-size random model."""
    from imagefind.models.export import export_clip
    from imagefind.models.quantize import quantize_model
    from tests.modelkit import random_checkpoint

    ckpt, fp32, int8 = CACHE / "b32-checkpoint", CACHE / "b32-fp32", CACHE / "b32-int8"
    fp32_stamp = _source_stamp("src/imagefind/models/export.py", "tests/modelkit.py")
    int8_stamp = _source_stamp("src/imagefind/models/quantize.py", extra=fp32_stamp)
    if rebuild:
        for p in (ckpt, fp32, int8):
            shutil.rmtree(p, ignore_errors=True)
    if not _ready(fp32, fp32_stamp):
        if not (ckpt / "config.json").is_file():
            log(f"building the random ViT-B/32-size checkpoint in {ckpt} ...")
            random_checkpoint(ckpt, size="b32")
        log(f"exporting it to {fp32} (a minute or two) ...")
        export_clip(ckpt, fp32)
        (fp32 / STAMP).write_text(fp32_stamp)
    if not _ready(int8, int8_stamp):
        log(f"quantising it to {int8} ...")
        quantize_model(fp32, int8)
        (int8 / STAMP).write_text(int8_stamp)
    return fp32, int8


def tiny_model_dir(*, log: Callable[[str], object] = print) -> Path:
    """The tests' tiny random model (32-d vectors, milliseconds per image), exported once."""
    from imagefind.models.export import export_clip
    from tests.modelkit import random_checkpoint

    ckpt, out = CACHE / "tiny-checkpoint", CACHE / "tiny-fp32"
    stamp = _source_stamp("src/imagefind/models/export.py", "tests/modelkit.py")
    if not _ready(out, stamp):
        log(f"building the tiny random model in {out} ...")
        shutil.rmtree(ckpt, ignore_errors=True)
        random_checkpoint(ckpt, size="tiny")
        export_clip(ckpt, out)
        (out / STAMP).write_text(stamp)
    return out


def built_model_dirs(
    name: str,
    build_checkpoint: Callable[[Path], object],
    *,
    sources: tuple[str, ...],
    spec: object = None,
    log: Callable[[str], object] = print,
) -> tuple[Path, Path]:
    """fp32 and int8 directories of any random checkpoint ``build_checkpoint`` writes, under
    ``CACHE/NAME-*``: the big size classes take minutes to export, so they are built once.
    ``sources`` are the files and ``spec`` (JSON-able: the shapes) whose change rebuilds them,
    besides the exporter and the quantiser."""
    from imagefind.models.export import export_clip
    from imagefind.models.quantize import quantize_model

    ckpt, fp32, int8 = (CACHE / f"{name}-{kind}" for kind in ("checkpoint", "fp32", "int8"))
    shapes = name + json.dumps(spec, sort_keys=True)
    fp32_stamp = _source_stamp("src/imagefind/models/export.py", *sources, extra=shapes)
    int8_stamp = _source_stamp("src/imagefind/models/quantize.py", extra=fp32_stamp)
    if not _ready(fp32, fp32_stamp):
        shutil.rmtree(ckpt, ignore_errors=True)
        log(f"building the random {name} checkpoint in {ckpt} ...")
        build_checkpoint(ckpt)
        log(f"exporting it to {fp32} ...")
        export_clip(ckpt, fp32)
        (fp32 / STAMP).write_text(fp32_stamp)
        shutil.rmtree(ckpt, ignore_errors=True)  # GBs for the big ones; the export is the cache
    if not _ready(int8, int8_stamp):
        log(f"quantising it to {int8} ...")
        quantize_model(fp32, int8)
        (int8 / STAMP).write_text(int8_stamp)
    return fp32, int8
