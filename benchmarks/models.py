"""Speed and size of each size class of the zoo on this machine: the README's "Choosing a model".

    python -m benchmarks.models [--quick] [--only b32,b16,siglip2-b16,l14,so400m] [--build-only]
    python -m benchmarks.models --markdown     # the README table, from the results file

Each class is a random-weight transformers checkpoint with the real architecture's shapes
(nothing is downloaded), exported with ``imagefind.models.export`` (fp32) and quantised with
``imagefind.models.quantize`` (int8, what ``imagefind models quantize`` runs), then measured
through the project's own encoder (``load_model(dir)``): image encoder img/s (a warm-up batch,
then at least two timed batches) and ms per single text query (median). Random weights say
nothing about accuracy but everything about speed and size: the graphs have the real FLOPs and
the real parameter count, so the fp32 files weigh what the real downloads weigh.

Where the shapes come from (public architecture facts, cross-checked against open_clip's model
configs ``ViT-B-32.json``, ``ViT-B-16.json``, ``ViT-L-14.json``, ``ViT-B-16-SigLIP2.json`` and
``ViT-SO400M-14-SigLIP-384.json``):

- OpenAI ViT-B/32 and B/16: 224 px, vision 768 wide x 12 layers (12 heads, MLP 3072); text
  512 x 12 (8 heads, MLP 2048, context 77, vocab 49408); 512-d vectors.
- OpenAI ViT-L/14: 224 px, patch 14, vision 1024 x 24 (16 heads, MLP 4096); text 768 x 12
  (12 heads); 768-d vectors.
- SigLIP2 ViT-B/16 (fixed resolution, a transformers ``SiglipModel``): 224 px, patch 16,
  vision and text 768 x 12 (12 heads, MLP 3072), context 64, Gemma vocabulary 256000; 768-d.
- SigLIP ViT-SO400M/14 at 384 px: vision 1152 x 27 (16 heads, MLP 4304, patch 14); the text
  tower has the same width and depth, context 64, vocabulary 32000; 1152-d vectors.

The SigLIP checkpoints carry the tests' small tokenizer (``tests.familykit``) but an embedding
table of the real vocabulary size, so parameter counts and file sizes match the real models.
Results go to ``benchmarks/results/models.json``. Built models are cached in
``.cache/bench-models/`` (the two big ones take minutes and several GB of RAM to export).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.encoders import QUERY, load_average, machine, random_pixels
from benchmarks.modelcache import b32_model_dirs, built_model_dirs
from imagefind.models import ClipModel, load_model
from tests.modelkit import layers

RESULTS = Path(__file__).resolve().parent / "results"
SOURCE = "https://github.com/mlfoundations/open_clip/tree/main/src/open_clip/model_configs"
# immich's model tables (docs/docs/features/searching.md, read at commit 01a09bb3): "Recall (%):
# evaluated on Crossmodal-3600, the average of the recall@1, recall@5 and recall@10 results for
# zeroshot image retrieval", English, fp32, of the real weights.
RECALL_SOURCE = (
    "immich docs, Searching > CLIP models, English table (Crossmodal-3600, mean of R@1/5/10 "
    "zero-shot image retrieval): https://github.com/immich-app/immich/blob/"
    "01a09bb36ba03cfc135dbe48c886ad68e8d5e720/docs/docs/features/searching.md"
)


@dataclass(frozen=True)
class SizeClass:
    """One row of the table: how to build it, how hard to push it, what is published."""

    key: str
    label: str
    zoo_name: str
    family: str  # "clip" (tests.modelkit SIZES) or "siglip" (tests.familykit)
    image_size: int
    batch: int  # images per timed batch: fewer for the big ones, on a 2-core machine
    spec: dict[str, Any] = field(default_factory=dict)
    shapes_from: str = ""
    # immich's published recall (RECALL_SOURCE), English; None where it lists none.
    recall: float | None = None


SIZE_CLASSES: dict[str, SizeClass] = {
    c.key: c
    for c in (
        SizeClass("b32", "CLIP ViT-B/32", "ViT-B-32__openai", "clip", 224, 16, recall=59.37,
                  shapes_from=f"{SOURCE}/ViT-B-32.json"),
        SizeClass("b16", "CLIP ViT-B/16", "ViT-B-16__openai", "clip", 224, 16, recall=58.27,
                  shapes_from=f"{SOURCE}/ViT-B-16.json"),
        SizeClass("siglip2-b16", "SigLIP2 ViT-B/16", "ViT-B-16-SigLIP2__webli", "siglip", 224, 16,
                  recall=75.19,
                  spec=dict(layers=layers(768, 3072, 12, 12), patch_size=16, vocab_size=256000),
                  shapes_from=f"{SOURCE}/ViT-B-16-SigLIP2.json"),
        SizeClass("l14", "CLIP ViT-L/14", "ViT-L-14__openai", "clip", 224, 8, recall=60.12,
                  shapes_from=f"{SOURCE}/ViT-L-14.json"),
        SizeClass("so400m", "SigLIP SO400M/14 @384", "ViT-SO400M-14-SigLIP-384__webli", "siglip",
                  384, 2, recall=72.58,
                  spec=dict(layers=layers(1152, 4304, 27, 16), patch_size=14, vocab_size=32000),
                  shapes_from=f"{SOURCE}/ViT-SO400M-14-SigLIP-384.json"),
    )
}  # fmt: skip


def model_dirs(cls: SizeClass, log: Callable[[str], object] = print) -> tuple[Path, Path]:
    """The fp32 and int8 directories of one size class, built once into the cache."""
    if cls.key == "b32":
        return b32_model_dirs(log=log)  # shared with benchmarks.encoders
    if cls.family == "clip":
        from tests.modelkit import SIZES, random_checkpoint

        return built_model_dirs(
            cls.key,
            lambda out: random_checkpoint(out, size=cls.key, image_size=cls.image_size),
            sources=("tests/modelkit.py",),
            spec=[SIZES[cls.key], cls.image_size],
            log=log,
        )
    from tests.familykit import siglip_checkpoint

    return built_model_dirs(
        cls.key,
        lambda out: siglip_checkpoint(out, image_size=cls.image_size, **cls.spec),
        sources=("tests/familykit.py",),
        spec=[cls.spec, cls.image_size],
        log=log,
    )


def dir_mb(path: Path) -> float:
    """Size on disk of a model directory's files (graphs, weights, tokenizer), in MB."""
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6, 1)


def parameters(path: Path) -> int:
    """Parameters in both graphs of a model directory (float initialisers, summed)."""
    import onnx
    from onnx import numpy_helper  # noqa: F401  (loads external data helpers)

    total = 0
    for sub in ("visual", "textual"):
        graph = onnx.load(str(path / sub / "model.onnx"), load_external_data=False).graph
        for init in graph.initializer:
            n = 1
            for d in init.dims:
                n *= int(d)
            total += n
    return total


def measure(
    model: ClipModel, *, batch: int, batches: int = 2, text_repeats: int = 20
) -> dict[str, Any]:
    """Image encoder img/s (one warm-up batch, then ``batches`` timed ones) and ms per single
    text query (median of ``text_repeats``, tokenising included: the real query path)."""
    pixels = random_pixels(model, batch)
    model.encode_pixels(pixels)  # warm-up: allocations, first-run kernels
    runs: list[float] = []
    for _ in range(batches):
        t = time.perf_counter()
        model.encode_pixels(pixels)
        runs.append(time.perf_counter() - t)
    model.encode_texts([QUERY])  # warm-up
    texts: list[float] = []
    for _ in range(text_repeats):
        t = time.perf_counter()
        model.encode_texts([QUERY])
        texts.append(time.perf_counter() - t)
    return {
        "batch": batch,
        "batches": batches,
        "img_per_s": round(batch * len(runs) / sum(runs), 2),
        "img_per_s_best": round(batch / min(runs), 2),
        "text_repeats": text_repeats,
        "text_ms_median": round(statistics.median(texts) * 1000, 2),
        "text_ms_best": round(min(texts) * 1000, 2),
        "dim": int(model.encode_texts([QUERY]).shape[-1]),
    }


def cpu_flags() -> dict[str, Any]:
    """``lscpu``'s model name, cores and the SIMD flags that matter to onnxruntime."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    info = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in out.splitlines())}
    flags = info.get("Flags", "").split()
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8")
    return {
        "model_name": info.get("Model name"),
        "cpus": info.get("CPU(s)"),
        "threads_per_core": info.get("Thread(s) per core"),
        "flags": [f for f in wanted if f in flags],
    }


def measure_dirs(
    fp32_dir: Path,
    int8_dir: Path,
    *,
    batch: int,
    text_repeats: int = 20,
    log: Callable[[str], object] = print,
) -> dict[str, Any]:
    """One table row's numbers for an exported model and its int8 copy: sizes, parameters,
    and ``measure`` at each precision (the smoke test runs this on the tiny model)."""
    row: dict[str, Any] = {
        "parameters": parameters(fp32_dir),
        "fp32_mb": dir_mb(fp32_dir),
        "int8_mb": dir_mb(int8_dir),
        "load_before": load_average(),
    }
    for precision, path in (("fp32", fp32_dir), ("int8", int8_dir)):
        model = load_model(str(path))
        row[precision] = measure(model, batch=batch, text_repeats=text_repeats)
        log(
            f"  {precision}: {row[precision]['img_per_s']:.2f} img/s, "
            f"text {row[precision]['text_ms_median']:.1f} ms"
        )
        del model  # the big ones hold GBs; one at a time
    row["load_after"] = load_average()
    return row


def run_class(cls: SizeClass, quick: bool, log: Callable[[str], object] = print) -> dict[str, Any]:
    fp32_dir, int8_dir = model_dirs(cls, log=log)
    log(f"{cls.key}: measuring (batch {cls.batch}) ...")
    numbers = measure_dirs(
        fp32_dir, int8_dir, batch=cls.batch, text_repeats=10 if quick else 20, log=log
    )
    return {
        "label": cls.label,
        "zoo_name": cls.zoo_name,
        "image_size": cls.image_size,
        "shapes_from": cls.shapes_from,
        "download_note": "the real fp32 export's size: same shapes, same parameter count",
        "published_recall": cls.recall,
        "published_recall_source": RECALL_SOURCE if cls.recall else None,
        **numbers,
    }


def print_table(rows: dict[str, dict[str, Any]]) -> None:
    print(f"{'class':24} {'dim':>5} {'img/s fp32':>10} {'int8':>8} {'text ms fp32':>12} "
          f"{'int8':>6} {'fp32 MB':>8} {'int8 MB':>8}")  # fmt: skip
    for row in rows.values():
        if "error" in row:
            print(f"{row['label']:24} not measured: {row['error']}")
            continue
        f, i = row["fp32"], row["int8"]
        print(
            f"{row['label']:24} {f['dim']:>5} {f['img_per_s']:>10.2f} {i['img_per_s']:>8.2f} "
            f"{f['text_ms_median']:>12.1f} {i['text_ms_median']:>6.1f} "
            f"{row['fp32_mb']:>8.0f} {row['int8_mb']:>8.0f}"
        )


def markdown(result: dict[str, Any]) -> str:
    """The README's table, from a results file (no hand copying of numbers)."""
    lines = [
        "| size class | zoo name (example) | dim | img/s fp32 | img/s int8 | text ms fp32 "
        "| text ms int8 | download MB (fp32) | int8 copy MB | published recall (%) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["classes"].values():
        if "error" in row:
            lines.append(f"| {row['label']} | not measured: {row['error']} |" + " |" * 8)
            continue
        f, i = row["fp32"], row["int8"]
        recall = "—" if row["published_recall"] is None else f"{row['published_recall']:.2f}"
        lines.append(
            f"| {row['label']} | `{row['zoo_name']}` | {f['dim']} | {f['img_per_s']:.2f} "
            f"| {i['img_per_s']:.2f} | {f['text_ms_median']:.0f} | {i['text_ms_median']:.0f} "
            f"| {row['parameters'] * 4 / 1e6:.0f} | {row['int8_mb']:.0f} | {recall} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.models", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer text repeats")
    parser.add_argument("--only", default=",".join(SIZE_CLASSES), help="comma-separated classes")
    parser.add_argument("--build-only", action="store_true", help="build the models only")
    parser.add_argument("--markdown", action="store_true", help="print the README table only")
    parser.add_argument("--out", type=Path, default=RESULTS / "models.json")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.out.read_text())))
        return 0
    keys = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = [k for k in keys if k not in SIZE_CLASSES]
    if unknown:
        parser.error(f"unknown size classes {unknown}; known: {', '.join(SIZE_CLASSES)}")

    def log(message: str) -> None:
        print(message, flush=True)

    if args.build_only:
        for key in keys:
            started = time.perf_counter()
            model_dirs(SIZE_CLASSES[key], log=log)
            log(f"{key}: ready ({time.perf_counter() - started:.0f} s)")
        return 0
    # --only keeps the other classes' rows from an earlier run
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    rows: dict[str, dict[str, Any]] = dict(previous.get("classes", {}))
    for key in keys:
        try:
            rows[key] = run_class(SIZE_CLASSES[key], args.quick, log=log)
        except Exception as exc:  # a class that cannot be built (memory) must not cost the rest
            rows[key] = {"label": SIZE_CLASSES[key].label, "error": f"{type(exc).__name__}: {exc}"}
    import onnxruntime as ort

    result = {
        "benchmark": "models",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "lscpu": cpu_flags(),
        "onnxruntime": ort.__version__,
        "settings": {
            "quick": args.quick,
            "weights": "random, real architecture shapes (see benchmarks/models.py)",
            "threads": "onnxruntime default (one per physical core)",
        },
        "classes": {k: rows[k] for k in SIZE_CLASSES if k in rows},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result["classes"])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
