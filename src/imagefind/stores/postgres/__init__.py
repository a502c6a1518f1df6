"""The PostgreSQL + pgvector store: several API servers and indexing workers on one
database (needs the 'postgres' extra)."""

from imagefind.stores.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
