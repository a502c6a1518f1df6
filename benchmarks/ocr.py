"""Text in images: the engines compared, and what OCR costs an index run.

Measured in one run, on the test set that the tests make (tests/textkit.py: 90 phrase
images over sizes, fonts, colours, rotations and backgrounds, 12 screenshot-like images,
100 photos without text):

- per engine (PP-OCRv4 through rapidocr-onnxruntime; Tesseract 5 from Debian): images/s on
  the text-free photos and on the text-heavy screenshots (one thread, one image at a time),
  and word recall of the read text (compact form: case, accents, spaces and punctuation
  ignored) per condition;
- search success with the default engine: the image holding a phrase ranked first by
  ``--mode text`` and in the top 3 by ``--mode hybrid``, among all 202 images;
- indexing images/s of ``Library.index`` on a folder of photos and screenshots, without
  OCR and with ``ocr=True``, into fresh libraries, with the ViT-B/32-size random model
  (real FLOPs) unless ``--quick`` (the tests' tiny model).

    python -m benchmarks.ocr [--quick] [--out benchmarks/results/ocr.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.models import cpu_flags
from imagefind.library import Library
from imagefind.ocr.engine import ENGINES, load_engine
from imagefind.ocr.stage import read_image_file, stored
from imagefind.ocr.textquery import compact
from tests.synth import natural_image
from tests.textkit import Sample, make_set, save, screenshot

RESULTS = Path(__file__).resolve().parent / "results"


def read_all(engine_name: str, files: dict[str, Sample]) -> tuple[dict[str, Any], dict]:
    """Read every file once with one engine: timings by kind, and what was read."""
    engine = load_engine(engine_name, threads=1)
    read_image_file(Path(next(iter(files))), engine)  # load the models before timing
    seconds: dict[str, list[float]] = defaultdict(list)
    results = {}
    for path, sample in files.items():
        started = time.perf_counter()
        results[path] = read_image_file(Path(path), engine)
        kind = sample.condition.get("kind", "phrase")
        seconds[kind].append(time.perf_counter() - started)
    speed = {
        kind: {"images": len(s), "images_per_s": round(len(s) / sum(s), 2)}
        for kind, s in seconds.items()
    }
    return speed, results


def recall(files: dict[str, Sample], results: dict) -> dict[str, dict[str, float]]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for path, sample in files.items():
        got = compact(results[path].text)
        for word in sample.words:
            for key, value in [("all", "all"), *sample.condition.items()]:
                counts[f"{key}={value}"][0] += int(compact(word) in got)
                counts[f"{key}={value}"][1] += 1
    false_text = sum(1 for p, s in files.items() if not s.phrases and compact(results[p].text))
    table = {k: {"recall": round(h / n, 4), "words": n} for k, (h, n) in sorted(counts.items())}
    table["photos_with_false_text"] = {"recall": false_text, "words": 0}
    return table


def search_success(folder: Path, files: dict[str, Sample], results: dict, model: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp, Library.open(Path(tmp), model=model) as lib:
        lib.index([folder])
        ids = {r.path: r.id for r in lib.store.paths_under(str(folder)).values()}
        lib.store.put_texts([stored(ids[p], results[p]) for p in files])
        out = {}
        for mode, within in (("text", 1), ("hybrid", 3)):
            tried = found = 0
            started = time.perf_counter()
            for path, sample in files.items():
                for phrase in sample.phrases:
                    tried += 1
                    hits = lib.search(phrase, k=within, mode=mode)
                    found += int(path in [h.image.path for h in hits])
            out[mode] = {
                "phrases": tried,
                f"success_top{within}": round(found / tried, 4),
                "ms_per_query": round((time.perf_counter() - started) * 1000 / tried, 2),
            }
        return out


def indexing(model: str, count: int) -> dict[str, Any]:
    """Library.index on photos and screenshots, without and with OCR, fresh libraries."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "pics"
        folder.mkdir()
        for i in range(count):
            if i % 4 == 3:
                lines = [f"Network: Home-{i}", f"WiFi-Password: code{i:04d}", "Storage 20 GB"]
                screenshot(i, lines).save(folder / f"screen-{i}.png")
            else:
                natural_image(1024, 768, seed=i).save(folder / f"photo-{i}.jpg", quality=90)
        out: dict[str, Any] = {"images": count, "photos": count - count // 4}
        for label, ocr in (("without_ocr", False), ("with_ocr", True)):
            with Library.open(Path(tmp) / label, model=model) as lib:
                lib.model  # loaded before timing  # noqa: B018
                started = time.perf_counter()
                summary = lib.index([folder], ocr=ocr)
                seconds = time.perf_counter() - started
            out[label] = {"seconds": round(seconds, 2), "images_per_s": round(count / seconds, 2)}
            if summary.ocr is not None:
                out[label]["ocr_deferred_to_the_end"] = summary.ocr.deferred
        out["ratio_with_to_without"] = round(
            out["with_ocr"]["images_per_s"] / out["without_ocr"]["images_per_s"], 3
        )
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the tiny model, fewer images")
    parser.add_argument("--out", type=Path, default=RESULTS / "ocr.json")
    args = parser.parse_args()
    if args.quick:
        from benchmarks.modelcache import tiny_model_dir

        model = str(tiny_model_dir())
    else:
        from benchmarks.modelcache import b32_model_dirs

        model = str(b32_model_dirs()[0])
    report: dict[str, Any] = {"lscpu": cpu_flags(), "cpus_usable": len(os.sched_getaffinity(0))}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "set"
        files = save(make_set(), folder)
        engines: dict[str, Any] = {}
        for name in ENGINES:
            speed, results = read_all(name, files)
            engines[name] = {"speed": speed, "recall": recall(files, results)}
            print(name, json.dumps(engines[name]["speed"]), engines[name]["recall"]["all=all"])
            if name == "rapidocr":
                report["search"] = search_success(folder, files, results, model)
                print("search", report["search"])
        report["engines"] = engines
    report["indexing"] = indexing(model, 40 if args.quick else 80)
    print("indexing", report["indexing"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
