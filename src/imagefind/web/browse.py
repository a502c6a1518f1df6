"""Filters over HTTP: the query parameters every search and the gallery take (one
dependency, so they read and fail alike everywhere: a bad value is a 422 naming the
parameter), browsing the library with them (``GET /api/images``) and the values a filter
bar offers (``GET /api/facets``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from imagefind.filters import DATE_FORMS, ORIENTATIONS, Filters, parse_sort
from imagefind.schemas import Facets, ImagePage
from imagefind.web.errors import ErrorOut
from imagefind.web.state import AppState, get_state

router = APIRouter(prefix="/api", responses={422: {"model": ErrorOut}})
State = Annotated[AppState, Depends(get_state)]
BROWSE_ORDERS = ("added", "date", "-date")


def filter_params(
    after: Annotated[
        str | None,
        Query(
            max_length=40,
            description=f"Taken on or after this local date ({DATE_FORMS})",
            openapi_examples={"example": {"value": "2019-06"}},
        ),
    ] = None,
    before: Annotated[
        str | None,
        Query(
            max_length=40,
            description="Taken on or before, to the end of the period named (2019-08: "
            "until the end of August 2019)",
            openapi_examples={"example": {"value": "2019-08-31"}},
        ),
    ] = None,
    folders: Annotated[
        list[str] | None,
        Query(
            alias="in",
            max_length=4096,
            description="Only images in this folder or below it (repeat for several)",
            openapi_examples={"example": {"value": ["/home/me/Photos/2019"]}},
        ),
    ] = None,
    camera: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Camera make/model contains (any case)",
            openapi_examples={"example": {"value": "canon"}},
        ),
    ] = None,
    place: Annotated[
        str | None,
        Query(
            max_length=200,
            description="City, region or country (any case, accents optional), or a "
            "2-letter country code",
            openapi_examples={"example": {"value": "Lisbon"}},
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        Query(
            alias="format",
            max_length=16,
            description="JPEG, PNG, HEIC, …",
            openapi_examples={"example": {"value": "JPEG"}},
        ),
    ] = None,
    orientation: Annotated[
        str | None,
        Query(
            max_length=16,
            description=" | ".join(ORIENTATIONS),
            openapi_examples={"example": {"value": "portrait"}},
        ),
    ] = None,
) -> Filters:
    """The filter parameters as one ``Filters`` (a FilterError is a 422)."""
    return Filters.parse(
        after=after,
        before=before,
        folders=folders or (),
        camera=camera,
        place=place,
        format=fmt,
        orientation=orientation,
        option=lambda name: "in" if name == "folders" else name,
    )


def search_sort(
    sort: Annotated[
        str,
        Query(
            description="score: best first; date / -date: the k best matches, ordered by "
            "date taken (oldest / newest first, undated last)",
            openapi_examples={"example": {"value": "-date"}},
        ),
    ] = "score",
) -> str:
    return parse_sort(sort)


FilterQuery = Annotated[Filters, Depends(filter_params)]
SortQuery = Annotated[str, Depends(search_sort)]


@router.get("/images", response_model=ImagePage)
def list_images(
    state: State,
    filters: FilterQuery,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 48,
    sort: Annotated[
        str,
        Query(
            description="added: newest added first; date / -date: by date taken (oldest / "
            "newest first, undated last)",
            openapi_examples={"example": {"value": "-date"}},
        ),
    ] = "added",
) -> ImagePage:
    """The library, or the images passing the filters, a page at a time."""
    order = parse_sort(sort, "sort", BROWSE_ORDERS)
    lib = state.library
    return ImagePage(
        total=lib.count(filters),
        offset=offset,
        limit=limit,
        items=lib.images(offset, limit, filters=filters, order=order),
    )


@router.get("/facets", response_model=Facets)
def facets(state: State) -> Facets:
    """What the filters can take: years and months taken, cameras, places, folders, formats
    and orientations, each with how many images have it."""
    return state.library.facets()
