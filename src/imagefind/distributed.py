"""Indexing on a Ray cluster (``imagefind index PATH --ray [ADDRESS]``).

The library plans the run exactly as it does locally (scan, compare with the store, claim,
re-link renames, prune), so the summary means the same. Only the middle moves to Ray Data:

    files ─► read, hash, decode, preprocess, thumbnail   (CPU tasks: ``Preparer``)
          ─► encode                                     (actor pool; one GPU each if any)
          ─► driver: known content re-linked, batch committed in one transaction

The driver commits batch by batch, in order, through the local pipeline's ``Committer``;
Ray retries a task or restarts an actor whose worker died, and what was committed stays
committed. Thumbnails are written by the driver into the library folder, which several
machines therefore share (see the README, "Scaling out" and "Indexing on Ray").
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from imagefind.commit import Committed, Committer, Outcome, Relink
from imagefind.errors import ImagefindError
from imagefind.files import LibraryFiles
from imagefind.library import Library
from imagefind.models import ClipModel, load_model
from imagefind.pipeline import IndexRunner
from imagefind.prepare import Item, Known, Preparer
from imagefind.scanner import Problem
from imagefind.stores.base import Store
from imagefind.tuning import Tuner


class RayLibrary(Library):
    """A library whose ``index`` runs its pipeline on Ray; everything else is local."""

    ray_address: str | None = None
    """The cluster to join (``auto``, ``ray://head:10001``), None: a local Ray. Set per
    library by ``open``: never on the class, where it would reach every later library."""

    @classmethod
    def open(
        cls, path: str | Path | None = None, *, ray_address: str | None = None, **options: Any
    ) -> RayLibrary:
        """``Library.open`` (same ``options``), joining the cluster at ``ray_address``."""
        lib = super().open(path, **options)
        assert isinstance(lib, RayLibrary)
        lib.ray_address = ray_address
        return lib

    def _pipeline(
        self,
        batch_size: int | None,
        workers: int | None,
        progress: Callable[[int], None] | None,
        committed: Committed | None = None,
    ) -> IndexRunner:
        """Ray's pipeline commits here too, but OCR reads at the end of the run
        (``committed`` is not called): the run's unread images."""
        return RayPipeline(
            self.store,
            self.files,
            self.model,
            batch_size=batch_size,
            progress=progress,
            address=self.ray_address,
        )


def _prepare_row(row: dict[str, Any], prepare: Preparer) -> dict[str, Any]:
    """CPU task: the local pipeline's prepare step (read, hash, decode, preprocess,
    thumbnail), so a bad file fails with the same reason as it does locally. It has no
    catalog to ask, so every file is decoded; the driver recognises known content."""
    return {"item": pickle.dumps(prepare(pickle.loads(row["item"])))}


class _Encoder:
    """Actor: one model session per actor (per GPU where there are GPUs)."""

    def __init__(self, model: str, gpu: bool) -> None:
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if gpu else None
        self.model: ClipModel = load_model(model, providers=providers)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = [pickle.loads(blob) for blob in batch["item"]]
        todo = [(r, r.pixels) for r in results if isinstance(r, Item) and r.pixels is not None]
        if todo:
            vectors = self.model.encode_pixels(np.stack([pixels for _, pixels in todo]))
            for (r, _), vector in zip(todo, vectors, strict=True):
                r.vector, r.pixels = vector, None  # the pixels need not travel back
        return {"item": np.array([pickle.dumps(r) for r in results], dtype=object)}


class RayPipeline:
    """An ``IndexRunner`` whose prepare and encode steps run on Ray Data."""

    def __init__(
        self,
        store: Store,
        files: LibraryFiles,
        model: ClipModel,
        *,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
        address: str | None = None,
    ) -> None:
        self.model = model
        self.batch_size = max(1, batch_size or 16)
        tuner = Tuner(os.cpu_count() or 1, self.batch_size, 1)  # fixed: nothing to tune here
        self.committer = Committer(store, files, tuner, progress=progress)
        self.address = address

    def run(self, items: Iterable[Item], relink: Relink) -> Outcome:
        prepared = _recognised(self._remote(list(items)), self.committer.known)
        return self.committer.run(prepared, relink)

    def _remote(self, items: list[Item]) -> Iterator[Item | Problem]:
        """Prepared and encoded items, as the cluster finishes them."""
        if not items:
            return
        ray = _connect(self.address)
        from ray import data

        context = data.DataContext.get_current()
        context.enable_progress_bars = False
        context.execution_options.preserve_order = True  # commits follow the file order
        gpus = int(ray.cluster_resources().get("GPU", 0))
        cpus = int(ray.cluster_resources().get("CPU", 1))
        model_ref = self.model.name if self.model.name else str(self.model.dir.path)
        rows = [{"item": pickle.dumps(it)} for it in items]
        # Batch-sized blocks: decoding spreads over the CPUs and streams into the encoder.
        blocks = max(1, len(rows) // self.batch_size)
        ds: data.Dataset = data.from_items(rows, override_num_blocks=blocks)
        ds = ds.map(
            partial(_prepare_row, prepare=Preparer(self.model.preprocess, self.model.draft_side)),
            num_cpus=0.5,  # unlike the encoder's: Ray Data would fuse equal stages into one
        )
        ds = ds.map_batches(
            _Encoder,
            fn_constructor_kwargs={"model": model_ref, "gpu": gpus > 0},
            batch_size=self.batch_size,
            batch_format="numpy",
            concurrency=gpus or max(1, cpus // 4),
            num_gpus=1 if gpus else 0,
            num_cpus=0 if gpus else 1,  # Ray Data restarts a dead actor by itself
        )
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for blob in batch["item"]:
                yield pickle.loads(blob)


def _recognised(prepared: Iterable[Item | Problem], known: Known) -> Iterator[Item | Problem]:
    """Items whose content the catalog has already, marked so: renamed, touched or copied
    files are re-linked as the local pipeline does, not given their new vector."""
    for item in prepared:
        if isinstance(item, Item):
            same = known(item.sha256)
            if same is not None:
                item.known, item.vector, item.thumb = same, None, None
        yield item


def _connect(address: str | None) -> Any:
    """Join the cluster at ``address`` (``auto``: the one this machine belongs to), or use
    the Ray already initialised in this process, or start a local one."""
    try:
        import ray
    except ImportError as exc:
        raise ImagefindError("--ray needs the 'ray' extra (pip install 'imagefind[ray]')") from exc
    if not ray.is_initialized():
        try:
            ray.init(address=address or None, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ImagefindError(f"cannot join the Ray cluster at {address}: {exc}") from exc
    return ray
