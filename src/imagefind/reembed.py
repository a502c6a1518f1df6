"""Re-embedding a library with another model, all or nothing: every image is encoded by the
new model into the store's staging area, then model and vectors switch in one transaction.
An interrupted re-embed leaves the library as it was, bound to its old model, searchable."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from imagefind.errors import ImagefindError
from imagefind.models import ClipModel
from imagefind.records import ImageRecord, ModelIdentity
from imagefind.schemas import Dropped, ReindexSummary
from imagefind.stores import Store

if TYPE_CHECKING:
    from PIL import Image

PASSES = 3
"""Images another process indexes during a re-embed get a later pass (or two)."""

OpenOriginal = Callable[[ImageRecord, int], "Image.Image"]
"""An image's original, decoded no smaller than the given side."""


def reembed(
    store: Store,
    model: ClipModel,
    identity: ModelIdentity,
    open_original: OpenOriginal,
    *,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> tuple[ReindexSummary, list[ImageRecord]]:
    """Encode every image with ``model``, then switch; returns the summary and the rows
    removed because their original could not be read (their files are the caller's)."""
    started = time.monotonic()
    staged: set[int] = set()
    gone: dict[int, Dropped] = {}
    try:
        for _ in range(PASSES):
            todo = [i for i in store.ids() if i not in staged and i not in gone]
            if not todo:
                break
            for start in range(0, len(todo), batch_size):
                chunk = todo[start : start + batch_size]
                staged.update(_stage(store, model, identity, open_original, chunk, gone))
                if progress:
                    progress(len(chunk))
        removed = store.switch_model(identity, list(gone))
    except BaseException:
        store.discard_staged()
        raise
    summary = ReindexSummary(
        model=model.name,
        reembedded=len(staged),
        removed=[gone[r.id] for r in removed if r.id in gone],
        seconds=round(time.monotonic() - started, 3),
    )
    return summary, removed


def _stage(
    store: Store,
    model: ClipModel,
    identity: ModelIdentity,
    open_original: OpenOriginal,
    ids: list[int],
    gone: dict[int, Dropped],
) -> list[int]:
    """Encode one batch and stage it; unreadable originals go into ``gone``. Returns the ids
    staged."""
    recs = store.get_many(ids)
    pixels, keep = [], []
    for image_id in ids:
        rec = recs.get(image_id)
        if rec is None:
            continue  # removed meanwhile
        try:
            pixels.append(model.preprocess(open_original(rec, model.draft_side)))
            keep.append(image_id)
        except ImagefindError as exc:
            gone[image_id] = Dropped(id=image_id, source=rec.source, reason=str(exc))
    if keep:
        store.stage_vectors(identity, keep, model.encode_pixels(np.stack(pixels)))
    return keep
