"""Model commands: list, download, export, quantize; and ``embed``."""

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from imagefind.cli.app import LangOpt, ModelOpt, app, emit_json, stdout
from imagefind.models import load_model
from imagefind.models.catalogue import catalogue, sources
from imagefind.models.hub import (
    DEFAULT_MODEL,
    KNOWN_MODELS,
    cache_dir,
    cached_models,
    ensure_local,
    resolve,
)

models_app = typer.Typer(help="List, download, export and quantize models.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def list_cmd(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    available: Annotated[
        bool,
        typer.Option(
            "--available",
            help="The whole immich-app zoo: size, languages, recall, and which are cached.",
        ),
    ] = False,
) -> None:
    """Known models and those in the cache; with --available, the immich-app zoo catalogue."""
    if available:
        _list_available(as_json)
        return
    cached = {ref.name: ref for ref in cached_models()}
    rows = [
        {
            "name": name,
            "description": desc,
            "default": name == DEFAULT_MODEL,
            "cached": name in cached,
            "path": str(cached[name].path) if name in cached else None,
        }
        for name, desc in KNOWN_MODELS.items()
    ]
    rows += [
        {"name": n, "description": "", "default": False, "cached": True, "path": str(r.path)}
        for n, r in cached.items()
        if n not in KNOWN_MODELS
    ]
    if as_json:
        emit_json({"cache": str(cache_dir()), "models": rows})
        return
    stdout.print(f"Cache: {cache_dir()}")
    for row in rows:
        mark = "*" if row["default"] else " "
        state = "cached" if row["cached"] else "      "
        stdout.print(f"{mark} {row['name']:<32} {state}  {row['description']}")


def _list_available(as_json: bool) -> None:
    """The catalogue: a JSON list of objects, or a table with the sources under it."""
    entries = catalogue()
    if as_json:
        emit_json([entry.to_json() for entry in entries])
        return
    from rich import box
    from rich.table import Table

    table = Table(
        title=f"immich-app model zoo (cache: {cache_dir()})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    # Short headers, no box, long names folded: every figure stays readable in 80 columns.
    table.add_column("Model", overflow="fold", min_width=24)
    table.add_column("Family", no_wrap=True)
    for column in ("Dim", "Multi", "Px", "MB", "Recall", "Cached"):
        table.add_column(column, justify="right", no_wrap=True)
    for e in entries:
        table.add_row(
            e.name + (" (default)" if e.name == DEFAULT_MODEL else ""),
            e.family,
            _or_dash(e.dim),
            "yes" if e.multilingual else "no",
            _or_dash(e.image_size),
            _or_dash(e.download_mb),
            _or_dash(e.recall),
            "yes" if e.cached else "",
        )
    stdout.print(table)
    stdout.print(
        "Multi: multilingual. Px: image size. MB: fp32 download. "
        f"Recall (%, English): {sources()['recall']}. '-': not published.",
        markup=False,
    )


def _or_dash(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


@models_app.command("download")
def download_cmd(
    name: Annotated[str, typer.Argument(help="Short name or hub repo id.")] = DEFAULT_MODEL,
    force: Annotated[bool, typer.Option(help="Download again even if cached.")] = False,
) -> None:
    """Fetch a model into the cache (only the ONNX files and configs)."""
    path = ensure_local(resolve(name), force=force)
    stdout.print(f"{name}: {path}")


@models_app.command("export")
def export_cmd(
    source: Annotated[
        str, typer.Argument(help="transformers CLIP or SigLIP checkpoint: hub id or folder.")
    ],
    out: Annotated[Path, typer.Argument(help="Folder to write the model to.")],
    int8: Annotated[
        bool, typer.Option("--int8", help="Also write an int8 copy to OUT-int8.")
    ] = False,
    fixed_batch: Annotated[bool, typer.Option(help="Batch of 1, like the hub exports.")] = False,
) -> None:
    """Export a transformers CLIP or SigLIP checkpoint to imagefind's model format (needs
    torch)."""
    from imagefind.models.export import export_clip

    path = export_clip(source, out, fixed_batch=fixed_batch)
    stdout.print(f"Exported {source} to {path}")
    if int8:
        from imagefind.models.quantize import quantize_model

        q = quantize_model(path, path.with_name(path.name + "-int8"))
        stdout.print(f"int8 copy: {q}")


@models_app.command("quantize")
def quantize_cmd(
    src: Annotated[str, typer.Argument(help="Model folder or name.")],
    out: Annotated[Path, typer.Argument(help="Folder for the int8 copy.")],
) -> None:
    """Write an int8 copy (dynamic quantisation, onnxruntime only)."""
    from imagefind.models.quantize import quantize_model

    path = quantize_model(ensure_local(resolve(src)), out)
    stdout.print(f"int8 copy: {path}")


@app.command("embed")
def embed_cmd(
    images: Annotated[list[Path] | None, typer.Argument(help="Image files.")] = None,
    text: Annotated[
        list[str] | None, typer.Option("--text", "-t", help="A text (repeatable).")
    ] = None,
    model: ModelOpt = None,
    lang: LangOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Print embeddings of texts and images (one JSON object per input with --json)."""
    texts, files = list(text or []), list(images or [])
    if not texts and not files:
        raise typer.BadParameter("give at least one --text or image")
    clip = load_model(model)
    rows = []
    if texts:
        vectors = clip.encode_texts(texts, lang=lang)
        rows += [(t, "text", v) for t, v in zip(texts, vectors, strict=True)]
    if files:
        rows += [
            (str(f), "image", v) for f, v in zip(files, clip.encode_images(files), strict=True)
        ]
    for name, kind, vector in rows:
        if as_json:
            sys.stdout.write(
                json.dumps(
                    {"input": name, "kind": kind, "embedding": [round(float(x), 7) for x in vector]}
                )
                + "\n"
            )
        else:
            head = " ".join(f"{x:+.4f}" for x in vector[:6])
            stdout.print(f"{kind}\t{name}\t[{head} …] ({len(vector)}-d)")
