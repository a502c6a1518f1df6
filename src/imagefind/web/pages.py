"""The one HTML page: server-rendered with the library's state, then driven by app.js."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from imagefind.models import DEFAULT_MODEL
from imagefind.query import MAX_QUERY_LENGTH
from imagefind.web.state import get_state

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    state = get_state(request)
    return templates.TemplateResponse(
        request,
        "index.html",
        {
            "count": state.library.count(),
            "model": state.model_name(),
            "model_error": state.model_error,
            "default_model": DEFAULT_MODEL,
            "token_required": state.token is not None,
            "max_upload_bytes": state.max_upload_bytes,
            "max_query_length": MAX_QUERY_LENGTH,
        },
    )
