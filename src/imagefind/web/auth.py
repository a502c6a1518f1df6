"""Who a request comes from: the secrets a server accepts (API token, password), the signed
session cookies a browser holds after logging in, their CSRF tokens, and the limit on failed
attempts per address.

A session is stateless: the cookie ``<sid>.<expires>.<signature>`` carries its own expiry,
signed with HMAC-SHA256. The key is derived from the API token when there is one (so replicas
sharing a token share sessions), else random per server start. Logging out revokes the id
in memory until the cookie would have expired anyway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from imagefind.errors import ImagefindError

SESSION_COOKIE = "imagefind_session"
CSRF_HEADER = "x-csrf-token"
MAX_SECRET_CHARS = 1024
# scrypt at n=2**14, r=8: 16 MiB and ~50 ms a try, so a password cannot be guessed fast even
# by someone who dumps the process memory.
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}

Clock = Callable[[], float]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _digest(secret: str) -> bytes:
    """Secrets are compared as fixed-length digests: ``compare_digest`` on raw strings of
    different lengths returns early and tells their length."""
    return hashlib.sha256(secret.encode()).digest()


class Secrets:
    """What a login or a bearer header may present: the API token and/or a password. The
    password is kept as a salted scrypt hash only."""

    def __init__(self, token: str | None, password: str | None) -> None:
        self.token = token or None
        self._token = _digest(token) if token else None
        self._salt = os.urandom(16)
        self._password = self._scrypt(password) if password else None

    def _scrypt(self, secret: str) -> bytes:
        return hashlib.scrypt(secret.encode(), salt=self._salt, maxmem=64 * 2**20, **SCRYPT)

    @property
    def any(self) -> bool:
        return self._token is not None or self._password is not None

    def token_matches(self, given: str) -> bool:
        """For ``Authorization: Bearer``: the API token only."""
        if self._token is None or len(given) > MAX_SECRET_CHARS:
            return False
        return hmac.compare_digest(_digest(given), self._token)

    def matches(self, given: str) -> bool:
        """For the login form: the token or the password, both checked every time."""
        if len(given) > MAX_SECRET_CHARS:
            return False
        token_ok = self.token_matches(given)
        password_ok = self._password is not None and hmac.compare_digest(
            self._scrypt(given), self._password
        )
        return token_ok or password_ok

    def session_key(self) -> bytes:
        """Derived from the token (replicas with one token accept each other's sessions),
        else random: restarting a password-only server logs everyone out."""
        if self.token is None:
            return secrets.token_bytes(32)
        return hmac.new(self.token.encode(), b"imagefind session key v1", "sha256").digest()


@dataclass(frozen=True)
class Session:
    sid: str
    expires: int  # unix seconds


class Sessions:
    """Issues and checks signed, expiring session cookies, and the CSRF token of each."""

    def __init__(self, key: bytes, lifetime_s: float, clock: Clock = time.time) -> None:
        self._key = key
        self.lifetime_s = lifetime_s
        self._clock = clock
        self._revoked: dict[str, int] = {}

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode(), "sha256").digest())

    def issue(self, issued_at: float | None = None) -> str:
        """A new cookie value; ``issued_at`` (unix seconds) defaults to now."""
        start = self._clock() if issued_at is None else issued_at
        body = f"{secrets.token_urlsafe(18)}.{math.floor(start + self.lifetime_s)}"
        return f"{body}.{self._sign(body)}"

    def read(self, value: str | None) -> Session | None:
        """The session a cookie holds; ``None`` if absent, tampered with, expired or revoked."""
        if not value or len(value) > 200:
            return None
        sid, _, rest = value.partition(".")
        expires, _, signature = rest.partition(".")
        body = f"{sid}.{expires}"
        if not hmac.compare_digest(self._sign(body).encode(), signature.encode()):
            return None
        if not expires.isdigit() or int(expires) <= self._clock() or sid in self._revoked:
            return None
        return Session(sid, int(expires))

    def revoke(self, session: Session) -> None:
        now = self._clock()
        self._revoked = {s: e for s, e in self._revoked.items() if e > now}
        self._revoked[session.sid] = session.expires

    def csrf_token(self, session: Session) -> str:
        """Tied to the session: a page from another site can neither read nor guess it."""
        return self._sign(f"csrf:{session.sid}")

    def csrf_matches(self, session: Session, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(
            self.csrf_token(session).encode(), given.encode()
        )


class RateLimiter:
    """More than ``max_failures`` failed attempts within ``window_s`` from one address block
    it for ``block_s``. A bounded number of addresses is remembered (oldest forgotten)."""

    def __init__(
        self,
        max_failures: int = 10,
        window_s: float = 60.0,
        block_s: float = 60.0,
        *,
        clock: Clock = time.monotonic,
        max_addresses: int = 10_000,
    ) -> None:
        self.max_failures, self.window_s, self.block_s = max_failures, window_s, block_s
        self._clock = clock
        self._max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._blocked: dict[str, float] = {}

    def retry_after(self, address: str) -> int | None:
        """Seconds until ``address`` may try again, or ``None`` if it may now."""
        until = self._blocked.get(address)
        if until is None:
            return None
        left = until - self._clock()
        if left <= 0:
            del self._blocked[address]
            return None
        return max(1, math.ceil(left))

    def failed(self, address: str) -> None:
        now = self._clock()
        times = self._failures.pop(address, deque())
        times.append(now)
        while times and times[0] <= now - self.window_s:
            times.popleft()
        self._failures[address] = times
        while len(self._failures) > self._max_addresses:
            self._failures.popitem(last=False)
        if len(times) > self.max_failures:
            self._blocked[address] = now + self.block_s
            del self._failures[address]


@dataclass
class Auth:
    """A server's whole answer to "who may see what": reads and writes each either open or
    behind a credential, and the means to check one."""

    secrets: Secrets
    sessions: Sessions
    limiter: RateLimiter
    reads_need_auth: bool
    writes_need_auth: bool

    @classmethod
    def configure(
        cls,
        *,
        token: str | None,
        password: str | None,
        auth_required: bool,
        public_read: bool,
        session_hours: float,
    ) -> Auth:
        found = Secrets(token, password)
        if auth_required and not found.any:
            raise ImagefindError(
                "authentication is required but there is nothing to log in with: "
                "set a token (IMAGEFIND_API_TOKEN) or --password-file"
            )
        if not session_hours > 0:
            raise ImagefindError(f"--session-hours {session_hours}: must be more than 0")
        return cls(
            secrets=found,
            sessions=Sessions(found.session_key(), session_hours * 3600),
            limiter=RateLimiter(),
            reads_need_auth=auth_required and not public_read,
            writes_need_auth=auth_required or found.token is not None,
        )
