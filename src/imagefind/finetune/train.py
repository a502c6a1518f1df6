"""The fine-tuning run: split, evaluate, train, checkpoint, evaluate again, export.

Output folder (``--out DIR``)::

    DIR/config.json, visual/, textual/   the model directory format: use it as --model DIR
    DIR/checkpoint/                      transformers checkpoint: --base DIR fine-tunes again
    DIR/metrics.json                     held-out recall before and after, run settings
    DIR/train-state/state.pt             while training: what --resume continues from

Gradient accumulation sums the gradients of per-micro-batch losses (each divided by the
number of micro-batches). With a contrastive loss that is *not* the same as one large batch:
each micro-batch's images only see its own texts as negatives, so accumulation gives the
stable step of a large batch without its harder negatives. It is what we do; it is cheap and
it is honest about memory.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imagefind.finetune import FinetuneError
from imagefind.finetune.data import BadRow, PairSet, PixelBatches, split
from imagefind.finetune.evaluate import evaluate
from imagefind.finetune.loss import clamp_logit_scale_, clip_loss, init_logit_scale, temperature
from imagefind.finetune.model import (
    image_features,
    load_base,
    parse_train,
    save_checkpoint,
    select_trainable,
    text_features,
    tokenize,
)
from imagefind.finetune.state import (
    METRICS_FILE,
    STATE_DIR,
    STATE_FILE,
    check_resume,
    export,
    fingerprint,
    metrics_document,
    save_state,
)
from imagefind.models.preprocess import Preprocessor


@dataclass
class FinetuneConfig:
    """How to train; the CLI options map one to one."""

    epochs: int = 5
    batch_size: int = 32
    lr: float = 1e-5
    weight_decay: float = 0.1
    warmup: float = 0.1  # fraction of the optimiser steps spent warming up
    train: str = "all"
    accumulate: int = 1
    holdout: float = 0.2
    seed: int = 0
    temperature: float = 0.07
    amp: bool = True  # only takes effect on CUDA
    augment: bool = False
    max_steps: int | None = None
    max_grad_norm: float = 1.0
    save_every: int = 0  # optimiser steps between checkpoints; 0: at the end of each epoch
    keep_state: bool = False
    eval_batch_size: int = 64
    workers: int | None = None
    threads: int | None = None  # torch CPU threads; None leaves torch's default


@dataclass
class Progress:
    """What the trainer reports after every optimiser step."""

    step: int
    total: int
    epoch: int
    loss: float
    pairs_per_s: float
    lr: float


@dataclass
class FinetuneResult:
    out: Path
    checkpoint: Path
    metrics: dict[str, Any]
    bad: list[BadRow] = field(default_factory=list)


def _param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices only: gains, biases and the temperature are left alone
    (as CLIP and open_clip do), or decay would pull the temperature back towards 1."""
    decay: list[torch.nn.Parameter] = []
    keep: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        plain = p.ndim < 2 or "norm" in name or "bias" in name or "logit_scale" in name
        (keep if plain else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": keep, "weight_decay": 0.0},
    ]


def _adamw(groups: list[dict[str, Any]], lr: float) -> torch.optim.Optimizer:
    """AdamW with CLIP's betas and eps; the fused kernel where torch has one: the unfused
    update walks the 49408-row token table a dozen times a step, ten times slower on CPU."""
    try:
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98), eps=1e-6, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98), eps=1e-6)


def _schedule(total: int, warmup: float) -> Callable[[int], float]:
    """Linear warm-up to the full rate, then cosine decay to zero at the last step."""
    warm = min(total - 1, max(1, round(total * warmup))) if warmup > 0 and total > 1 else 0

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        span = max(1, total - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warm) / span)))

    return factor


def _micro_batches(train_idx: list[int], batch: int, seed: int, epoch: int) -> list[list[int]]:
    """This epoch's micro-batches: a shuffle fixed by (seed, epoch), the ragged tail dropped
    (a contrastive batch of 3 is mostly noise)."""
    order = np.random.default_rng((seed, epoch)).permutation(train_idx).tolist()
    return [order[i : i + batch] for i in range(0, len(order) - batch + 1, batch)]


def _autocast(device: torch.device, dtype: torch.dtype | None) -> Any:
    """Mixed precision on CUDA (bf16 where supported, else fp16 with a grad scaler);
    plain fp32 elsewhere: CPU autocast is slower than fp32 for these models."""
    return torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()


def finetune(
    data: PairSet,
    base: str | Path,
    out: Path,
    config: FinetuneConfig | None = None,
    *,
    resume: bool = False,
    progress: Callable[[Progress], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> FinetuneResult:
    """Fine-tune ``base`` on ``data``; write the model, checkpoint and metrics to ``out``."""
    cfg = config or FinetuneConfig()
    say = log or (lambda _msg: None)
    if cfg.batch_size < 2 or cfg.accumulate < 1 or cfg.epochs < 1:
        raise FinetuneError("--batch-size must be ≥ 2, --accumulate and --epochs ≥ 1")
    out = Path(out).expanduser()
    state_path = out / STATE_DIR / STATE_FILE
    state: dict[str, Any] | None = None
    if resume:
        if not state_path.is_file():
            raise FinetuneError(f"{out}: nothing to resume ({STATE_DIR}/{STATE_FILE} is missing)")
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        check_resume(state, cfg, data)
    elif state_path.is_file():
        raise FinetuneError(
            f"{out}: an unfinished run is there: add --resume, or pick another --out"
        )

    parse_train(cfg.train)  # a typo must fail now, not after loading a large model
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    say(f"loading {base}")
    b = load_base(base)
    model = b.model
    train_idx, eval_idx = split(len(data.pairs), cfg.holdout, cfg.seed)
    batch = min(cfg.batch_size, len(train_idx))
    if batch < 2:
        raise FinetuneError(f"{len(data.pairs)} usable pairs: at least 2 must be left to train on")
    micro_per_epoch = len(train_idx) // batch
    steps_per_epoch = max(1, micro_per_epoch // cfg.accumulate)
    total = cfg.max_steps or cfg.epochs * steps_per_epoch
    epochs = math.ceil(total / steps_per_epoch)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    amp_dtype = None
    if cfg.amp and device.type == "cuda":
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    if state is None:
        with torch.no_grad():
            model.logit_scale.fill_(init_logit_scale(cfg.temperature))
    else:
        model.load_state_dict(state["model"])
    trainable = select_trainable(model, cfg.train)
    model.to(device)

    tokens = tokenize(b, data.captions)
    batches = PixelBatches(
        data.pairs,
        Preprocessor(b.preprocess),
        augment=cfg.augment,
        seed=cfg.seed,
        workers=cfg.workers,
    )
    eval_batches = PixelBatches(data.pairs, Preprocessor(b.preprocess), workers=cfg.workers)

    def held_out() -> dict[str, Any]:
        return evaluate(
            model,
            eval_batches,
            eval_idx,
            data.captions,
            lambda t: tokenize(b, t),
            batch_size=cfg.eval_batch_size,
            device=device,
        )

    optimizer = _adamw(_param_groups(model, cfg.weight_decay), cfg.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(total, cfg.warmup))
    if state is None:
        say(f"evaluating on {len(eval_idx)} held-out pairs")
        before = held_out() if eval_idx else {}
        step, history, train_seconds, pairs_seen = 0, [], 0.0, 0
    else:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        before, step, history = state["before"], state["step"], state["history"]
        train_seconds, pairs_seen = state["train_seconds"], state["pairs_seen"]
        say(f"resuming at step {step} of {total}")

    def snapshot() -> None:
        save_state(
            state_path,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "step": step,
                "before": before,
                "history": history,
                "train_seconds": train_seconds,
                "pairs_seen": pairs_seen,
                "config": asdict(cfg),
                "data": fingerprint(data),
            },
        )

    model.train()
    optimizer.zero_grad(set_to_none=True)
    while step < total:
        epoch = step // steps_per_epoch
        micro = _micro_batches(train_idx, batch, cfg.seed, epoch)
        micro = micro[: steps_per_epoch * cfg.accumulate][
            (step % steps_per_epoch) * cfg.accumulate :
        ]
        started, losses, done_pairs = time.perf_counter(), [], 0
        for n, (idx, pixels) in enumerate(batches.iterate(micro, epoch)):
            ids = tokens[list(idx)].to(device)
            px = torch.from_numpy(pixels).to(device)
            with _autocast(device, amp_dtype):
                loss = clip_loss(
                    image_features(model, px), text_features(model, ids), model.logit_scale
                )
            # torch leaves Tensor.backward unannotated
            scaler.scale(loss / cfg.accumulate).backward()  # type: ignore[no-untyped-call]
            losses.append(float(loss.detach()))
            done_pairs += len(idx)
            if (n + 1) % cfg.accumulate:
                continue
            scaler.unscale_(optimizer)
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(
                    [p for p in model.parameters() if p.requires_grad], cfg.max_grad_norm
                )
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            clamp_logit_scale_(model.logit_scale)
            step += 1
            elapsed = time.perf_counter() - started
            step_loss = float(np.mean(losses[-cfg.accumulate :]))
            history.append(step_loss)
            if progress:
                progress(
                    Progress(
                        step,
                        total,
                        epoch + 1,
                        step_loss,
                        (pairs_seen + done_pairs) / max(1e-9, train_seconds + elapsed),
                        float(scheduler.get_last_lr()[0]),
                    )
                )
            if step >= total:
                break
            if cfg.save_every and step % cfg.save_every == 0:
                train_seconds += time.perf_counter() - started
                pairs_seen += done_pairs
                started, done_pairs = time.perf_counter(), 0
                snapshot()
        train_seconds += time.perf_counter() - started
        pairs_seen += done_pairs
        if step < total:
            snapshot()

    say("evaluating the fine-tuned model")
    after = held_out() if eval_idx else {}
    model.eval()
    say(f"saving the checkpoint and exporting the model to {out}")
    checkpoint = save_checkpoint(b, model.to("cpu"), out / "checkpoint")
    export(checkpoint, out)
    metrics = metrics_document(b, data, cfg, len(train_idx), len(eval_idx), before, after)
    metrics["train"].update(
        {
            "steps": step,
            "epochs": epochs,
            "batch_size": batch,
            "effective_batch_size": batch * cfg.accumulate,
            "seconds": round(train_seconds, 2),
            "pairs_per_s": round(pairs_seen / max(1e-9, train_seconds), 2),
            "first_loss": history[0] if history else None,
            "final_loss": history[-1] if history else None,
            "temperature": round(temperature(model.logit_scale), 5),
            "trainable": len(trainable),
            "device": device.type,
            "amp": str(amp_dtype).removeprefix("torch.") if amp_dtype else None,
        }
    )
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    if not cfg.keep_state:
        shutil.rmtree(out / STATE_DIR, ignore_errors=True)
    return FinetuneResult(out=out, checkpoint=checkpoint, metrics=metrics, bad=list(data.bad))
