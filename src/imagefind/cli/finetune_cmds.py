"""``imagefind finetune``: train a CLIP checkpoint on your own pairs, export it for --model.

torch is imported only when the command runs: it is the optional ``export`` extra, and the
rest of the CLI must work without it.
"""

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.progress import Progress

from imagefind.cli.app import JsonOpt, app, emit_json, stderr, stdout
from imagefind.finetune import DEFAULT_BASE, DEFAULT_TEMPLATE, FORMS


def _bar() -> "Progress":
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]Fine-tuning"),
        BarColumn(),
        TextColumn("step {task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=stderr.rich,
        disable=not stderr.is_terminal,
        transient=True,
    )


def _print_bad(bad: list[Any]) -> None:
    """Skipped rows, grouped by reason with a few examples: a thousand missing files must
    not bury the result."""
    reasons = Counter(r.reason.split(":")[0] for r in bad)
    for reason, count in reasons.most_common():
        rows = [r for r in bad if r.reason.split(":")[0] == reason]
        shown = "; ".join(f"{r.where} ({r.reason})" for r in rows[:3])
        more = f" (+{count - 3} more)" if count > 3 else ""
        stderr.print(f"  skipped {count}: {shown}{more}", markup=False)


def _recall_line(name: str, recall: dict[str, Any]) -> str:
    if not recall:
        return f"{name:<8} (no held-out pairs)"
    cells = [
        f"{recall[d][f'R@{k}']:.3f}" for d in ("image_to_text", "text_to_image") for k in (1, 5, 10)
    ]
    return f"{name:<8} " + "  ".join(f"{c:>6}" for c in cells)


@app.command("finetune")
def finetune_cmd(
    data: Annotated[
        Path,
        typer.Argument(
            help="Images with .txt captions beside them, class subfolders, "
            "or a CSV/JSONL file of path,caption."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (use it as --model).")],
    base: Annotated[
        str, typer.Option("--base", help="transformers CLIP checkpoint: hub id or folder.")
    ] = DEFAULT_BASE,
    form: Annotated[str, typer.Option("--format", help=f"DATA form: {', '.join(FORMS)}.")] = "auto",
    template: Annotated[
        str, typer.Option(help="Caption for class subfolders; {class} is the folder name.")
    ] = DEFAULT_TEMPLATE,
    epochs: Annotated[int, typer.Option(min=1)] = 5,
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many optimiser steps.")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=2)] = 32,
    accumulate: Annotated[
        int, typer.Option(min=1, help="Micro-batches per optimiser step (see docs).")
    ] = 1,
    lr: Annotated[float, typer.Option(min=0.0, help="Peak learning rate (AdamW).")] = 1e-5,
    weight_decay: Annotated[float, typer.Option(min=0.0)] = 0.1,
    warmup: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of steps spent warming up.")
    ] = 0.1,
    train: Annotated[
        str, typer.Option(help="What trains: all, projections, or last-N (blocks per tower).")
    ] = "all",
    temperature: Annotated[float, typer.Option(min=0.01, max=1.0)] = 0.07,
    holdout: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="Share of pairs held out for recall.")
    ] = 0.2,
    seed: Annotated[int, typer.Option()] = 0,
    augment: Annotated[bool, typer.Option(help="Light random crops.")] = False,
    amp: Annotated[bool, typer.Option(help="Mixed precision (CUDA only).")] = True,
    save_every: Annotated[
        int, typer.Option(min=0, help="Steps between checkpoints [default: each epoch].")
    ] = 0,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run.")] = False,
    keep_state: Annotated[
        bool, typer.Option(help="Keep the resumable state (optimiser too) at the end.")
    ] = False,
    threads: Annotated[
        int | None, typer.Option(min=1, help="CPU threads for torch [default: torch's].")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune CLIP on image-caption pairs; writes a model for --model and its recall."""
    from imagefind.finetune import require_torch

    require_torch()
    from imagefind.finetune.data import load_pairs
    from imagefind.finetune.train import FinetuneConfig, finetune

    pairs = load_pairs(data, form=form, template=template)
    if pairs.bad:
        stderr.print(f"{data}: {len(pairs.pairs)} pairs, {len(pairs.bad)} rows skipped")
        _print_bad(pairs.bad)
    config = FinetuneConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        warmup=warmup,
        train=train,
        accumulate=accumulate,
        holdout=holdout,
        seed=seed,
        temperature=temperature,
        amp=amp,
        augment=augment,
        max_steps=max_steps,
        save_every=save_every,
        keep_state=keep_state,
        threads=threads,
    )
    with _bar() as bar:
        task = bar.add_task("finetune", total=None, loss="-", rate="")

        def report(p: Any) -> None:
            bar.update(
                task,
                completed=p.step,
                total=p.total,
                loss=f"{p.loss:.3f}",
                rate=f"{p.pairs_per_s:.1f} pairs/s",
            )

        def log(message: str) -> None:
            if not as_json:
                bar.console.print(message, markup=False, style="dim")

        result = finetune(pairs, base, out, config, resume=resume, progress=report, log=log)
    metrics = result.metrics
    if as_json:
        emit_json(metrics)
        return
    stdout.print(f"{'recall':<8} {'i→t@1':>6}  {'i→t@5':>6}  {'i→t@10':>6}  "
                 f"{'t→i@1':>6}  {'t→i@5':>6}  {'t→i@10':>6}")  # fmt: skip
    stdout.print(_recall_line("before", metrics["before"]))
    stdout.print(_recall_line("after", metrics["after"]))
    t = metrics["train"]
    stdout.print(
        f"Trained {t['steps']} steps in {t['seconds']:.1f} s ({t['pairs_per_s']:.1f} pairs/s), "
        f"loss {t['first_loss']:.3f} → {t['final_loss']:.3f}"
    )
    stdout.print(f"Model: {result.out} (use --model {result.out})")
    stdout.print(f"Checkpoint: {result.checkpoint} (fine-tune again with --base {result.out})")
