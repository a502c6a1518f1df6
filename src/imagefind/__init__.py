"""imagefind: semantic image search over your own image library, with CLIP.

>>> from imagefind import Library
>>> lib = Library.open("~/imagefind-library")
>>> lib.index(["~/Photos"])
>>> for hit in lib.search("sunset over mountains", k=5):
...     print(f"{hit.score:.3f}", hit.image.source)
"""

from __future__ import annotations

from imagefind.errors import (
    ImageError,
    ImagefindError,
    LibraryError,
    ModelError,
    ModelMismatchError,
    ModelNotFoundError,
    NotFoundError,
    QueryError,
)
from imagefind.library import Library, default_library_path
from imagefind.models import ClipModel, load_model
from imagefind.schemas import AddResult, DuplicateGroup, Hit, ImageOut, IndexSummary, Stats

__version__ = "0.1.0"

__all__ = [
    "AddResult",
    "ClipModel",
    "DuplicateGroup",
    "Hit",
    "ImageError",
    "ImageOut",
    "ImagefindError",
    "IndexSummary",
    "Library",
    "LibraryError",
    "ModelError",
    "ModelMismatchError",
    "ModelNotFoundError",
    "NotFoundError",
    "QueryError",
    "Stats",
    "default_library_path",
    "load_model",
]
