"""What a run leaves behind: resumable state, the exported model, the metrics document."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from imagefind.finetune import FinetuneError
from imagefind.finetune.data import PairSet
from imagefind.finetune.model import Base

STATE_DIR = "train-state"
STATE_FILE = "state.pt"
METRICS_FILE = "metrics.json"
MODEL_ENTRIES = ("config.json", "visual", "textual")
# Changing any of these mid-run would silently change the run being resumed.
RESUME_KEYS = ("batch_size", "accumulate", "train", "seed", "holdout", "epochs", "max_steps")


def fingerprint(pairs: PairSet) -> str:
    """A digest of the pairs, so --resume refuses data that changed under it."""
    digest = hashlib.sha256()
    for p in pairs.pairs:
        digest.update(f"{p.path}\t{p.caption}\n".encode())
    return digest.hexdigest()


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Written beside and renamed over, so an interrupt never leaves half a checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def export(checkpoint: Path, out: Path) -> None:
    """Export with the project's exporter (dynamic batch) and put the model directory's
    entries at the top of ``out``, next to the checkpoint and metrics."""
    from imagefind.models.export import export_clip

    staging = out / ".export"
    shutil.rmtree(staging, ignore_errors=True)
    export_clip(checkpoint, staging, fixed_batch=False)
    for name in MODEL_ENTRIES:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        (staging / name).rename(target)
    shutil.rmtree(staging, ignore_errors=True)


def check_resume(state: dict[str, Any], cfg: Any, data: PairSet) -> None:
    """Refuse to resume with other data or options: the result would match neither run."""
    if state.get("data") != fingerprint(data):
        raise FinetuneError("--resume: the data changed since the run started; start afresh")
    saved = state.get("config", {})
    for key in RESUME_KEYS:
        if saved.get(key) != getattr(cfg, key):
            raise FinetuneError(
                f"--resume: {key} was {saved.get(key)!r}, now {getattr(cfg, key)!r}; "
                "resume with the same options"
            )


def metrics_document(
    b: Base,
    data: PairSet,
    cfg: Any,
    n_train: int,
    n_eval: int,
    before: dict[str, Any],
    after: dict[str, Any],
) -> dict[str, Any]:
    """metrics.json: recall before/after plus what is needed to tell runs apart."""
    return {
        "base": b.source,
        "data": {
            "form": data.form,
            "pairs": len(data.pairs),
            "train": n_train,
            "held_out": n_eval,
            "skipped": [{"where": r.where, "reason": r.reason} for r in data.bad],
        },
        "before": before,
        "after": after,
        "config": asdict(cfg),
        "train": {},
    }
