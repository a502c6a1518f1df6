"""``imagefind store``: moving a library between the embedded store and PostgreSQL."""

from typing import Annotated

import typer

from imagefind.cli.app import JsonOpt, app, emit_json, stdout

store_app = typer.Typer(
    help="Move a library between stores (embedded SQLite, PostgreSQL).", no_args_is_help=True
)
app.add_typer(store_app, name="store")


@store_app.command("copy")
def copy_cmd(
    src: Annotated[str, typer.Argument(help="A library folder or a postgresql:// URL.")],
    dst: Annotated[str, typer.Argument(help="An empty store: a folder or a postgresql:// URL.")],
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, max=100_000)] = 1000,
    as_json: JsonOpt = False,
) -> None:
    """Copy rows and vectors (no re-encoding, ids kept), then check the counts. Thumbnails
    and uploads stay in the library folder; stop writers to SRC first."""
    from imagefind.stores.copy import copy_store, opened

    with opened(src, must_exist=True) as source, opened(dst, must_exist=False) as target:
        report = copy_store(source, target, batch_size=batch_size)
    if as_json:
        emit_json({"images": report.images, "model": report.model, "seconds": report.seconds})
        return
    stdout.print(
        f"Copied {report.images} image(s) ({report.model}) in {report.seconds:.1f} s; counts match."
    )
