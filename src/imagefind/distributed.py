"""Indexing on a Ray cluster (``imagefind index PATH --ray [ADDRESS]``).

The library plans the run exactly as it does locally (scan, compare with the store, claim,
re-link renames, prune), so the summary means the same. Only the middle moves to Ray Data:

    files ─► read, hash, decode, preprocess, thumbnail   (CPU tasks: ``Pipeline.prepare``)
          ─► encode                                     (actor pool; one GPU each if any)
          ─► driver: known content re-linked, batch committed in one transaction

The driver commits batch by batch, in order, through the local pipeline's own commit code;
Ray retries a task or restarts an actor whose worker died, and what was committed stays
committed. Thumbnails are written by the driver into the library folder, which several
machines therefore share (see the README, "Scaling out" and "Indexing on Ray").
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from imagefind.errors import ImagefindError
from imagefind.files import LibraryFiles
from imagefind.library import Library
from imagefind.models import ClipModel, load_model
from imagefind.models.preprocess import Preprocessor
from imagefind.pipeline import Item, Outcome, Pipeline
from imagefind.scanner import Problem
from imagefind.stores.base import Store


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
        self, batch_size: int | None, workers: int | None, progress: Callable[[int], None] | None
    ) -> Pipeline:
        return RayPipeline(
            self.store,
            self.files,
            self.model,
            batch_size=batch_size,
            progress=progress,
            address=self.ray_address,
        )


class _NoCatalog:
    """What a remote worker's ``prepare`` sees: no store, so every file is decoded; the
    driver finds content that is known already before it commits."""

    def by_sha256(self, sha256: str) -> list[Any]:
        return []


def _prepare_row(row: dict[str, Any], preprocess: Preprocessor, min_side: int) -> dict[str, Any]:
    """CPU task: the local pipeline's ``prepare`` (read, hash, decode, preprocess,
    thumbnail), so a bad file fails with the same reason as it does locally."""
    item: Item = pickle.loads(row["item"])
    worker = Pipeline(_NoCatalog(), None, _no_encoder, preprocess, min_side)  # type: ignore[arg-type]
    return {"item": pickle.dumps(worker.prepare(item))}


def _no_encoder(pixels: np.ndarray) -> np.ndarray:
    raise AssertionError("remote workers do not encode")


class _Encoder:
    """Actor: one model session per actor (per GPU where there are GPUs)."""

    def __init__(self, model: str, gpu: bool) -> None:
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if gpu else None
        self.model: ClipModel = load_model(model, providers=providers)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = [pickle.loads(blob) for blob in batch["item"]]
        todo = [r for r in results if isinstance(r, Item) and r.pixels is not None]
        if todo:
            vectors = self.model.encode_pixels(np.stack([r.pixels for r in todo]))
            for r, vector in zip(todo, vectors, strict=True):
                r.pixels = vector  # the driver's "encoder" passes it through
        return {"item": np.array([pickle.dumps(r) for r in results], dtype=object)}


class _Committer(Pipeline):
    """The local pipeline's commit half on the driver: items arrive prepared and encoded."""

    def prepare(self, item: Item | Problem) -> Item | Problem:  # type: ignore[override]
        if isinstance(item, Item):
            same = self.store.by_sha256(item.sha256)
            if same:  # renamed, touched or copied: re-link as the local pipeline does
                item.known, item.pixels, item.thumb = same[0], None, None
        return item


class RayPipeline:
    """Same ``run`` contract as ``Pipeline``; the work in between runs on Ray Data."""

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
        self.store, self.files, self.model = store, files, model
        self.batch_size = max(1, batch_size or 16)
        self.progress = progress
        self.address = address

    def run(self, items: Iterable[Item], relink: Callable[[Item, Outcome], bool]) -> Outcome:
        committer = _Committer(
            self.store,
            self.files,
            _passthrough,
            self.model.preprocess,
            self.model.draft_side,
            batch_size=self.batch_size,
            workers=1,
            progress=self.progress,
        )
        return committer.run(self._remote(list(items)), relink)

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
        ds = data.from_items(rows, override_num_blocks=max(1, len(rows) // self.batch_size))
        ds = ds.map(
            _prepare_row,
            fn_kwargs={"preprocess": self.model.preprocess, "min_side": self.model.draft_side},
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


def _passthrough(vectors: np.ndarray) -> np.ndarray:
    """The committer's encoder: the actor pool has encoded the items already."""
    return vectors


def _connect(address: str | None) -> Any:
    """Join the cluster at ``address`` (``auto``: the one this machine belongs to), or use
    the Ray already initialised in this process, or start a local one."""
    try:
        import ray
    except ImportError as exc:
        raise ImagefindError(
            "--ray needs the 'ray' extra (pip install 'imagefind[ray]')"
        ) from exc
    if not ray.is_initialized():
        try:
            ray.init(address=address or None, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ImagefindError(f"cannot join the Ray cluster at {address}: {exc}") from exc
    return ray
