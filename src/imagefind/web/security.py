"""Request guards: body size caps while the body streams in, allowed hosts, same-origin writes
and defensive response headers (credentials are in ``auth`` and ``access``). Pure ASGI where
it matters, so nothing is buffered first."""

from __future__ import annotations

import ipaddress
import json
from urllib.parse import urlsplit

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagefind.web.errors import ApiError

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})

# The page loads nothing from elsewhere: scripts, styles and images all come from this app.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
# Everything else (JSON, images, scripts) is never a document that may run or load anything.
OTHER_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only."""
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class BodyTooLarge(Exception):
    """Raised from ``receive`` once a body passes its cap; the middleware answers 413."""


def json_message(
    status: int,
    error: str,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    close: bool = False,
) -> tuple[Message, Message]:
    """An error answer ``{"error", "detail"}`` as raw ASGI messages, for middleware that
    answers before the app (and its exception handlers) runs."""
    body = json.dumps({"error": error, "detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if close:
        raw.append((b"connection", b"close"))
    start: Message = {"type": "http.response.start", "status": status, "headers": raw}
    return start, {"type": "http.response.body", "body": body}


class BodyLimitMiddleware:
    """Caps every request body at ``max_bytes``: a declared Content-Length over the cap is
    refused before a byte is read, and a streamed body is cut off the moment it passes it.

    Per-file limits inside a multipart upload are enforced by the upload parser; this is the
    backstop for every route (and for bodies with no Content-Length at all).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING:
            await self.app(scope, receive, send)
            return
        detail = f"request body is larger than {self.max_bytes} bytes"
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    await self._refuse(send, detail)
                    return
        received = 0
        over = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:  # whatever the app makes of the cut-off body, the answer is 413
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            pass
        except Exception:
            if not over:
                raise
        if over and not started:
            await self._refuse(send, detail)

    @staticmethod
    async def _refuse(send: Send, detail: str) -> None:
        start, body = json_message(413, "payload_too_large", detail, close=True)
        await send(start)
        await send(body)


class HostCheckMiddleware:
    """Answers only to the host names given: a DNS-rebinding page that points its own name
    at 127.0.0.1 still sends that name in Host, and is refused."""

    def __init__(self, app: ASGIApp, allowed_hosts: list[str]) -> None:
        self.app = app
        self.allowed = {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in self.allowed:
                start, body = json_message(400, "bad_request", f"unknown host {host!r}")
                await send(start)
                await send(body)
                return
        await self.app(scope, receive, send)


class SecurityHeadersMiddleware:
    """On every response: nosniff (originals are served as their own type, never guessed), no
    framing, no referrer, and a CSP without inline script (the page's), or one that allows
    nothing at all (everything else)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                content_type = dict(headers).get(b"content-type", b"")
                csp = PAGE_CSP if content_type.startswith(b"text/html") else OTHER_CSP
                headers.append((b"content-security-policy", csp.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def check_origin(request: Request, allowed: list[str]) -> None:
    """Refuse writes a browser sends on behalf of another site (CSRF): a form on any web page
    can POST to 127.0.0.1 without a CORS preflight, but its headers give it away. The
    browser's own ``Sec-Fetch-Site`` is believed first (a page cannot set it): under
    ``Referrer-Policy: no-referrer`` a same-origin form posts ``Origin: null``."""
    origin = request.headers.get("origin")
    if origin is not None and origin in allowed:
        return
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site not in ("same-origin", "none"):
            raise ApiError(403, "forbidden", f"cross-site request ({site}) refused")
        return
    if origin is None:
        return
    host = request.headers.get("host", "")
    if origin == "null" or urlsplit(origin).netloc.lower() != host.lower():
        raise ApiError(403, "forbidden", f"cross-site request from {origin} refused")
