"""The JSON API under ``/api``: each route calls one ``Library`` method and returns the shared
schema objects, so the API, the CLI's ``--json`` and the library never drift apart."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from imagefind.errors import ImagefindError, NotFoundError
from imagefind.filters import Filters
from imagefind.query import MAX_QUERY_LENGTH
from imagefind.schemas import AddResult, Duplicates, ImageOut, SearchResult, Stats, WatcherState
from imagefind.search import MAX_K
from imagefind.web.access import caller_of
from imagefind.web.browse import FilterQuery, SortQuery
from imagefind.web.errors import CODES, ApiError, ErrorOut, FileError, status_of
from imagefind.web.live import state_of
from imagefind.web.state import AppState, get_state, require_write
from imagefind.web.uploads import read_files, unique_names

MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "HEIF": "image/heif",
    "HEIC": "image/heic",
    "AVIF": "image/avif",
}
MAX_FILES = 32
CHUNK_BYTES = 256 * 1024  # files are sent in pieces this size
MULTIPART_FILES = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["files"],
                "properties": {
                    "files": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "minItems": 1,
                    }
                },
            }
        }
    },
}
MULTIPART_FILE = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        }
    },
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorOut} for code in codes}


# Any route may answer 401 (off loopback, without a credential) or 429 (an address blocked
# after too many wrong ones).
router = APIRouter(prefix="/api", responses=_errors(401, 422, 429, 500))
State = Annotated[AppState, Depends(get_state)]
# SQLite's INTEGER range: a larger id is a 422 here, not an OverflowError (500) in the catalog.
ImageId = Annotated[int, PathParam(ge=1, le=2**63 - 1, description="an image id")]
K = Annotated[int, Query(ge=1, le=MAX_K, description="How many results, at most")]
Threshold = Annotated[
    float | None, Query(ge=-1.0, le=1.0, description="Leave out results scoring below this")
]


class UploadOut(BaseModel):
    """Each file of an upload is in one of the lists; each list keeps the upload's order."""

    added: list[AddResult]
    duplicates: list[AddResult]
    errors: list[FileError]


class Health(BaseModel):
    """``model``, ``model_error`` and ``count`` are null for a caller who may not read the
    library: the health check is open to anyone, the library's content is not."""

    status: Literal["ok", "degraded"]
    model: str | None
    model_error: str | None
    count: int | None
    watcher: WatcherState | None = None
    """The folder watcher of ``serve --watch``; absent without one"""


@router.get("/health", response_model=Health, response_model_exclude_unset=True)
def health(request: Request, state: State) -> Health:
    """Liveness, and whether searches can run (the model loaded)."""
    status: Literal["ok", "degraded"] = "degraded" if state.model_error else "ok"
    if not caller_of(request).may_read:
        return Health(status=status, model=None, model_error=None, count=None)
    return Health(
        status=status,
        model=state.model_name(),
        model_error=state.model_error,
        count=state.library.count(),
        **({"watcher": state_of(state.watcher)} if state.watcher else {}),
    )


@router.get("/stats", response_model=Stats)
def stats(state: State) -> Stats:
    return state.library.stats()


@router.post(
    "/images",
    response_model=UploadOut,
    status_code=201,
    dependencies=[Depends(require_write)],
    openapi_extra={"requestBody": MULTIPART_FILES},
    responses=_errors(401, 403, 413, 415, 503)
    | {200: {"model": UploadOut, "description": "Every file was already there"}},
)
async def upload(request: Request, response: Response, state: State) -> UploadOut:
    """Add images (field ``files``, one or many). Content is checked by decoding it."""
    uploads, _ = await read_files(
        request, "files", max_file_bytes=state.max_upload_bytes, max_files=MAX_FILES
    )
    state.model()  # 503 before any work when the model is missing
    uploads = unique_names(uploads)
    outcomes = await run_in_threadpool(state.add_each, [(u.name, u.data) for u in uploads])
    results = [o for o in outcomes if isinstance(o, AddResult)]
    failures = [
        (u.name, o) for u, o in zip(uploads, outcomes, strict=True) if isinstance(o, ImagefindError)
    ]
    errors = [FileError(name=name, error=str(exc)) for name, exc in failures]
    if not results:
        status = max(status_of(exc) for _, exc in failures)
        detail = "; ".join(e.error for e in errors)
        raise ApiError(status, CODES.get(status, "error"), detail, errors=errors)
    added = [r for r in results if not r.duplicate]
    response.status_code = 201 if added else 200
    return UploadOut(added=added, duplicates=[r for r in results if r.duplicate], errors=errors)


@router.get("/images/{image_id}", response_model=ImageOut, responses=_errors(404))
def get_image(image_id: ImageId, state: State) -> ImageOut:
    return state.library.get(image_id)


@router.get(
    "/images/{image_id}/file",
    response_class=StreamingResponse,
    responses=_errors(404) | {200: {"content": {"image/*": {}}, "description": "The original"}},
)
def image_file(image_id: ImageId, state: State) -> StreamingResponse:
    """The original file, by id only: no route takes a path."""
    lib = state.library
    rec = lib.get(image_id)
    path = lib.original_path(image_id)
    name = path.name if rec.path else f"{image_id}{path.suffix}"
    return _opened(
        path,
        MEDIA_TYPES.get(rec.format.upper(), "application/octet-stream"),
        f"image {image_id}: its file {path} is gone; re-run 'imagefind index'",
        {"Content-Disposition": _inline(name), "Cache-Control": "private"},
    )


@router.get(
    "/images/{image_id}/thumbnail",
    response_class=StreamingResponse,
    responses=_errors(404) | {200: {"content": {"image/webp": {}}, "description": "~256 px WebP"}},
)
def image_thumbnail(image_id: ImageId, state: State) -> StreamingResponse:
    path = state.library.thumbnail_path(image_id)
    return _opened(
        path, "image/webp", f"image {image_id}: no thumbnail", {"Cache-Control": "private"}
    )


def _opened(
    path: Path, media_type: str, missing: str, headers: dict[str, str]
) -> StreamingResponse:
    """The file opened now and streamed from that handle. A delete of its image that lands
    before the response is sent removes the name, not the bytes the handle holds, so a fetch
    racing a delete gets the file or a 404, never a response broken half way."""
    try:
        handle = path.open("rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise NotFoundError(missing) from None
    size = os.fstat(handle.fileno()).st_size

    def chunks() -> Iterator[bytes]:
        with handle:
            while chunk := handle.read(CHUNK_BYTES):
                yield chunk

    return StreamingResponse(
        chunks(), media_type=media_type, headers={**headers, "Content-Length": str(size)}
    )


def _inline(name: str) -> str:
    """Content-Disposition for a file shown in place, its name kept (RFC 6266 for non-ASCII)."""
    quoted = quote(name)
    return f"inline; filename*=utf-8''{quoted}" if quoted != name else f'inline; filename="{name}"'


@router.delete(
    "/images/{image_id}",
    response_model=ImageOut,
    dependencies=[Depends(require_write)],
    responses=_errors(401, 403, 404),
)
def delete_image(image_id: ImageId, state: State) -> ImageOut:
    """Remove an image from the library (an indexed original stays on disk)."""
    return state.remove(image_id)


@router.get("/search", response_model=SearchResult, responses=_errors(404, 503))
def search_text(
    state: State,
    filters: FilterQuery,
    q: Annotated[
        str,
        Query(min_length=1, max_length=MAX_QUERY_LENGTH, description="beach + sunset - people"),
    ],
    k: K = 10,
    threshold: Threshold = None,
    lang: Annotated[
        str | None,
        Query(
            max_length=35,
            description="The query's language, BCP-47 (de, pt-BR, zh-Hans), for models that "
            "take one (NLLB-CLIP; default English); other models ignore it",
        ),
    ] = None,
    sort: SortQuery = "score",
    mode: Annotated[
        Literal["hybrid", "clip", "text"] | None,
        Query(
            description="hybrid, clip or text (text read in the images); default: hybrid "
            "when the library has OCR text, else clip"
        ),
    ] = None,
) -> SearchResult:
    """Text search, with query arithmetic (``+``, ``-``, ``2:cat``, ``#id``) and text read in
    the images (``mode``; ``"quoted words"`` match as a phrase). A path in the query is only
    text: over HTTP a client must not make the server read its files."""
    chosen = state.library.search_mode(mode)
    hits = state.search(q, k, threshold, lang, filters=filters, sort=sort, mode=chosen)
    return SearchResult(query=q, kind="text", hits=hits, mode=chosen)


@router.post(
    "/search/image",
    response_model=SearchResult,
    dependencies=[Depends(require_write)],
    openapi_extra={"requestBody": MULTIPART_FILE},
    responses=_errors(401, 403, 413, 415, 503),
)
async def search_image(
    request: Request,
    state: State,
    filters: FilterQuery,
    k: K = 10,
    threshold: Threshold = None,
    sort: SortQuery = "score",
) -> SearchResult:
    """Images like an uploaded one (field ``file``); it is not added to the library."""
    uploads, _ = await read_files(
        request, "file", max_file_bytes=state.max_upload_bytes, max_files=1
    )
    state.model()
    hits = await run_in_threadpool(
        lambda: state.library.similar(uploads[0].data, k, threshold, filters=filters, sort=sort)
    )
    return SearchResult(query=uploads[0].name, kind="image", hits=hits)


@router.get("/images/{image_id}/similar", response_model=SearchResult, responses=_errors(404, 503))
def similar(
    image_id: ImageId,
    state: State,
    filters: FilterQuery,
    k: K = 10,
    threshold: Threshold = None,
    sort: SortQuery = "score",
) -> SearchResult:
    """Images like an indexed one; the image itself is left out."""
    hits = state.library.similar(image_id, k, threshold, filters=filters, sort=sort)
    return SearchResult(query=f"#{image_id}", kind="image", hits=hits)


@router.get("/duplicates", response_model=Duplicates)
def duplicates(
    state: State,
    threshold: Annotated[
        float | None, Query(ge=-1.0, le=1.0, description="Near-duplicate cosine (default 0.95)")
    ] = None,
    folders: Annotated[
        list[str] | None,
        Query(alias="in", description="Only among images in these folders (and below)"),
    ] = None,
) -> Duplicates:
    """Groups of exact and near duplicates, each listed side by side."""
    filters = Filters.parse(folders=folders or (), option=lambda _: "in")
    groups = state.library.duplicates(threshold, filters=filters or None)
    return Duplicates(threshold=threshold, groups=groups)
