"""The browser's way in and out: ``GET /login`` (the form), ``POST /login`` (field ``secret``:
the API token or the password; 303 and a session cookie, or 401), ``POST /logout``.

One message for every wrong secret, whatever was wrong; too many from one address in a minute
and it gets 429 for a while. API clients skip all this and send ``Authorization: Bearer``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from imagefind.web.access import caller_of, client_address
from imagefind.web.auth import MAX_SECRET_CHARS, SESSION_COOKIE
from imagefind.web.errors import ApiError
from imagefind.web.pages import templates
from imagefind.web.security import check_origin
from imagefind.web.state import get_state

router = APIRouter(include_in_schema=False)
WRONG = "Wrong key or password."


def safe_next(target: str | None) -> str:
    """Only a path on this site: ``//evil.example`` or ``https://…`` would send the browser
    away straight after login (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if any(ch in target for ch in "\r\n\\") or not target.isprintable():
        return "/"
    return target


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def login_page(request: Request, target: str, error: str | None, status: int) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "login.html", {"next": target, "error": error}, status_code=status
    )


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    target = safe_next(next)
    if caller_of(request).via == "session":
        return RedirectResponse(target, status_code=303)
    return login_page(request, target, None, 200)


@router.post("/login")
async def login(request: Request) -> Response:
    """Checks the secret; sets ``imagefind_session`` (HttpOnly, SameSite=Strict, Secure over
    HTTPS) and sends the browser on with 303."""
    state = get_state(request)
    check_origin(request, state.cors_origins)
    auth, address = state.auth, client_address(request.scope)
    form = await request.form(max_files=0, max_fields=4, max_part_size=4 * MAX_SECRET_CHARS)
    secret, target = form.get("secret"), form.get("next")
    target = safe_next(target if isinstance(target, str) else None)
    wait = auth.limiter.retry_after(address)
    if wait is None and isinstance(secret, str) and auth.secrets.matches(secret):
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            auth.sessions.issue(),
            max_age=int(auth.sessions.lifetime_s),
            path="/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response
    if wait is None:
        auth.limiter.failed(address)
        wait = auth.limiter.retry_after(address)
    if wait is not None:
        detail = f"too many failed sign-ins from this address: try again in {wait} s"
        headers = {"Retry-After": str(wait)}
        if wants_html(request):
            page = login_page(request, target, detail, 429)
            page.headers.update(headers)
            return page
        raise ApiError(429, "too_many_requests", detail, headers=headers)
    if wants_html(request):
        return login_page(request, target, WRONG, 401)
    raise ApiError(401, "unauthorized", WRONG)


@router.post("/logout")
def logout(request: Request) -> Response:
    """Ends the session here (revoked until it would have expired) and in the browser."""
    state = get_state(request)
    check_origin(request, state.cors_origins)
    session = caller_of(request).session
    if session is not None:
        state.auth.sessions.revoke(session)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
