"""Library commands: index, search, similar, remove, duplicates, stats, reindex, serve."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from imagefind.cli import filter_options as fo
from imagefind.cli.app import (
    JsonOpt,
    LangOpt,
    LibraryOpt,
    ModelOpt,
    RawPairs,
    RawPairsOpt,
    StoreOpt,
    app,
    emit_json,
    exit_fast,
    stdout,
)
from imagefind.cli.ocr_cmds import ModeOpt, OcrOpt
from imagefind.cli.output import print_hits, print_summary, progress_bar
from imagefind.library import Library
from imagefind.query import parse_image
from imagefind.schemas import Duplicates, Removed
from imagefind.search import MAX_K

if TYPE_CHECKING:
    from rich.progress import TaskID

KOpt = Annotated[int, typer.Option("-k", "--top", min=1, max=MAX_K, help="How many results.")]
ThresholdOpt = Annotated[
    float | None,
    typer.Option(
        "--threshold",
        "-t",
        min=-1.0,
        max=1.0,
        help="Hide results scoring below this (text ~0.2-0.3, image ~0.7-0.9).",
    ),
]


@app.command("index")
def index_cmd(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Folders (remembered) or files [default: every remembered folder]."),
    ] = None,
    library: LibraryOpt = None,
    store: StoreOpt = None,
    model: ModelOpt = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            "-b",
            min=1,
            max=256,
            help="Images per encoder call [default: tuned while indexing, from 16].",
        ),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision",
            "-p",
            help="fp32, or int8: a quantised copy made once and cached. How much faster int8 "
            "is depends on the CPU (measured 1.8x with AVX2, 2.7x with AVX-512 VNNI); "
            "measure yours with 'python -m benchmarks.encoders'.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-w",
            min=1,
            max=64,
            help="Decoding threads [default: one per core, more when reading files is slow].",
        ),
    ] = None,
    ray: Annotated[
        bool, typer.Option("--ray", help="Run the pipeline on Ray Data (see --ray-address).")
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            envvar="RAY_ADDRESS",
            show_default=False,
            help="Cluster to join with --ray: auto, or ray://head:10001 [default: a local Ray].",
        ),
    ] = None,
    ocr: OcrOpt = None,
    raw_pairs: RawPairsOpt = RawPairs.jpeg,
    as_json: JsonOpt = False,
) -> None:
    """Index folders: new and changed files are encoded, moved ones re-linked, gone ones pruned."""
    if ray:
        from imagefind.distributed import RayLibrary

        opened: Library = RayLibrary.open(
            library, model=model, precision=precision, store=store, ray_address=ray_address
        )
    else:
        opened = Library.open(library, model=model, precision=precision, store=store)
    with (
        opened as lib,
        progress_bar() as bar,
    ):
        task = bar.add_task("Indexing", total=None, rate="")

        reading: list[TaskID] = []  # the text read after encoding, once it starts

        def report(done: int, total: int) -> None:
            elapsed = bar.tasks[task].elapsed or 0.0
            rate = f"{done / elapsed:.1f} files/s" if elapsed > 0 and done else ""
            bar.update(task, completed=done, total=total, rate=rate)

        def report_text(done: int, total: int) -> None:
            if not reading:
                reading.append(bar.add_task("Reading text", total=total, rate=""))
            elapsed = bar.tasks[reading[0]].elapsed or 0.0
            rate = f"{done / elapsed:.1f} images/s" if elapsed > 0 and done else ""
            bar.update(reading[0], completed=done, total=total, rate=rate)

        summary = lib.index(
            paths or (),
            batch_size=batch_size,
            workers=workers,
            progress=report,
            ocr=ocr,
            raw_pairs=raw_pairs.value,
            text_progress=report_text,
        )
    if as_json:
        emit_json(summary)
    else:
        print_summary(summary)


@app.command("search")
def search_cmd(
    query: Annotated[
        str,
        typer.Argument(
            help='Text, or arithmetic: "beach + sunset - people", '
            '"2:cat", an image path or an id (#42) as a part.'
        ),
    ],
    k: KOpt = 10,
    threshold: ThresholdOpt = None,
    library: LibraryOpt = None,
    store: StoreOpt = None,
    model: ModelOpt = None,
    lang: LangOpt = None,
    after: fo.AfterOpt = None,
    before: fo.BeforeOpt = None,
    folders: fo.InOpt = None,
    camera: fo.CameraOpt = None,
    place: fo.PlaceOpt = None,
    fmt: fo.FormatOpt = None,
    orientation: fo.OrientationOpt = None,
    sort: fo.SortOpt = "score",
    mode: ModeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find images matching a text query; prints score<TAB>path, best first (and<TAB>the
    matching text read in the image, when there is some)."""
    filters = fo.read_filters(after, before, folders, camera, place, fmt, orientation)
    order = fo.read_sort(sort)
    with Library.open(library, model=model, store=store, quick_start=True) as lib:
        chosen = lib.search_mode(mode)  # once, as the API does: the default asks the store
        hits = lib.search(
            query, k=k, threshold=threshold, lang=lang, filters=filters, sort=order, mode=chosen
        )
        print_hits(hits, as_json, query, "text", chosen)
    exit_fast()


@app.command("similar")
def similar_cmd(
    image: Annotated[
        str,
        typer.Argument(
            help="An image file, or an indexed image's id written #42 (quote it: '#42'); "
            "a bare number is a path."
        ),
    ],
    k: KOpt = 10,
    threshold: ThresholdOpt = None,
    library: LibraryOpt = None,
    store: StoreOpt = None,
    model: ModelOpt = None,
    after: fo.AfterOpt = None,
    before: fo.BeforeOpt = None,
    folders: fo.InOpt = None,
    camera: fo.CameraOpt = None,
    place: fo.PlaceOpt = None,
    fmt: fo.FormatOpt = None,
    orientation: fo.OrientationOpt = None,
    sort: fo.SortOpt = "score",
    as_json: JsonOpt = False,
) -> None:
    """Find images like a given one (the image itself is left out, exact copies are not)."""
    target = parse_image(image)
    filters = fo.read_filters(after, before, folders, camera, place, fmt, orientation)
    order = fo.read_sort(sort)
    with Library.open(library, model=model, store=store, quick_start=True) as lib:
        hits = lib.similar(target, k=k, threshold=threshold, filters=filters, sort=order)
        print_hits(hits, as_json, image, "image")
    exit_fast()


@app.command("remove")
def remove_cmd(
    targets: Annotated[
        list[str],
        typer.Argument(
            help="Files, folders, or image ids written #42 (quote them: '#42'); a bare "
            "number is a path."
        ),
    ],
    library: LibraryOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove images from the library (the files on disk are not touched)."""
    parsed = [parse_image(t) for t in targets]
    with Library.open(library, store=store) as lib:
        removed = lib.remove(parsed)
    if as_json:
        emit_json(Removed(removed=removed))
    else:
        stdout.print(f"Removed {len(removed)} image(s).")


@app.command("duplicates")
def duplicates_cmd(
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            "-t",
            min=0.0,
            max=1.0,
            help="Cosine for near duplicates [default: 0.95].",
        ),
    ] = None,
    library: LibraryOpt = None,
    store: StoreOpt = None,
    model: ModelOpt = None,
    folders: fo.InOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Groups of exact and near-duplicate images (with --in: among those in the folders)."""
    filters = fo.read_filters(folders=folders)
    with Library.open(library, model=model, store=store) as lib:
        groups = lib.duplicates(threshold, filters=filters or None)
    if as_json:
        emit_json(Duplicates(threshold=threshold, groups=groups))
        return
    if not groups:
        stdout.print("No duplicates.")
    for n, group in enumerate(groups, 1):
        stdout.print(f"Group {n} ({group.kind}, score ≥ {group.score:.3f}):")
        for img in group.images:
            print(f"  {img.id}\t{img.source}")


@app.command("stats")
def stats_cmd(library: LibraryOpt = None, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """How many images, which model, how much disk."""
    with Library.open(library, store=store) as lib:
        stats = lib.stats()
    if as_json:
        emit_json(stats)
        return
    stdout.print(f"Library:  {stats.library}")
    stdout.print(f"Images:   {stats.count}")
    stdout.print(
        f"Model:    {stats.model or '(none yet)'}" + (f" ({stats.dim}-d)" if stats.dim else "")
    )
    stdout.print(f"On disk:  {stats.size_bytes / 1e6:.1f} MB")


@app.command("reindex")
def reindex_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="The new model.")],
    library: LibraryOpt = None,
    store: StoreOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, max=256)] = 16,
    as_json: JsonOpt = False,
) -> None:
    """Re-embed every image with another model: all or nothing (interrupted, the library
    stays as it was). Images whose original is gone are removed and listed."""
    with Library.open(library, store=store) as lib, progress_bar() as bar:
        task = bar.add_task("Re-embedding", total=lib.count(), rate="")
        summary = lib.reindex(model, batch_size=batch_size, progress=lambda n: bar.advance(task, n))
    if as_json:
        emit_json(summary)
        return
    stdout.print(
        f"Re-embedded {summary.reembedded} image(s) with {summary.model} "
        f"in {summary.seconds:.1f} s."
    )
    if summary.removed:
        stdout.print(f"Removed {len(summary.removed)} image(s) whose original is gone:")
        for dropped in summary.removed:
            print(f"  #{dropped.id}\t{dropped.source}\t{dropped.reason}")


@app.command("serve")
def serve_cmd(
    host: Annotated[
        str,
        typer.Option(help="Address to bind; off loopback every request needs a token or login."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
    library: LibraryOpt = None,
    store: StoreOpt = None,
    model: ModelOpt = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="IMAGEFIND_API_TOKEN",
            show_default=False,
            help="Bearer token for API clients; also a key for the login page.",
        ),
    ] = None,
    password_file: Annotated[
        Path | None,
        typer.Option(
            show_default=False, help="A file whose first line is a password for the login page."
        ),
    ] = None,
    public_read: Annotated[
        bool, typer.Option(help="Off loopback, let anyone see and search; writes still need a key.")
    ] = False,
    session_hours: Annotated[float, typer.Option(help="How long a login lasts.", min=0.001)] = 12.0,
    certfile: Annotated[
        Path | None, typer.Option(show_default=False, help="TLS certificate (PEM): serve HTTPS.")
    ] = None,
    keyfile: Annotated[
        Path | None, typer.Option(show_default=False, help="The certificate's private key (PEM).")
    ] = None,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            show_default=False,
            help="Proxies trusted for X-Forwarded-For/-Proto (comma-separated; default 127.0.0.1).",
        ),
    ] = None,
    insecure: Annotated[
        bool, typer.Option(help="Allow a non-loopback bind with no token or password at all.")
    ] = False,
    max_upload_mb: Annotated[float, typer.Option(min=0.1, help="Per-file upload limit.")] = 10.0,
    watch: Annotated[
        bool, typer.Option("--watch", help="Follow the library's roots as 'imagefind watch' does.")
    ] = False,
    poll: Annotated[
        float | None, typer.Option(min=0.1, help="With --watch: poll every N s.")
    ] = None,
) -> None:
    """Run the web app and the JSON API (docs at /api/docs)."""
    from imagefind.web.app import serve

    serve(
        library,
        model,
        host,
        port,
        token=token,
        insecure=insecure,
        max_upload_mb=max_upload_mb,
        store=store,
        password_file=password_file,
        public_read=public_read,
        session_hours=session_hours,
        certfile=certfile,
        keyfile=keyfile,
        forwarded_allow_ips=forwarded_allow_ips,
        watch=() if watch else None,
        poll=poll,
    )
