"""Keeping a library in sync: ``imagefind roots`` (the folders it follows) and
``imagefind watch`` (follow them as files come and go)."""

import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.progress import Progress

from imagefind.cli.app import (
    JsonOpt,
    LibraryOpt,
    ModelOpt,
    RawPairs,
    RawPairsOpt,
    StoreOpt,
    app,
    emit_json,
    stderr,
    stdout,
)
from imagefind.cli.output import progress_bar
from imagefind.library import Library
from imagefind.schemas import RootOut, WatchEvent, as_json

roots_app = typer.Typer(
    help="The folders the library follows: 'imagefind index' alone re-scans them.",
    invoke_without_command=True,
)
app.add_typer(roots_app, name="roots")


@roots_app.callback()
def roots_cmd(
    ctx: typer.Context,
    library: LibraryOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the roots with their image counts and last scan."""
    if ctx.invoked_subcommand is not None:
        return
    with Library.open(library, store=store) as lib:
        roots = lib.roots.all()
    if as_json:
        emit_json(roots)
        return
    if not roots:
        stderr.print("No roots yet: 'imagefind index FOLDER' indexes a folder and remembers it.")
    for root in roots:  # plain print: rich would expand the tabs that scripts split on
        print(_root_line(root))


def _root_line(root: RootOut) -> str:
    scanned = root.scanned_at or "never"
    missing = "" if root.exists else "  (missing: images kept)"
    return f"{root.path}\t{root.images} images\tscanned {scanned}{missing}"


@roots_app.command("remove")
def roots_remove_cmd(
    folder: Annotated[Path, typer.Argument(help="A root, as 'imagefind roots' lists it.")],
    library: LibraryOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Forget a root and remove its images from the library (the files are not touched)."""
    with Library.open(library, store=store) as lib:
        removed = lib.roots.remove(folder)
    if as_json:
        emit_json({"root": str(folder), "removed": len(removed)})
        return
    stdout.print(f"Forgot {folder}: {len(removed)} image(s) removed from the library.")


@app.command("watch")
def watch_cmd(
    folders: Annotated[
        list[Path] | None,
        typer.Argument(help="Folders to follow [default: the library's roots]."),
    ] = None,
    poll: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            show_default=False,
            help="Poll every SECONDS instead of listening for events (network shares).",
        ),
    ] = None,
    settle: Annotated[
        float,
        typer.Option(min=0.0, help="Seconds a file must stop changing before it is read."),
    ] = 0.5,
    raw_pairs: RawPairsOpt = RawPairs.jpeg,
    library: LibraryOpt = None,
    store: StoreOpt = None,
    model: ModelOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each event as one JSON object per line.")
    ] = False,
) -> None:
    """Catch up with the folders, then follow them: new and changed images are indexed once
    written, moves re-linked, deletions pruned. Stops on Ctrl-C or SIGTERM."""
    from imagefind.watch import Watcher

    with Library.open(library, model=model, store=store) as lib, progress_bar() as bar:
        task = bar.add_task("Catching up", total=None, rate="")
        watcher = Watcher(
            lib,
            folders or (),
            poll=poll,
            settle=settle,
            raw_pairs=raw_pairs.value,
            on_event=lambda event: _on_event(event, as_json, bar),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
        _ = lib.model.visual.session  # loaded before "watching": the first file is not slower

        def stop(signum: int, frame: object) -> None:
            watcher.stop_event.set()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        watcher.run()


def _on_event(event: WatchEvent, as_json: bool, bar: "Progress") -> None:
    if event.event == "scanned":
        bar.stop()  # caught up: the bar gives way to one line per change
    if as_json:
        _print_json(event)
    else:
        _print_event(event)


def _print_json(event: WatchEvent) -> None:
    sys.stdout.write(json.dumps(as_json(event), ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _print_event(e: WatchEvent) -> None:
    if e.event in ("scanned", "batch") and e.summary is not None:
        s = e.summary
        if e.event == "batch" and not s.encoded:
            return  # its changes were printed one by one
        label = "caught up" if e.event == "scanned" else "batch"
        text = (
            f"{label}: added {s.added}, updated {s.updated}, renamed {s.renamed}, removed "
            f"{s.removed}, unchanged {s.unchanged}, skipped {len(s.skipped)}; encoded "
            f"{s.encoded} in {s.seconds:.1f} s"
        )
    elif e.event == "renamed":
        text = f"renamed {e.source} -> {e.path}"
    elif e.event in ("skipped", "error"):
        text = f"{e.event} {e.path or ''}: {e.reason}".replace(" :", ":")
    elif e.event == "watching":
        text = f"watching ({e.reason}); Ctrl-C stops"
    else:
        text = f"{e.event} {e.path or ''}".rstrip()
    stderr.print(f"{e.time} {text}", markup=False, highlight=False)
