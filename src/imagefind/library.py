"""``imagefind.Library``: the product. The CLI and the web app are thin faces over it."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagefind.binding import ModelBinding, identity
from imagefind.errors import ImagefindError, LibraryError, NotFoundError
from imagefind.files import LibraryFiles, default_library_path
from imagefind.filters import Filters
from imagefind.models import ClipModel, load_model, split_precision
from imagefind.models.hub import model_name
from imagefind.ocr.ranking import Mode, TextSearch, resolve_mode
from imagefind.ocr.runs import OcrRuns
from imagefind.records import ImageRecord
from imagefind.roots import Roots
from imagefind.schemas import (
    AddResult,
    DuplicateGroup,
    Facets,
    Hit,
    ImageOut,
    IndexSummary,
    OcrSummary,
    ReindexSummary,
    Stats,
)
from imagefind.search import Searcher
from imagefind.stores import Store, open_store

if TYPE_CHECKING:

    from imagefind.commit import Committed
    from imagefind.pipeline import IndexRunner
    from imagefind.scanner import RawPairs


class Library:
    """One library directory: catalog, thumbnails, uploads, bound to one model."""

    def __init__(
        self,
        path: Path,
        store: Store,
        model: str | ClipModel | None,
        *,
        quick_start: bool = False,
    ) -> None:
        self.path = path
        self.quick_start = quick_start
        self.store = store
        self.files = LibraryFiles(path)
        self.binding = ModelBinding(path, store, model, quick_start)
        self.searcher = Searcher(self.store, lambda: self.model)
        self.ocr = OcrRuns(self.store, self.original_path)
        self.text_search = TextSearch(self.store, self.searcher)
        self.roots = Roots(self.store, self.remove_ids)  # the folders it follows

    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        *,
        model: str | ClipModel | None = None,
        precision: str | None = None,
        store: str | None = None,
        quick_start: bool = False,
    ) -> Library:
        """Open (or create) a library. ``model`` defaults to the one the library is bound to;
        ``precision="int8"`` runs (and binds) a cached int8 copy of it; ``quick_start`` is for
        a process that runs a query or two and exits (see :func:`load_model`)."""
        root = Path(path).expanduser() if path is not None else default_library_path()
        if root.exists() and not root.is_dir():
            raise LibraryError(f"{root}: not a folder (a library is a folder)")
        root.mkdir(parents=True, exist_ok=True)
        backend = open_store(store or os.environ.get("IMAGEFIND_STORE"), root)
        bound = backend.model()
        if precision is not None and not isinstance(model, ClipModel):
            base = split_precision(model or (bound.name if bound else model_name(None)))[0]
            model = base if precision == "fp32" else f"{base}@{precision}"
        lib = cls(root.resolve(), backend, model, quick_start=quick_start)
        if isinstance(model, ClipModel):  # loaded already: bind it now, or refuse it
            lib.binding.check(model)
        elif bound is not None and isinstance(model, str) and model != bound.name:
            lib.binding.check(load_model(model, quick_start=quick_start))
        return lib

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the model --------------------------------------------------------------------------

    @property
    def model(self) -> ClipModel:
        """Loaded on first use: stats, listing and deletes never need it."""
        return self.binding.model

    def reindex(
        self,
        model: str | ClipModel,
        *,
        batch_size: int = 16,
        progress: Callable[[int], None] | None = None,
    ) -> ReindexSummary:
        """Re-embed every image with another model (ids, paths, uploads kept). All or
        nothing: the new vectors are staged aside, then model and vectors switch in one
        transaction, so an interrupted re-embed leaves the library as it was, searchable.
        Images whose original is gone are removed in that same switch, and reported."""
        from imagefind.reembed import reembed

        new = load_model(model) if isinstance(model, str) else model
        summary, removed = reembed(
            self.store,
            new,
            identity(new),
            self.files.open_original,
            batch_size=batch_size,
            progress=progress,
        )
        self._discard_files(removed)
        self.binding.switch(new)
        self.searcher.clear_cache()
        return summary

    def refresh(self) -> bool:
        """Pick up changes another process made; True when there were some."""
        return self.store.refresh()

    # -- adding and removing ----------------------------------------------------------------

    def _pipeline(
        self,
        batch_size: int | None,
        workers: int | None,
        progress: Callable[[int], None] | None,
        committed: Committed | None = None,
    ) -> IndexRunner:
        """The pipeline that indexing runs (``RayLibrary`` swaps in its own); ``committed``
        hears each batch's ids (the OCR stage)."""
        from imagefind.pipeline import Pipeline

        model = self.model
        return Pipeline(
            self.store,
            self.files,
            model.encode_pixels,
            model.preprocess,
            model.draft_side,
            batch_size=batch_size,
            workers=workers,
            progress=progress,
            committed=committed,
        )

    def read_text(
        self, *, errors: bool = False, progress: Callable[[int, int], None] | None = None
    ) -> OcrSummary:
        """Read the text of every image not read yet (``imagefind ocr``; ``errors``: also
        retry those OCR failed on), and turn OCR on for images added later."""
        return self.ocr.catch_up(errors=errors, progress=progress)

    def index(
        self,
        paths: Sequence[str | Path] = (),
        *,
        batch_size: int | None = None,
        workers: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        ocr: bool | None = None,
        raw_pairs: RawPairs = "jpeg",
        text_progress: Callable[[int, int], None] | None = None,
    ) -> IndexSummary:
        """Index folders (recursively; remembered as roots: no ``paths`` re-scans them) or
        files. Incremental: unchanged files skipped, moved ones re-linked by content, changed
        ones re-encoded, vanished ones pruned. ``batch_size`` and ``workers`` are tuned unless
        given; ``raw_pairs="both"`` indexes a RAW beside its same-name JPEG too. ``ocr`` turns
        reading text in images on or off for the library (remembered); while on, text is read
        beside encoding, and images not read yet are read at the end (``text_progress``)."""
        if ocr is not None:
            self.ocr.enable(ocr)
        started = time.time()
        todo, missing = self.roots.to_scan(paths)
        summary = self.apply_changes(
            todo,
            text_progress=text_progress,
            batch_size=batch_size,
            workers=workers,
            progress=progress,
            raw_pairs=raw_pairs,
        )
        summary.skipped[:0] = missing
        self.roots.scanned(todo, started)
        self.collect_garbage()
        return summary

    def apply_changes(
        self,
        paths: Sequence[str | Path],
        vanished: Sequence[str] = (),
        text_progress: Callable[[int, int], None] | None = None,
        **options: Any,
    ) -> IndexSummary:
        """``index`` minus roots and garbage collection, for a watcher's changes: ``paths``
        new or changed, ``vanished`` gone (re-linked by content, or pruned)."""
        from imagefind.ingest import index_paths  # the image stack: not needed to search

        summary, read = self.ocr.run(
            self._pipeline,
            lambda runner: index_paths(
                self.store,
                paths,
                runner,
                exclude=self.path,
                remove=self.remove_ids,
                collect_garbage=lambda: None,
                upload_file=self.files.find_upload,
                vanished=vanished,
                **options,
            ),
            progress=text_progress,
        )
        summary.ocr = read
        return summary

    def add(self, data: bytes | str | Path, name: str | None = None) -> AddResult:
        """Add one image file, or bytes as an upload (content-addressed, deduplicated).
        ``name`` is what an upload is called; without one it shows as ``upload <sha256>``."""
        return self.add_many([(name, data)])[0]

    def add_many(self, uploads: Sequence[tuple[str | None, bytes | str | Path]]) -> list[AddResult]:
        """Store uploads; raises for the first bad one only after the good ones are in."""
        results = []
        for outcome in self.add_each(uploads):
            if isinstance(outcome, ImagefindError):
                raise outcome
            results.append(outcome)
        return results

    def add_each(
        self, uploads: Sequence[tuple[str | None, bytes | str | Path]]
    ) -> list[AddResult | ImagefindError]:
        """Store uploads (name, bytes or file path): one outcome per upload, in input order,
        its result or the error that refused it, so that a web upload of many files can
        answer for each file."""
        from imagefind.ingest import add_uploads

        done, _ = self.ocr.run(
            self._pipeline, lambda runner: add_uploads(self.store, uploads, runner), catch_up=False
        )
        return done

    def remove(self, targets: Sequence[int | str | Path]) -> list[ImageOut]:
        """Remove images by id (an ``int``) or by path (a ``str`` or ``Path``; a folder removes
        everything under it). A string is always a path: ``"3"`` may be a folder."""
        ids: list[int] = []
        for target in targets:
            if isinstance(target, int):
                ids.append(self.store.get(target).id)
                continue
            path = os.path.abspath(Path(target).expanduser())
            recs = self.store.paths_under(path)
            if not recs:
                raise NotFoundError(f"{target}: not in the library")
            ids += [r.id for r in recs.values()]
        return self.remove_ids(ids)

    def remove_ids(self, ids: list[int]) -> list[ImageOut]:
        """Remove rows and the files no remaining row shares."""
        removed = self.store.remove(ids)
        self._discard_files(removed)
        return [ImageOut.of(rec) for rec in removed]

    def _discard_files(self, removed: list[ImageRecord]) -> None:
        """Thumbnails and uploads of removed rows whose content no other row has."""
        self.files.discard({r.sha256 for r in removed if not self.store.by_sha256(r.sha256)})

    def collect_garbage(self) -> int:
        """Delete thumbnails and uploads that no row refers to (after a crash). Does nothing
        while a writer, here or in another process, has files on disk ahead of its commit."""
        return self.files.collect_garbage(
            lambda: {rec.sha256 for rec in self.store.page(0, self.store.count() or 1)}
        )

    # -- reading ----------------------------------------------------------------------------

    def get(self, image_id: int) -> ImageOut:
        """One image; NotFoundError if there is none."""
        return ImageOut.of(self.store.get(image_id))

    def images(
        self,
        offset: int = 0,
        limit: int = 50,
        *,
        filters: Filters | None = None,
        order: str = "added",
    ) -> list[ImageOut]:
        """A page of the images passing ``filters``: newest added first, or by the date
        taken (``order`` ``date``: oldest first, ``-date``: newest first; undated last)."""
        return [ImageOut.of(rec) for rec in self.store.browse(offset, limit, filters, order)]

    def count(self, filters: Filters | None = None) -> int:
        """How many images (pass ``filters``)."""
        return self.store.passing_count(filters) if filters else self.store.count()

    def facets(self) -> Facets:
        """The dates, cameras, places, folders and formats a filter can take, with counts."""
        return self.store.facets()

    def original_path(self, image_id: int) -> Path:
        """The file of an image: its indexed path, or its stored upload."""
        return self.files.original(self.store.get(image_id))

    def thumbnail_path(self, image_id: int) -> Path:
        return self.files.thumb_path(self.store.get(image_id).sha256)

    def stats(self) -> Stats:
        bound = self.store.model()
        catalog_bytes = self.store.size_on_disk()
        return Stats(
            library=str(self.path),
            count=self.store.count(),
            model=bound.name if bound else None,
            dim=bound.dim if bound else None,
            fingerprint=bound.fingerprint if bound else None,
            size_bytes=catalog_bytes + self.files.size_bytes(),
            catalog_bytes=catalog_bytes,
            generation=self.store.generation(),
        )

    # -- searching ------------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 10,
        threshold: float | None = None,
        *,
        paths: bool = True,
        lang: str | None = None,
        filters: Filters | None = None,
        sort: str = "score",
        mode: str | None = None,
    ) -> list[Hit]:
        """Text search with query arithmetic: ``beach + sunset - people``, ``2:cat``, ``#42``.
        ``paths=False`` reads path-looking parts as text, for queries from a client that must
        not make this process read files (the web API). ``lang`` (BCP-47: ``de``, ``pt-BR``)
        is the query's language for models that take one (NLLB-CLIP; default English).
        ``filters`` (``Filters.parse(after="2019", place="Lisbon")``) keeps the k best among
        the images that pass; ``sort="date"``/``"-date"`` orders those k by date taken.
        ``mode``: ``clip``, ``text`` (text read in the images) or ``hybrid`` (both, fused);
        default hybrid when the library holds text, else clip (see ``ocr.ranking``)."""
        chosen = self.search_mode(mode)
        return self.text_search.search(
            query, k, threshold, chosen, paths=paths, lang=lang, filters=filters, sort=sort
        )

    def search_mode(self, mode: str | None = None) -> Mode:
        """The mode a search runs in: ``mode``, or hybrid when the library holds text."""
        return resolve_mode(self.store, mode)

    def similar(
        self,
        image: int | str | Path | bytes,
        k: int = 10,
        threshold: float | None = None,
        *,
        filters: Filters | None = None,
        sort: str = "score",
    ) -> list[Hit]:
        """Images like an indexed one (an ``int`` id, or a path: a ``str`` is never an id) or
        like any image file or bytes. The query image itself is left out; an exact copy of
        it is not. ``filters`` and ``sort`` as in ``search``."""
        return self.searcher.similar(image, k, threshold, filters=filters, sort=sort)

    def duplicates(
        self, threshold: float | None = None, *, filters: Filters | None = None
    ) -> list[DuplicateGroup]:
        """Groups of exact (same bytes) and near (cosine ≥ threshold) duplicates, among the
        images passing ``filters`` (``Filters.parse(folders=[...])``: within folders)."""
        from imagefind.duplicates import find_duplicates

        return find_duplicates(self.store, threshold, filters)
