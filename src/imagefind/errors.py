"""One exception family: every message is meant to be shown to a user as is.

The CLI turns these into ``Error: ...`` with exit code 1, the web API into JSON errors.
"""

from __future__ import annotations


class ImagefindError(Exception):
    """Base of every error imagefind raises on purpose."""


class ModelError(ImagefindError):
    """A model could not be found, downloaded, loaded or run."""


class ModelNotFoundError(ModelError):
    """No model directory at the name given, and none could be fetched."""


class ImageError(ImagefindError):
    """One input is not an image we can read; the message names it and says why."""


class LibraryError(ImagefindError):
    """The library on disk cannot be used as asked."""


class ModelMismatchError(LibraryError):
    """The library was built with another model than the one asked for."""


class NotFoundError(ImagefindError):
    """An id or path that is not in the library."""


class QueryError(ImagefindError):
    """A search query that cannot be parsed or run."""
