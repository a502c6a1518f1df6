"""Every error the API returns is ``{"error": code, "detail": message}``: the library's own
exceptions keep their user-facing messages, anything unexpected becomes a bare 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from imagefind.errors import ImageError, ImagefindError, ModelError, NotFoundError, QueryError

log = logging.getLogger("imagefind.web")

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "model_unavailable",
}


class FileError(BaseModel):
    name: str
    error: str


class ErrorOut(BaseModel):
    """The body of every error response."""

    error: str
    detail: str
    errors: list[FileError] | None = None


class ApiError(Exception):
    """An error response raised from inside the web layer."""

    def __init__(
        self,
        status: int,
        error: str,
        detail: str,
        *,
        errors: list[FileError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail
        self.errors, self.headers = errors, headers


def status_of(exc: ImagefindError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ImageError):
        return 415
    if isinstance(exc, QueryError):
        return 422
    if isinstance(exc, ModelError):
        return 503
    return 400


def error_response(
    status: int,
    detail: str,
    *,
    error: str | None = None,
    errors: list[FileError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorOut(error=error or CODES.get(status, "error"), detail=detail, errors=errors)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def _field(loc: tuple[int | str, ...]) -> str:
    # ("query", "k") -> "k"; the location kind is noise to a user.
    parts = [str(p) for p in loc[1:]] if len(loc) > 1 else [str(p) for p in loc]
    return ".".join(parts)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        f"{_field(tuple(e.get('loc', ())))}: {e.get('msg', 'invalid')}" for e in exc.errors()
    ]
    return error_response(422, "; ".join(problems) or "invalid request")


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"nothing at {request.url.path}"
    return error_response(exc.status_code, detail, headers=getattr(exc, "headers", None))


async def _api(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(
        exc.status, exc.detail, error=exc.error, errors=exc.errors, headers=exc.headers
    )


async def _imagefind(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ImagefindError)
    return error_response(status_of(exc), str(exc))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the server log, never to the client.
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal server error; the server log has the details")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(ApiError, _api)
    app.add_exception_handler(ImagefindError, _imagefind)
    app.add_exception_handler(Exception, _unexpected)
