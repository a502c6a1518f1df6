"""The embedded store: a SQLite catalog (the source of truth) and a FAISS index derived
from it, kept in step on every write."""

from imagefind.stores.embedded.store import EmbeddedStore

__all__ = ["EmbeddedStore"]
