"""The in-process pipeline: decoders run ahead of the encoder by a bounded amount, in order;
known content is recognised before decoding; files written ahead of a commit are never taken
for a crash's orphans while the run goes on."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from imagefind.commit import Outcome
from imagefind.files import LibraryFiles
from imagefind.models.layout import PreprocessConfig
from imagefind.models.preprocess import Preprocessor
from imagefind.pipeline import IndexRunner, Pipeline, bounded_map
from imagefind.prepare import Item
from imagefind.records import NewImage
from imagefind.scanner import FoundFile, walk
from imagefind.stores import Store
from tests.catalogkit import catalog_fixture as catalog_fixture  # fixture: catalog
from tests.catalogkit import fake_encode
from tests.synth import natural_image


def test_bounded_map_keeps_order_and_reads_ahead_a_bounded_amount() -> None:
    lock = threading.Lock()
    started: list[int] = []
    taken = 0

    def work(n: int) -> int:
        with lock:
            started.append(n)
            assert len(started) - taken <= 3  # never more than ``ahead`` in flight
        return n * n

    results = []
    for value in bounded_map(work, range(20), workers=4, ahead=lambda: 3):
        results.append(value)
        taken += 1
    assert results == [n * n for n in range(20)]


def test_a_run_recognises_known_content_and_guards_its_files(
    tmp_path: Path, catalog: Store
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for n in range(3):
        natural_image(300, 200, seed=n).save(photos / f"{n}.jpg", quality=90)
    (photos / "3.jpg").write_bytes((photos / "0.jpg").read_bytes())
    files = LibraryFiles(tmp_path / "lib")
    collected: list[int] = []
    add = catalog.add

    def add_after_a_collection(rows: list[NewImage], vectors: np.ndarray) -> list[int]:
        collected.append(files.collect_garbage(set()))  # the thumbnails await this commit
        return add(rows, vectors)

    catalog.add = add_after_a_collection  # type: ignore[method-assign]

    def relink(item: Item, out: Outcome) -> bool:
        return False  # a copy: a new row with the known vector

    config = PreprocessConfig(size=64, mean=(0.5,) * 3, std=(0.5,) * 3)
    pipe: IndexRunner = Pipeline(catalog, files, fake_encode, Preprocessor(config), config.size)
    items = [Item(name=f.path, found=f) for f in walk(photos) if isinstance(f, FoundFile)]
    first = pipe.run(items[:3], relink)
    again = pipe.run(items[3:], relink)
    assert collected == [0, 0] and first.encoded == 3 and len(first.added) == 3
    assert all(files.thumb_path(catalog.get(i).sha256).is_file() for i in first.added)
    assert again.encoded == 0 and len(again.copies) == 1
