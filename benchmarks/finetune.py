"""Fine-tuning benchmark: CPU training throughput of a ViT-B/32-size CLIP, and the shapes
experiment's held-out recall before and after ``imagefind finetune``.

Run: ``.venv/bin/python -m benchmarks.finetune``. Writes ``benchmarks/results/finetune.json``
and prints a table. The B/32 model has random weights (same FLOPs as the real one), so its
numbers are speed only; the shapes experiment is the one that measures learning.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "finetune.json"
CHECKPOINT = ROOT / ".cache" / "bench-models" / "b32-checkpoint"  # shared with modelcache


def b32_throughput(batch: int, steps: int, train: str, threads: int | None) -> dict[str, Any]:
    """Pairs per second of full optimiser steps (decode, forward, backward, AdamW) on the
    trainer's own parts, after one warm-up step."""
    import torch

    from imagefind.finetune.data import PixelBatches, load_pairs
    from imagefind.finetune.loss import clamp_logit_scale_, clip_loss
    from imagefind.finetune.model import (
        image_features,
        load_base,
        select_trainable,
        text_features,
        tokenize,
    )
    from imagefind.finetune.train import _adamw, _param_groups
    from imagefind.models.preprocess import Preprocessor
    from tests.modelkit import random_checkpoint
    from tests.test_finetune_e2e import make_shapes

    if threads:
        torch.set_num_threads(threads)
    if not (CHECKPOINT / "config.json").is_file():
        random_checkpoint(CHECKPOINT, size="b32")
    with tempfile.TemporaryDirectory() as tmp:
        pairs = load_pairs(make_shapes(Path(tmp), per_class=(batch * (steps + 1)) // 12 + 1))
        base = load_base(CHECKPOINT)
        model = base.model.train()
        trainable = select_trainable(model, train)
        optimizer = _adamw(_param_groups(model, 0.1), 1e-5)
        tokens = tokenize(base, pairs.captions)
        batches = PixelBatches(pairs.pairs, Preprocessor(base.preprocess))
        chunks = [list(range(i * batch, (i + 1) * batch)) for i in range(steps + 1)]
        times = []
        for idx, pixels in batches.iterate(chunks):
            started = time.perf_counter()
            loss = clip_loss(
                image_features(model, torch.from_numpy(pixels)),
                text_features(model, tokens[idx]),
                model.logit_scale,
            )
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            clamp_logit_scale_(model.logit_scale)
            times.append(time.perf_counter() - started)
    per_step = sum(times[1:]) / len(times[1:])
    return {
        "model": "random ViT-B/32-size CLIP",
        "train": train,
        "trainable_tensors": len(trainable),
        "batch": batch,
        "steps": steps,
        "threads": torch.get_num_threads(),
        "seconds_per_step": round(per_step, 3),
        "pairs_per_s": round(batch / per_step, 2),
    }


def shapes_experiment() -> dict[str, Any]:
    """The end-to-end test's run: tiny random CLIP, 480 shape pictures, 400 steps."""
    from imagefind.finetune.data import load_pairs
    from imagefind.finetune.train import FinetuneConfig, finetune
    from tests.test_finetune_e2e import make_shapes, shapes_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pairs = load_pairs(make_shapes(root / "data", per_class=40))
        base = shapes_checkpoint(root / "base")
        cfg = FinetuneConfig(lr=1e-3, max_steps=400, batch_size=32, threads=1)
        started = time.perf_counter()
        result = finetune(pairs, base, root / "out", cfg)
        total = time.perf_counter() - started
    m = result.metrics
    return {
        "pairs": m["data"]["pairs"],
        "held_out": m["data"]["held_out"],
        "before": m["before"],
        "after": m["after"],
        "train_seconds": m["train"]["seconds"],
        "pairs_per_s": m["train"]["pairs_per_s"],
        "total_seconds": round(total, 1),
        "loss": [m["train"]["first_loss"], m["train"]["final_loss"]],
    }


def _row(name: str, r: dict[str, Any]) -> str:
    cells = [r[d][f"R@{k}"] for d in ("image_to_text", "text_to_image") for k in (1, 5, 10)]
    return f"  {name:<7}" + "".join(f"{c:>8.3f}" for c in cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    runs = []
    # torch's thread count is process-wide: the runs on its default threads go first.
    for train, threads in (("all", None), ("projections", None), ("all", 1)):
        print(f"B/32 throughput: train={train} threads={threads or 'default'} ...", flush=True)
        runs.append(b32_throughput(args.batch, args.steps, train, threads))
    print("shapes experiment ...", flush=True)
    shapes = shapes_experiment()
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "b32_throughput": runs,
        "shapes": shapes,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nTraining throughput, CPU ({os.cpu_count()} cores), batch {args.batch}:")
    print(f"  {'train':<12}{'threads':>8}{'s/step':>10}{'pairs/s':>10}")
    for r in runs:
        print(f"  {r['train']:<12}{r['threads']:>8}{r['seconds_per_step']:>10.2f}"
              f"{r['pairs_per_s']:>10.2f}")  # fmt: skip
    print(f"\nShapes experiment ({shapes['pairs']} pairs, {shapes['held_out']} held out):")
    print(f"  {'':<7}" + "".join(f"{h:>8}" for h in
          ("i→t@1", "i→t@5", "i→t@10", "t→i@1", "t→i@5", "t→i@10")))  # fmt: skip
    print(_row("before", shapes["before"]))
    print(_row("after", shapes["after"]))
    print(f"  trained in {shapes['train_seconds']} s ({shapes['pairs_per_s']} pairs/s); "
          f"whole run {shapes['total_seconds']} s")  # fmt: skip
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
