"""Work claims for indexing workers that share one PostgreSQL store.

A worker claims a few files at a time before it encodes them; a file goes to one worker
only. Claims are rows, so there is no limit on how many a run holds; whether their owner is
alive is an advisory lock that owner's connection holds, so the claims of a worker that died
(its connection gone) go to the next worker at once, with no timeout to tune.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import psycopg

from imagefind.scanner import FoundFile
from imagefind.stores.postgres.schema import LOCK_NAMESPACE

_CLAIM = (
    "INSERT INTO claims (path, owner) SELECT unnest(%s::text[]), %s "
    "ON CONFLICT (path) DO UPDATE SET owner = EXCLUDED.owner, claimed_at = now() "
    "WHERE claims.owner = EXCLUDED.owner OR NOT EXISTS (SELECT 1 FROM pg_locks l "
    "WHERE l.locktype = 'advisory' AND l.classid = %s AND l.objid = claims.owner "
    "AND l.objsubid = 2 AND l.granted) RETURNING path"
)
_CATALOGUED = (
    "SELECT i.path FROM images i JOIN unnest(%s::text[], %s::bigint[], %s::float8[]) "
    "AS f(path, size, mtime) ON i.path = f.path AND i.size = f.size "
    "AND i.mtime IS NOT DISTINCT FROM f.mtime"
)


def take_owner(conn: psycopg.Connection) -> int:
    """A fresh owner id, marked alive by a session advisory lock on this connection."""
    while True:
        candidate = random.randrange(1, 2**31)
        row = conn.execute(
            "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_NAMESPACE, candidate)
        ).fetchone()
        if row and row[0]:
            return candidate


def claim(conn: psycopg.Connection, owner: int, files: Sequence[FoundFile]) -> set[str]:
    """The paths of ``files`` that ``owner`` now holds and that still need encoding."""
    paths = [f.path for f in files]
    got = {row[0] for row in conn.execute(_CLAIM, (paths, owner, LOCK_NAMESPACE))}
    # A second statement, a fresh snapshot: it sees every row committed before our claims
    # were (a worker commits its rows before it lets go of their claims), so a file that
    # another worker finished a moment ago is not encoded again.
    sizes, mtimes = [f.size for f in files], [f.mtime for f in files]
    done = {row[0] for row in conn.execute(_CATALOGUED, (paths, sizes, mtimes))}
    return got - done


def release(conn: psycopg.Connection, owner: int) -> None:
    """Drop ``owner``'s claims and its liveness lock (the end of an index run)."""
    conn.execute("DELETE FROM claims WHERE owner = %s", (owner,))
    conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, owner))
