"""Ingest takes the library's parts, not the library: imports run one way (library → ingest
→ pipeline → stores), and a run needs only a store, a runner and two callbacks."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import imagefind
from imagefind.errors import ImagefindError
from imagefind.files import LibraryFiles
from imagefind.ingest import add_uploads, index_paths
from imagefind.models.layout import PreprocessConfig
from imagefind.models.preprocess import Preprocessor
from imagefind.pipeline import IndexRunner, Pipeline
from imagefind.schemas import AddResult
from imagefind.stores import Store
from tests.catalogkit import catalog_fixture as catalog_fixture  # fixture: catalog
from tests.catalogkit import fake_encode
from tests.imagekit import encode
from tests.synth import natural_image

CONFIG = PreprocessConfig(size=64, mean=(0.5,) * 3, std=(0.5,) * 3)


def _runner(catalog: Store, files: LibraryFiles) -> Callable[..., IndexRunner]:
    def make(
        batch_size: int | None, workers: int | None, progress: Callable[[int], None] | None
    ) -> IndexRunner:
        return Pipeline(
            catalog, files, fake_encode, Preprocessor(CONFIG), CONFIG.size, progress=progress
        )

    return make


def test_ingest_does_not_import_the_library() -> None:
    src = str(Path(imagefind.__file__).parents[1])
    code = "import sys, imagefind.ingest; print(sorted(m for m in sys.modules if 'library' in m))"
    env = {**os.environ, "PYTHONPATH": src}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_index_paths_with_the_library_parts(tmp_path: Path, catalog: Store) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for n in range(3):
        natural_image(200, 150, seed=n).save(photos / f"{n}.jpg", quality=90)
    files = LibraryFiles(tmp_path / "lib")
    removed: list[list[int]] = []
    collections: list[int] = []

    def index() -> imagefind.IndexSummary:
        return index_paths(
            catalog,
            [photos],
            _runner(catalog, files),
            exclude=tmp_path / "lib",
            remove=lambda ids: removed.append(ids) or catalog.remove(ids),
            collect_garbage=lambda: collections.append(1),
        )

    first = index()
    gone = catalog.by_path(str(photos / "2.jpg"))
    (photos / "2.jpg").unlink()
    (photos / "0.jpg").rename(photos / "moved.jpg")
    second = index()
    assert (first.added, first.encoded) == (3, 3)
    assert (second.renamed, second.removed, second.unchanged, second.encoded) == (1, 1, 1, 0)
    assert gone is not None and removed == [[gone.id]] and collections == [1, 1]


def test_add_uploads_with_the_library_parts(tmp_path: Path, catalog: Store) -> None:
    files = LibraryFiles(tmp_path / "lib")
    data = encode(natural_image(120, 90, seed=1), "PNG")
    uploads = [("a.png", data), ("c.png", b"nope")]
    # One outcome per upload, in input order (add_uploads answers like Library.add_each).
    first, bad = add_uploads(catalog, uploads, _runner(catalog, files))
    [again] = add_uploads(catalog, uploads[:1], _runner(catalog, files))
    assert isinstance(first, AddResult) and (first.name, first.duplicate) == ("a.png", False)
    assert isinstance(bad, ImagefindError)
    assert str(bad) == "c.png: not a supported image (content is not a supported image format)"
    assert isinstance(again, AddResult) and again.duplicate and again.id == first.id
    assert files.find_upload(first.image.sha256) is not None
