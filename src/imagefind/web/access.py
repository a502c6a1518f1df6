"""The gate in front of every route: it finds out who is calling (bearer token, session
cookie, or nobody), refuses what that caller may not do, and leaves the answer in the request
state for the routes that show more to a signed-in caller (the page, ``/api/health``).

One middleware rather than a dependency per route, so that a route added later, the OpenAPI
document, the docs page and unknown paths are all behind it without anyone remembering to.
"""

from __future__ import annotations

from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Literal
from urllib.parse import quote

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagefind.web.auth import CSRF_HEADER, SESSION_COOKIE, Auth, Session
from imagefind.web.security import MUTATING, json_message

# Open to anyone: the login itself, the app's own JavaScript and CSS (no library content), and
# a health check that shows nothing of the library to a caller who may not read it.
OPEN_PATHS = frozenset({"/login", "/logout", "/api/health"})
OPEN_PREFIXES = ("/static/",)
UNAUTHORIZED = (
    "sign in: send 'Authorization: Bearer <token>' (the server's IMAGEFIND_API_TOKEN), "
    "or log in at /login"
)


@dataclass(frozen=True)
class Caller:
    """Who a request comes from; ``session`` is set when a login cookie vouched for it."""

    via: Literal["bearer", "session", "nobody"]
    may_read: bool
    session: Session | None = None


def caller_of(request: Request) -> Caller:
    """The caller the gate found (apps built without the gate: anyone, reading)."""
    found = request.scope.get("state", {}).get("imagefind_caller")
    return found if isinstance(found, Caller) else Caller("nobody", may_read=True)


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def session_cookie(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except CookieError:
                continue
            if SESSION_COOKIE in jar:
                return jar[SESSION_COOKIE].value
    return None


def login_redirect(scope: Scope) -> tuple[Message, Message]:
    """A browser opening a page is sent to log in, and comes back here afterwards."""
    target = scope["path"] + (f"?{scope['query_string'].decode('latin-1')}" if scope.get(
        "query_string") else "")  # fmt: skip
    location = f"/login?next={quote(target, safe='')}"
    start: Message = {
        "type": "http.response.start",
        "status": 303,
        "headers": [(b"location", location.encode()), (b"content-length", b"0")],
    }
    return start, {"type": "http.response.body", "body": b""}


class AccessMiddleware:
    """Refuses a request its caller may not make: 401 (or, for a browser opening a page, a
    redirect to the login page), 403 for a cookie-borne write without its CSRF token, 429
    while an address is blocked for guessing."""

    def __init__(self, app: ASGIApp, auth: Auth) -> None:
        self.app = app
        self.auth = auth

    def _identify(self, scope: Scope) -> Caller | None:
        """The caller a request's credentials show; ``None`` for a wrong bearer token."""
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        auth = self.auth
        authorization = dict(headers).get(b"authorization")
        if authorization is not None:
            scheme, _, given = authorization.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and auth.secrets.token_matches(given.strip()):
                return Caller("bearer", may_read=True)
            return None
        session = auth.sessions.read(session_cookie(headers))
        if session is not None:
            return Caller("session", may_read=True, session=session)
        return Caller("nobody", may_read=not auth.reads_need_auth)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        caller, refusal = self._decide(scope)
        if refusal is not None:
            await send(refusal[0])
            await send(refusal[1])
            return
        state = {**scope.get("state", {}), "imagefind_caller": caller}
        await self.app({**scope, "state": state}, receive, send)

    def _decide(self, scope: Scope) -> tuple[Caller, tuple[Message, Message] | None]:
        """The caller, and the answer to send instead of running the app (if any)."""
        auth, headers = self.auth, dict(scope["headers"])
        method, path = scope["method"], scope["path"]
        writing = method in MUTATING
        open_path = path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)
        needs = not open_path and (auth.writes_need_auth if writing else auth.reads_need_auth)
        nobody = Caller("nobody", may_read=not auth.reads_need_auth)
        found = self._identify(scope)
        if needs and b"authorization" in headers:
            # A token is being tried: while its address is blocked, right or wrong alike.
            address = client_address(scope)
            wait = auth.limiter.retry_after(address)
            if wait is None and found is None:
                auth.limiter.failed(address)
                wait = auth.limiter.retry_after(address)
            if wait is not None:
                return nobody, too_many(wait)
        if found is None:  # a wrong token where none is needed counts for nothing
            return nobody, None if not needs else unauthorized()
        caller = found
        if needs and caller.via == "nobody":
            if method in ("GET", "HEAD") and b"text/html" in headers.get(b"accept", b""):
                return caller, login_redirect(scope)
            return caller, unauthorized()
        if writing and not open_path and caller.session is not None and auth.writes_need_auth:
            given = headers.get(CSRF_HEADER.encode(), b"").decode("latin-1")
            if not auth.sessions.csrf_matches(caller.session, given or None):
                detail = "missing or wrong CSRF token: reload the page and try again"
                return caller, json_message(403, "forbidden", detail)
        return caller, None


def unauthorized() -> tuple[Message, Message]:
    return json_message(401, "unauthorized", UNAUTHORIZED, {"WWW-Authenticate": "Bearer"})


def too_many(wait: int) -> tuple[Message, Message]:
    return json_message(
        429,
        "too_many_requests",
        f"too many failed sign-ins from this address: try again in {wait} s",
        {"Retry-After": str(wait)},
    )
