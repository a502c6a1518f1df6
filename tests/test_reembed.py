"""Re-embedding a library with another model (`Library.reindex`, `imagefind.reembed`): all or
nothing, on both stores."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from imagefind import Library
from imagefind.models import ClipModel, load_model
from imagefind.models.export import export_clip
from tests.modelkit import random_checkpoint
from tests.synth import natural_image


@pytest.fixture(scope="session")
def same_dim_model(tmp_path_factory: pytest.TempPathFactory) -> ClipModel:
    """Another model of the tiny model's dimension: other weights, same shapes."""
    root = tmp_path_factory.mktemp("same-dim")
    return load_model(str(export_clip(random_checkpoint(root / "ckpt", seed=1), root / "m")))


@pytest.fixture(scope="session")
def wider_model(tmp_path_factory: pytest.TempPathFactory) -> ClipModel:
    """A model of another dimension (64 against the tiny model's 32)."""
    root = tmp_path_factory.mktemp("wider")
    checkpoint = random_checkpoint(root / "ckpt", size="shapes", image_size=64)
    return load_model(str(export_clip(checkpoint, root / "m")))


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in range(5):
        out = io.BytesIO()
        natural_image(160, 120, seed=seed).save(out, "JPEG", quality=90)
        (folder / f"{seed}.jpg").write_bytes(out.getvalue())
    return folder


@pytest.fixture
def lib(tmp_path: Path, tiny_model_dir: Path, store: str | None, photos: Path) -> Library:
    library = Library.open(tmp_path / "lib", model=str(tiny_model_dir), store=store)
    assert library.index([photos]).added == 5
    yield library
    library.close()


def _vectors_of(model: ClipModel, lib: Library) -> dict[int, np.ndarray]:
    return {rec.id: model.encode_images([Path(rec.path)])[0] for rec in lib.store.page(0, 100)}


def test_another_dimension_with_a_missing_original(
    lib: Library, photos: Path, wider_model: ClipModel
) -> None:
    """Seen: index 5, delete one file, reindex with a model of another size: every search
    then failed ("stored vectors do not all have dimension N")."""
    gone = lib.store.by_path(str(photos / "3.jpg"))
    (photos / "3.jpg").unlink()
    summary = lib.reindex(wider_model)
    assert summary.reembedded == 4 and summary.model == wider_model.name
    assert [(d.id, d.source) for d in summary.removed] == [(gone.id, gone.path)]
    assert lib.count() == 4 and lib.store.by_path(gone.path) is None
    assert lib.store.model().dim == 64
    hits = lib.search("a photo", k=10)
    assert len(hits) == 4 and gone.id not in [h.id for h in hits]
    assert not lib.files.thumb_path(gone.sha256).exists()


def test_same_dimension_leaves_no_vector_of_the_old_model(
    lib: Library, photos: Path, same_dim_model: ClipModel
) -> None:
    """Seen: with the same dimension, the old vectors of missing files stayed and were
    ranked as if the new model had made them."""
    (photos / "1.jpg").unlink()
    summary = lib.reindex(same_dim_model)
    assert summary.reembedded == 4 and len(summary.removed) == 1
    ids, stored = lib.store.vectors()
    expected = _vectors_of(same_dim_model, lib)
    assert sorted(expected) == list(ids)
    for image_id, vector in zip(ids, stored, strict=True):
        assert float(vector @ expected[int(image_id)]) > 0.999


def test_an_interrupted_reindex_leaves_the_library_as_it_was(
    lib: Library, wider_model: ClipModel, monkeypatch: pytest.MonkeyPatch, store: str | None
) -> None:
    before_ids, before = lib.store.vectors()
    bound, generation = lib.store.model(), lib.store.generation()
    calls = []
    real = wider_model.encode_pixels

    def dies_on_the_second_batch(pixels: np.ndarray) -> np.ndarray:
        calls.append(len(pixels))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(pixels)

    monkeypatch.setattr(wider_model, "encode_pixels", dies_on_the_second_batch)
    with pytest.raises(KeyboardInterrupt):
        lib.reindex(wider_model, batch_size=2)
    assert lib.store.model() == bound and lib.store.generation() == generation
    ids, after = lib.store.vectors()
    assert np.array_equal(ids, before_ids) and np.array_equal(after, before)
    assert len(lib.search("a photo", k=10)) == 5
    with Library.open(lib.path, store=store) as again:  # a new opener sees the old library
        assert again.store.model() == bound and len(again.search("a photo", k=3)) == 3
    monkeypatch.undo()
    assert lib.reindex(wider_model).reembedded == 5  # nothing staged was left behind
