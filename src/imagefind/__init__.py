"""imagefind: semantic image search over your own image library, with CLIP.

>>> from imagefind import Library
>>> lib = Library.open("~/imagefind-library")
>>> lib.index(["~/Photos"])
>>> for hit in lib.search("sunset over mountains", k=5):
...     print(f"{hit.score:.3f}", hit.image.source)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from imagefind.files import default_library_path
    from imagefind.filters import FilterError, Filters
    from imagefind.library import Library
    from imagefind.models import ClipModel, load_model
    from imagefind.schemas import (
        AddResult,
        DuplicateGroup,
        Duplicates,
        Hit,
        ImageOut,
        ImagePage,
        IndexSummary,
        Removed,
        SearchResult,
        Stats,
    )

# Imported on first use: ``import imagefind.cli`` (a cold query) should load only what the
# command needs, not pydantic and the image stack.
_LAZY = {
    "Filters": "imagefind.filters",
    "FilterError": "imagefind.filters",
    "Library": "imagefind.library",
    "default_library_path": "imagefind.files",
    "ClipModel": "imagefind.models",
    "load_model": "imagefind.models",
    **dict.fromkeys(
        [
            "AddResult",
            "DuplicateGroup",
            "Duplicates",
            "Hit",
            "ImageOut",
            "ImagePage",
            "IndexSummary",
            "Removed",
            "SearchResult",
            "Stats",
        ],
        "imagefind.schemas",
    ),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'imagefind' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "AddResult",
    "ClipModel",
    "DuplicateGroup",
    "Duplicates",
    "FilterError",
    "Filters",
    "Hit",
    "ImageError",
    "ImageOut",
    "ImagePage",
    "ImagefindError",
    "IndexSummary",
    "Library",
    "LibraryError",
    "ModelError",
    "ModelMismatchError",
    "ModelNotFoundError",
    "NotFoundError",
    "QueryError",
    "Removed",
    "SearchResult",
    "Stats",
    "default_library_path",
    "load_model",
]
