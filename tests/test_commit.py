"""The committer: batches of prepared items become rows in one transaction each; only items
without a vector are encoded; thumbnails and uploads are on disk before their commit; known
content is re-linked or copied with its known vector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imagefind.commit import Committer, Outcome
from imagefind.files import LibraryFiles
from imagefind.prepare import Item
from imagefind.records import NewImage
from imagefind.scanner import FoundFile, Problem
from imagefind.stores import Store
from imagefind.tuning import Tuner
from tests.catalogkit import DIM, unit
from tests.catalogkit import catalog_fixture as catalog_fixture  # fixture: catalog
from tests.catalogkit import item as row


class _Encoder:
    """Records each call; the vectors are fixed per pixel value."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        self.calls.append(len(pixels))
        return unit(100)[pixels[:, 0].astype(int)]


def _item(n: int, *, upload: bool = False, vector: np.ndarray | None = None) -> Item:
    sha = f"{n:064x}"
    path = None if upload else f"/photos/{n}.jpg"
    key, mtime = (sha, None) if upload else (None, 1.0)
    new = NewImage(path, key, sha, 10, mtime, 4, 3, "PNG", None)
    return Item(
        name=path or f"up{n}.png",
        found=None if path is None else FoundFile(path, 10, 1.0),
        data=b"png bytes" if upload else None,
        sha256=sha,
        new=new,
        pixels=np.full(DIM, n, dtype=np.float32),
        vector=vector,
        thumb=b"webp",
    )


def _never(item: Item, out: Outcome) -> bool:
    raise AssertionError(f"{item.name} is not known content")


def test_only_items_without_a_vector_are_encoded(tmp_path: Path, catalog: Store) -> None:
    files = LibraryFiles(tmp_path)
    encoder = _Encoder()
    committer = Committer(catalog, files, Tuner(1, 16, 1), encoder)
    items = [_item(1), _item(2, upload=True), _item(3, vector=unit(100)[3])]
    out = committer.run(items, _never)
    assert encoder.calls == [2] and out.encoded == 3
    assert list(out.results) == ["/photos/1.jpg", "up2.png", "/photos/3.jpg"]
    assert out.added == list(out.results.values())
    _, vectors = catalog.vectors(out.added)
    assert np.allclose(vectors, unit(100)[[1, 2, 3]], atol=2e-3)  # float16 in the store
    assert files.find_upload(f"{2:064x}") is not None  # the upload's original, once
    assert all(files.thumb_path(f"{n:064x}").is_file() for n in (1, 2, 3))
    assert all(it.pixels is None and it.vector is None and it.data is None for it in items)


def test_without_an_encoder_every_item_must_bring_its_vector(
    tmp_path: Path, catalog: Store
) -> None:
    committer = Committer(catalog, LibraryFiles(tmp_path), Tuner(1, 16, 1))
    out = committer.run([_item(1, vector=unit(100)[1])], _never)
    assert out.encoded == 1 and len(out.added) == 1
    with pytest.raises(AssertionError, match="no encoder"):
        committer.run([_item(2)], _never)
    assert catalog.count() == 1


def test_known_content_is_relinked_or_copied(tmp_path: Path, catalog: Store) -> None:
    [first] = catalog.add([row("/photos/a.jpg", sha="s1")], unit(1, seed=4))
    known = catalog.get(first)
    committer = Committer(catalog, LibraryFiles(tmp_path), Tuner(1, 16, 1), _Encoder())
    assert committer.known("s1") == known and committer.known("s2") is None
    moved, copied = (
        Item(name=p, found=FoundFile(p, 123, 2.0), sha256="s1", known=known)
        for p in ("/photos/b.jpg", "/photos/c.jpg")
    )

    def relink(item: Item, out: Outcome) -> bool:
        if item is moved:
            out.renamed.append(known.id)
            return True
        return False

    out = committer.run([moved, copied, Problem("/photos/d.jpg", "broken")], relink)
    assert out.renamed == [first] and len(out.copies) == 1 and out.encoded == 0
    assert out.skipped == [Problem("/photos/d.jpg", "broken")]
    copy = catalog.get(out.copies[0])
    assert (copy.path, copy.sha256, copy.width) == ("/photos/c.jpg", "s1", known.width)
    assert np.array_equal(catalog.vectors(out.copies)[1], catalog.vectors([first])[1])


def test_each_batch_is_one_transaction(
    tmp_path: Path, catalog: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    adds: list[int] = []
    add = catalog.add
    monkeypatch.setattr(
        catalog, "add", lambda rows, vecs: adds.append(len(rows)) or add(rows, vecs)
    )
    steps: list[int] = []
    committer = Committer(
        catalog, LibraryFiles(tmp_path), Tuner(1, 2, 1), _Encoder(), progress=steps.append
    )
    out = committer.run([_item(n) for n in range(5)], _never)
    assert adds == [2, 2, 1] and sum(steps) == 5
    assert (out.batch_size, out.decoders) == (2, 1)
