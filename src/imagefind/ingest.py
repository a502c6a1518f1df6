"""Getting images into a library: folders, incrementally, and uploads, through the
decode-and-encode pipeline. Apart from ``library`` so that a library opened for a query never
imports the image stack; the library hands in the parts it needs (imports run one way:
library → ingest → pipeline → stores)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from imagefind.commit import Outcome
from imagefind.errors import ImageError, ImagefindError
from imagefind.metadata.refill import refill_metadata
from imagefind.pipeline import IndexRunner
from imagefind.prepare import Item
from imagefind.records import ImageRecord
from imagefind.scanner import Problem, RawPairs, walk
from imagefind.schemas import AddResult, ImageOut, IndexSummary, Skipped
from imagefind.stores import Store

# The pipeline for a batch size and a decoder count (``None``: tuned), reporting progress.
RunnerFactory = Callable[[int | None, int | None, Callable[[int], None] | None], IndexRunner]


def index_paths(
    store: Store,
    paths: Sequence[str | Path],
    runner: RunnerFactory,
    *,
    exclude: Path,
    remove: Callable[[list[int]], object],
    collect_garbage: Callable[[], object],
    upload_file: Callable[[str], Path | None] = lambda sha256: None,
    batch_size: int | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    vanished: Sequence[str] = (),
    raw_pairs: RawPairs = "jpeg",
) -> IndexSummary:
    """See :meth:`Library.index`. ``exclude`` is the library's own folder; ``remove`` drops
    rows (and the files no other row shares) of files that are gone; ``collect_garbage``
    clears files a killed run wrote but never committed; ``upload_file`` finds an upload's
    original (by SHA-256) for re-reading metadata that an older release did not record.
    ``vanished`` are paths (files or folders) seen to go away outside ``paths`` (a watcher's
    deletes and the sources of its moves): their rows are re-linked to new files with the
    same content, or pruned."""
    started = time.monotonic()
    summary = IndexSummary()
    candidates: list[Item] = []
    gone: dict[str, list[ImageRecord]] = {}
    for path in vanished:
        for p, row in store.paths_under(os.path.abspath(path)).items():
            if not os.path.lexists(p):
                gone.setdefault(row.sha256, []).append(row)
    listed: set[str] = set()
    for raw in paths:
        root = Path(os.path.abspath(Path(raw).expanduser()))
        existing = store.paths_under(str(root))
        seen: set[str] = set()
        for found in walk(root, exclude=exclude, raw_pairs=raw_pairs):
            if found.path in listed:  # overlapping paths (a folder and a file in it): once
                continue
            listed.add(found.path)
            seen.add(found.path)
            if isinstance(found, Problem):
                summary.skipped.append(Skipped(path=found.path, reason=found.reason))
                continue
            rec = existing.get(found.path)
            if rec is not None and rec.size == found.size and rec.mtime == found.mtime:
                summary.unchanged += 1
            else:
                candidates.append(Item(name=found.path, found=found))
        for p, rec in existing.items():
            if p not in seen and not os.path.lexists(p) and rec not in gone.get(rec.sha256, ()):
                gone.setdefault(rec.sha256, []).append(rec)

    def relink(item: Item, out: Outcome) -> bool:
        assert item.found is not None and item.known is not None
        current = store.by_path(item.found.path)
        if current is None:
            pool = gone.get(item.sha256)
            moved = pool.pop() if pool else _moved_away(store, item.sha256)
            if moved is not None:
                store.relink(moved.id, item.found.path, item.found.size, item.found.mtime)
                out.renamed.append(moved.id)
                return True
        if current is not None and current.sha256 == item.sha256:  # touched, not changed
            store.relink(current.id, item.found.path, item.found.size, item.found.mtime)
            out.updated.append(current.id)
            return True
        return False  # a copy of known content: a new row with the known vector

    total = len(candidates)
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total)

    if progress:
        progress(0, total)
    out = Outcome()
    if candidates:
        try:
            claimed = _claimed(store, candidates, batch_size or 16, step)
            out = runner(batch_size, workers, step).run(claimed, relink)
        finally:
            store.release_claims()
    removed = [rec for recs in gone.values() for rec in recs]
    if removed:
        remove([r.id for r in removed])
    collect_garbage()

    # Rows from before metadata was recorded: their headers read again (the bar goes on).
    def refilled(n: int, more: int) -> None:
        if progress:
            progress(total + n, total + more)

    summary.metadata_read = refill_metadata(store, upload_file, refilled if progress else None)
    summary.added = len(out.added) + len(out.copies)
    summary.copies = len(out.copies)
    summary.updated = len(out.updated)
    summary.renamed = len(out.renamed)
    summary.removed = len(removed)
    summary.encoded = out.encoded
    summary.skipped += [Skipped(path=p.path, reason=p.reason) for p in out.skipped]
    summary.seconds = round(time.monotonic() - started, 3)
    summary.batch_size, summary.decoders = out.batch_size, out.decoders
    return summary


def _moved_away(store: Store, sha256: str) -> ImageRecord | None:
    """A row with this content whose file is gone from a folder that is still there: the
    other half of a move this run was not told about (a watcher hears the two halves of a
    move across folders as a delete and a create, in either order). A file whose folder is
    gone too (an unmounted drive) is not taken."""
    for rec in store.by_sha256(sha256):
        if rec.path and not os.path.lexists(rec.path) and os.path.isdir(os.path.dirname(rec.path)):
            return rec
    return None


def _claimed(
    catalog: Store, items: list[Item], chunk: int, passed: Callable[[int], None]
) -> Iterator[Item]:
    """Claim files a few at a time, just before they are read: indexing workers that
    share a store split a folder instead of encoding its files twice. Files another
    worker holds are passed over (and counted as done for the progress bar)."""
    for start in range(0, len(items), max(1, chunk)):
        part = items[start : start + max(1, chunk)]
        mine = catalog.claim([it.found for it in part if it.found is not None])
        if len(mine) < len(part):
            passed(len(part) - len(mine))
        yield from (it for it in part if it.name in mine)


def add_uploads(
    store: Store, uploads: Sequence[tuple[str | None, bytes | str | Path]], runner: RunnerFactory
) -> list[AddResult | ImagefindError]:
    """See :meth:`Library.add_each`: one outcome per upload, in input order."""
    outcomes: dict[int, AddResult | ImagefindError] = {}
    items, duplicates = [], {}
    for position, (name, data) in enumerate(uploads):
        if isinstance(data, str | Path) and Path(data).is_dir():  # many images: index's job
            outcomes[position] = ImageError(
                f"{data}: a folder, not an image: add takes image files; index a folder with "
                f"'imagefind index {data}' (Library.index)"
            )
            continue
        if isinstance(data, str | Path):
            found = next(walk(Path(data), raw_pairs="both"))  # named on purpose: taken
            if isinstance(found, Problem):
                outcomes[position] = ImageError(f"{found.path}: {found.reason}")
                continue
            items.append(Item(name=name or str(data), key=str(position), found=found))
        else:  # no name: none is stored, and the image shows as "upload <sha256>"
            items.append(Item(name=name or "", key=str(position), data=data))

    def relink(item: Item, out: Outcome) -> bool:
        assert item.known is not None
        if item.found is None:  # the same bytes are already here
            duplicates[item.key] = item.known.id
            return True
        current = store.by_path(item.found.path)
        if current is not None:
            duplicates[item.key] = current.id
            return True
        return False

    out = runner(16, None, None).run(items, relink)
    problems = {problem.key: problem.reason for problem in out.skipped}
    for item in items:
        position = int(item.key)
        image_id = out.results.get(item.key, duplicates.get(item.key))
        if image_id is None:
            label = item.name or f"unnamed upload {position + 1}"
            outcomes[position] = ImageError(f"{label}: {problems[item.key]}")
            continue
        image = ImageOut.of(store.get(image_id))
        outcomes[position] = AddResult(
            name=item.name or image.name,
            id=image_id,
            duplicate=item.key in duplicates,
            image=image,
        )
    return [outcomes[position] for position in range(len(uploads))]
