"""The ``roots`` table, written once for both SQL stores: the folders a library follows.

Roots are bookkeeping beside the images, not part of them: writing one does not move the
generation counter (nothing derived from the images changes).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from imagefind.records import RootRecord


def under(root: str) -> tuple[str, str, str]:
    """``root`` itself, and the half-open range of paths below it (bytewise: no LIKE, no
    wildcard escaping, and it uses the index)."""
    base = root.rstrip(os.sep) or os.sep
    prefix = base if base.endswith(os.sep) else base + os.sep
    return base, prefix, prefix[:-1] + chr(ord(os.sep) + 1)


class RootsTable:
    """Mixed into ``SqlStore``, which supplies the dialect's placeholder and transactions."""

    PLACEHOLDER: ClassVar[str]

    def _guard(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def roots(self) -> list[RootRecord]:
        """Every root, by path."""
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT path, added_at, scanned_at FROM roots ORDER BY path"
            ).fetchall()
        return [
            RootRecord(str(r[0]), float(r[1]), None if r[2] is None else float(r[2])) for r in rows
        ]

    def put_roots(self, paths: Sequence[str], now: float, *, scanned: bool) -> None:
        """Add roots (kept if present), marking them scanned at ``now`` when ``scanned``."""
        p = self.PLACEHOLDER
        scan = now if scanned else None
        keep = "roots.scanned_at" if not scanned else "excluded.scanned_at"
        with self._transaction() as conn:
            for path in paths:
                conn.execute(
                    f"INSERT INTO roots (path, added_at, scanned_at) VALUES ({p}, {p}, {p}) "
                    f"ON CONFLICT (path) DO UPDATE SET scanned_at = {keep}",
                    (path, now, scan),
                )

    def drop_roots(self, paths: Sequence[str]) -> None:
        p = self.PLACEHOLDER
        with self._transaction() as conn:
            for path in paths:
                conn.execute(f"DELETE FROM roots WHERE path = {p}", (path,))

    def count_under(self, root: str) -> int:
        """Images at or below ``root`` (what ``roots`` shows beside each folder)."""
        p = self.PLACEHOLDER
        with self._guard() as conn:
            row = conn.execute(
                f"SELECT count(*) FROM images WHERE path = {p} OR (path >= {p} AND path < {p})",
                under(root),
            ).fetchone()
        return int(row[0]) if row else 0
