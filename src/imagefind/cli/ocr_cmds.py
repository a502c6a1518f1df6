"""Text in images on the command line: ``imagefind ocr`` (read the text of images indexed
before), and the options that ``index`` (``--ocr/--no-ocr``) and ``search`` (``--mode``)
take from here."""

from typing import Annotated

import typer

from imagefind.cli.app import JsonOpt, LibraryOpt, StoreOpt, app, emit_json, stderr, stdout
from imagefind.cli.output import ocr_line, progress_bar
from imagefind.library import Library

OcrOpt = Annotated[
    bool | None,
    typer.Option(
        "--ocr/--no-ocr",
        show_default=False,
        help="Read text in images (OCR) from now on, for this library (remembered; uploads "
        "too); --no-ocr turns it off [default: as the library was].",
    ),
]
ModeOpt = Annotated[
    str | None,
    typer.Option(
        "--mode",
        show_default=False,
        help="hybrid (CLIP and text read in the images, fused), clip, or text [default: "
        'hybrid when the library has OCR text, else clip]. "Quoted words" match as a phrase.',
    ),
]


@app.command("ocr")
def ocr_cmd(
    library: LibraryOpt = None,
    store: StoreOpt = None,
    retry: Annotated[
        bool, typer.Option("--retry-errors", help="Also read again the images OCR failed on.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Read the text in images indexed before OCR was on, and turn OCR on for the library."""
    with Library.open(library, store=store) as lib, progress_bar() as bar:
        task = bar.add_task("Reading text", total=None, rate="")

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        summary = lib.read_text(errors=retry, progress=report)
    if as_json:
        emit_json(summary)
    elif summary.read == 0:
        stderr.print("Every image has been read already.")
    else:
        stdout.print(ocr_line(summary))
