"""Encoder speed of a ViT-B/32-size CLIP (random weights), fp32 and int8, on ONNX Runtime.

Images/s at batch 1, 16 and 64 through ``ClipModel.encode_pixels``; ms per single text query,
padded to the full context (77 tokens) and trimmed to its real length (``encode_texts``);
and how close int8 stays to fp32 on natural-looking images. Not a test: it prints a table and
writes ``benchmarks/results/encoders.json``.

    python -m benchmarks.encoders [--quick] [--threads N]

Each image point runs a warm-up batch, then repeats until about 5 s have passed (1.5 s with
``--quick``). Both the mean rate and the best single run are kept: on a machine shared with
other work the best run is the closer estimate of what the hardware can do, and the load
average before and after says how shared it was.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from benchmarks.modelcache import b32_model_dirs
from imagefind.models import ClipModel, load_model

RESULTS = Path(__file__).resolve().parent / "results"
BATCHES = (1, 16, 64)
QUERY = "a photo of a dog running on the beach at sunset"
COSINE_QUERIES = [QUERY, "a red car", "mountains covered in snow", "a bowl of fruit on a table"]


def machine() -> dict[str, Any]:
    model_name = ""
    physical: set[tuple[str, str]] = set()
    phys_id = "0"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "model name" and not model_name:
                model_name = value
            elif key == "physical id":
                phys_id = value
            elif key == "core id":
                physical.add((phys_id, value))
        flags = next(
            (line for line in Path("/proc/cpuinfo").read_text().splitlines() if "flags" in line),
            "",
        ).split()
    except OSError:
        flags = []
    simd = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": model_name or platform.processor(),
        "cpu_count": os.cpu_count(),
        "physical_cores": len(physical) or None,
        "simd": simd,
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
        "providers": ort.get_available_providers(),
    }


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def random_pixels(model: ClipModel, n: int, seed: int = 0) -> np.ndarray:
    """Uniform random RGB in [0, 1], normalised with the model's mean and std."""
    cfg = model.dir.preprocess
    s = model.image_size
    rgb = np.random.default_rng(seed).random((n, 3, s, s), dtype=np.float32)
    mean = np.asarray(cfg.mean, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(cfg.std, dtype=np.float32).reshape(1, 3, 1, 1)
    return (rgb - mean) / std


def bench_images(model: ClipModel, batch: int, seconds: float) -> dict[str, Any]:
    pixels = random_pixels(model, batch)
    model.encode_pixels(pixels)  # warm-up: session creation, allocations
    runs: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(runs) < 2:
        t = time.perf_counter()
        model.encode_pixels(pixels)
        runs.append(time.perf_counter() - t)
    return {
        "batch": batch,
        "runs": len(runs),
        "seconds": round(sum(runs), 3),
        "img_per_s": round(batch * len(runs) / sum(runs), 2),
        "img_per_s_best": round(batch / min(runs), 2),
        "ms_per_batch_median": round(statistics.median(runs) * 1000, 2),
    }


def bench_text(model: ClipModel, repeats: int) -> dict[str, Any]:
    ids, lengths = model.tokenizer.encode([QUERY])
    assert ids.shape[1] == model.dir.context_length
    padded_times: list[float] = []
    trimmed_times: list[float] = []
    model.textual.run(ids)  # warm-up
    model.encode_texts([QUERY])
    for _ in range(repeats):  # interleaved, so both see the same machine
        t = time.perf_counter()
        model.textual.run(ids)
        padded_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        model.encode_texts([QUERY])  # tokenises and trims: the real query path
        trimmed_times.append(time.perf_counter() - t)
    return {
        "query": QUERY,
        "tokens": int(lengths[0]),
        "context_length": int(ids.shape[1]),
        "repeats": repeats,
        "padded_ms_median": round(statistics.median(padded_times) * 1000, 2),
        "padded_ms_best": round(min(padded_times) * 1000, 2),
        "trimmed_ms_median": round(statistics.median(trimmed_times) * 1000, 2),
        "trimmed_ms_best": round(min(trimmed_times) * 1000, 2),
    }


def int8_fidelity(fp32: ClipModel, int8: ClipModel) -> dict[str, Any]:
    from tests.synth import natural_image

    sizes = [(640, 480), (480, 640), (224, 224), (1000, 250), (300, 300), (800, 600)]
    images = [natural_image(w, h, seed=i) for i, (w, h) in enumerate(sizes * 2)]
    img_cos = (fp32.encode_images(images) * int8.encode_images(images)).sum(axis=1)
    txt_cos = (fp32.encode_texts(COSINE_QUERIES) * int8.encode_texts(COSINE_QUERIES)).sum(axis=1)
    return {
        "images": len(images),
        "image_cosine_min": round(float(img_cos.min()), 5),
        "image_cosine_mean": round(float(img_cos.mean()), 5),
        "texts": len(COSINE_QUERIES),
        "text_cosine_min": round(float(txt_cos.min()), 5),
        "text_cosine_mean": round(float(txt_cos.mean()), 5),
    }


def print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    m, s = result["machine"], result["settings"]
    console.print(
        f"[bold]{m['cpu']}[/] ({m['cpu_count']} CPUs, {m['physical_cores']} cores, "
        f"{'/'.join(m['simd']) or 'no AVX2'}), onnxruntime {m['onnxruntime']}, "
        f"threads {s['threads']} ({s['threads_note']}); load average "
        f"{result['load_before']} -> {result['load_after']}"
    )
    table = Table(title="ViT-B/32-size CLIP, random weights: image encoder, img/s (best run)")
    table.add_column("precision")
    for batch in BATCHES:
        table.add_column(f"batch {batch}", justify="right")
    for precision in ("fp32", "int8"):
        rows = {r["batch"]: r for r in result["images"][precision]}
        table.add_row(
            precision,
            *(f"{rows[b]['img_per_s']:.1f} ({rows[b]['img_per_s_best']:.1f})" for b in BATCHES),
        )
    console.print(table)
    text = Table(title=f"Text encoder, one query ({result['text']['fp32']['tokens']} tokens), ms")
    text.add_column("precision")
    text.add_column("padded to 77: median (best)", justify="right")
    text.add_column("trimmed: median (best)", justify="right")
    for precision in ("fp32", "int8"):
        t = result["text"][precision]
        text.add_row(
            precision,
            f"{t['padded_ms_median']:.1f} ({t['padded_ms_best']:.1f})",
            f"{t['trimmed_ms_median']:.1f} ({t['trimmed_ms_best']:.1f})",
        )
    console.print(text)
    f = result["int8_vs_fp32"]
    console.print(
        f"int8 vs fp32 cosine: images min {f['image_cosine_min']:.4f} mean "
        f"{f['image_cosine_mean']:.4f} ({f['images']}); texts min {f['text_cosine_min']:.4f} "
        f"mean {f['text_cosine_mean']:.4f} ({f['texts']})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.encoders", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a rough look)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="intra-op threads (default: IMAGEFIND_THREADS or onnxruntime's own choice)",
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild the benchmark models")
    parser.add_argument("--out", type=Path, default=RESULTS / "encoders.json")
    args = parser.parse_args(argv)

    fp32_dir, int8_dir = b32_model_dirs(rebuild=args.rebuild, log=print)
    seconds = 1.5 if args.quick else 5.0
    repeats = 20 if args.quick else 50
    models = {
        "fp32": load_model(str(fp32_dir), threads=args.threads),
        "int8": load_model(str(int8_dir), threads=args.threads),
    }
    threads = models["fp32"].visual.threads
    result: dict[str, Any] = {
        "benchmark": "encoders",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "threads": threads,
            "threads_note": "onnxruntime default: one per physical core" if threads == 0 else "set",
            "graph_optimization": "ORT_ENABLE_ALL",
            "providers": models["fp32"].visual.session.get_providers(),
            "quick": args.quick,
            "seconds_per_point": seconds,
            "text_repeats": repeats,
            "model": "random-weight CLIP with ViT-B/32 shapes (tests.modelkit, size='b32')",
            "fp32_dir": str(fp32_dir),
            "int8_dir": str(int8_dir),
        },
        "load_before": load_average(),
        "images": {},
        "text": {},
    }
    for precision, model in models.items():
        result["images"][precision] = []
        for batch in BATCHES:
            row = bench_images(model, batch, seconds)
            result["images"][precision].append(row)
            print(
                f"{precision} batch {batch:>2}: {row['img_per_s']:.1f} img/s "
                f"(best {row['img_per_s_best']:.1f}, {row['runs']} runs)",
                flush=True,
            )
        result["text"][precision] = bench_text(model, repeats)
    result["int8_vs_fp32"] = int8_fidelity(models["fp32"], models["int8"])
    result["load_after"] = load_average()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
