"""The immich-app model zoo as shipped with imagefind: ``catalogue.json``, read-only data.

The hub has no listing of "models that work here", so the list and its figures travel with the
package: names from immich's ML service, embedding sizes from immich's server, image sizes from
open_clip's model configs, recall from immich's model table, download sizes from parameter
counts (``benchmarks/sizes.py``). A figure no source gives is ``null`` in the file and ``None``
here, never guessed; the file's ``sources`` say where each column came from.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from typing import Any

from imagefind.models.hub import HUB_ORG, cached_models

LIST_HINT = "see 'imagefind models list --available'"


@dataclass(frozen=True)
class CatalogueEntry:
    """One model of the zoo; ``cached`` says whether it is already in the local cache."""

    name: str
    family: str
    dim: int | None
    multilingual: bool
    image_size: int | None
    download_mb: float | None
    recall: float | None
    recall_source: str | None
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@cache
def _document() -> dict[str, Any]:
    text = resources.files("imagefind.models").joinpath("catalogue.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def sources() -> dict[str, str]:
    """Where each column of the catalogue came from (URLs and the table or constant)."""
    return dict(_document()["sources"])


def catalogue() -> list[CatalogueEntry]:
    """Every zoo model, with ``cached`` read from the cache directory now."""
    cached = {ref.name for ref in cached_models()}
    return [
        CatalogueEntry(**{**row, "cached": row["name"] in cached}) for row in _document()["models"]
    ]


def names() -> frozenset[str]:
    return frozenset(row["name"] for row in _document()["models"])


def is_unknown_zoo_name(name: str, repo_id: str | None) -> bool:
    """A short name (``immich-app/<name>``) that the catalogue does not list: most likely a
    typo, so a failed download says so instead of only reporting the hub's error."""
    return repo_id == f"{HUB_ORG}/{name}" and name not in names()


def unknown_model_message(name: str) -> str:
    return f"model {name!r} is not in the immich-app model zoo: {LIST_HINT} for the names"
