"""The one HTML page: server-rendered with the library's state, then driven by app.js."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from imagefind.models import DEFAULT_MODEL
from imagefind.models.languages import PICKER_TAGS
from imagefind.query import MAX_QUERY_LENGTH
from imagefind.web.access import caller_of
from imagefind.web.state import get_state

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    state = get_state(request)
    auth, session = state.auth, caller_of(request).session
    signed_in = session is not None
    return templates.TemplateResponse(
        request,
        "index.html",
        {
            "count": state.library.count(),
            "model": state.model_name(),
            "model_error": state.model_error,
            "default_model": DEFAULT_MODEL,
            # A signed-in browser writes with its session (and CSRF token), not a typed token.
            "token_required": auth.secrets.token is not None and not signed_in,
            "login_link": auth.writes_need_auth and auth.secrets.any and not signed_in,
            "signed_in": signed_in,
            "csrf_token": auth.sessions.csrf_token(session) if session is not None else "",
            "max_upload_bytes": state.max_upload_bytes,
            "max_query_length": MAX_QUERY_LENGTH,
            "query_languages": PICKER_TAGS if state.takes_language() else (),
        },
    )
