"""The filter options ``search``, ``similar`` and ``duplicates`` share, written once, and
their reading into one ``Filters`` (bad values: ``Error: --after …`` and exit 1)."""

from typing import Annotated

import typer

from imagefind.filters import DATE_FORMS, ORIENTATIONS, SORTS, Filters, parse_sort

_NAMES = {"folders": "--in"}

AfterOpt = Annotated[
    str | None,
    typer.Option(
        "--after",
        metavar="DATE",
        show_default=False,
        help=f"Taken on or after DATE ({DATE_FORMS}; local time where taken).",
    ),
]
BeforeOpt = Annotated[
    str | None,
    typer.Option(
        "--before",
        metavar="DATE",
        show_default=False,
        help="Taken on or before DATE, to the end of the period it names (--before 2019-08: "
        "until the end of August 2019).",
    ),
]
InOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--in",
        metavar="FOLDER",
        show_default=False,
        help="Only images in FOLDER or below it (repeat for several).",
    ),
]
CameraOpt = Annotated[
    str | None,
    typer.Option(
        "--camera",
        metavar="TEXT",
        show_default=False,
        help="Camera make or model contains TEXT (any case).",
    ),
]
PlaceOpt = Annotated[
    str | None,
    typer.Option(
        "--place",
        metavar="TEXT",
        show_default=False,
        help="City, region or country name (any case, accents optional) or a 2-letter "
        "country code.",
    ),
]
FormatOpt = Annotated[
    str | None,
    typer.Option("--format", metavar="FMT", show_default=False, help="JPEG, PNG, HEIC, …"),
]
OrientationOpt = Annotated[
    str | None,
    typer.Option(
        "--orientation", metavar="SHAPE", show_default=False, help=" | ".join(ORIENTATIONS) + "."
    ),
]
SortOpt = Annotated[
    str,
    typer.Option(
        "--sort",
        metavar="ORDER",
        help=f"{' | '.join(SORTS)}: the k best matches, by score, or ordered by date taken "
        "(date: oldest first, -date: newest first; undated last).",
    ),
]


def read_filters(
    after: str | None = None,
    before: str | None = None,
    folders: list[str] | None = None,
    camera: str | None = None,
    place: str | None = None,
    fmt: str | None = None,
    orientation: str | None = None,
) -> Filters:
    """The options as one ``Filters``; errors name the option as typed."""
    return Filters.parse(
        after=after,
        before=before,
        folders=folders or (),
        camera=camera,
        place=place,
        format=fmt,
        orientation=orientation,
        option=lambda name: _NAMES.get(name, f"--{name}"),
    )


def read_sort(sort: str) -> str:
    return parse_sort(sort, "--sort")
