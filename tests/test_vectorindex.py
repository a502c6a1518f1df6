"""vectorindex: ids stay aligned through add/remove, exact scores, persistence."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from imagefind.errors import LibraryError, NotFoundError
from imagefind.stores.vectorindex import VectorIndex, build_for, for_size

DIM = 16


def unit(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def brute(ids: np.ndarray, vecs: np.ndarray, queries: np.ndarray, k: int) -> tuple:
    scores = queries @ vecs.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), ids[order]


@pytest.fixture
def stored() -> tuple[np.ndarray, np.ndarray]:
    ids = np.array([7, 3, 1000, 42, 5, 99, 12345678901, 8], dtype=np.int64)
    return ids, unit(len(ids), seed=1)


@pytest.mark.parametrize("n", [1, 2, 17, 300])
def test_each_vector_finds_itself(n: int) -> None:
    ids = np.random.default_rng(n).choice(10**9, size=n, replace=False).astype(np.int64)
    vecs = unit(n, seed=n)
    index = build_for(ids, vecs)
    assert len(index) == n and index.dim == DIM
    scores, found = index.search(vecs, 1)
    assert found.dtype == np.int64 and scores.dtype == np.float32
    assert np.array_equal(found[:, 0], ids)
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("k", [1, 3, 8])
def test_scores_match_numpy(stored: tuple, k: int) -> None:
    ids, vecs = stored
    index = build_for(ids, vecs)
    queries = unit(5, seed=2)
    scores, found = index.search(queries, k)
    want_scores, want_ids = brute(ids, vecs, queries, k)
    assert scores.shape == found.shape == (5, k)
    assert np.allclose(scores, want_scores, atol=1e-5)
    assert np.array_equal(found, want_ids)
    # each score is the dot product with the vector stored under the returned id
    lookup = dict(zip(ids.tolist(), vecs, strict=True))
    for q, row_ids, row_scores in zip(queries, found, scores, strict=True):
        for i, s in zip(row_ids, row_scores, strict=True):
            assert abs(float(q @ lookup[int(i)]) - float(s)) < 1e-5


def test_remove_then_search(stored: tuple) -> None:
    ids, vecs = stored
    index = build_for(ids, vecs)
    gone = ids[[0, 3, 6]]
    assert index.remove(np.concatenate([gone, [555]])) == 3
    assert len(index) == len(ids) - 3
    for g in gone:
        assert int(g) not in index
    _scores, found = index.search(vecs, len(ids))
    assert found.shape == (len(ids), len(ids) - 3)
    assert not np.isin(found, gone).any()
    keep = ~np.isin(ids, gone)
    _, self_hits = index.search(vecs[keep], 1)
    assert np.array_equal(self_hits[:, 0], ids[keep])  # alignment survives removal
    assert sorted(index.ids().tolist()) == sorted(ids[keep].tolist())


def test_remove_absent_and_empty(stored: tuple) -> None:
    index = build_for(*stored)
    assert index.remove([123456]) == 0
    assert index.remove(np.array([], np.int64)) == 0
    assert len(index) == len(stored[0])


def test_k_larger_than_size(stored: tuple) -> None:
    ids, vecs = stored
    scores, found = build_for(ids, vecs).search(vecs[:2], 1000)
    assert scores.shape == found.shape == (2, len(ids))
    assert (found >= 0).all()
    assert sorted(found[0].tolist()) == sorted(ids.tolist())


@pytest.mark.parametrize("k", [0, -1])
def test_non_positive_k(stored: tuple, k: int) -> None:
    scores, found = build_for(*stored).search(unit(2), k)
    assert scores.shape == found.shape == (2, 0)


def test_empty_index() -> None:
    index = VectorIndex(DIM)
    assert len(index) == 0
    assert 1 not in index
    assert index.ids().shape == (0,)
    scores, found = index.search(unit(3), 5)
    assert scores.shape == found.shape == (3, 0)
    assert scores.dtype == np.float32 and found.dtype == np.int64
    built = build_for(np.empty(0, np.int64), np.empty((0, DIM), np.float32))
    assert len(built) == 0 and built.dim == DIM


def test_single_query_vector(stored: tuple) -> None:
    ids, vecs = stored
    _scores, found = build_for(ids, vecs).search(vecs[2], 1)
    assert found.shape == (1, 1) and found[0, 0] == ids[2]


def test_readd_replaces(stored: tuple) -> None:
    ids, vecs = stored
    index = build_for(ids, vecs)
    new = unit(1, seed=50)
    index.add([ids[4]], new)
    assert len(index) == len(ids)
    assert np.allclose(index.reconstruct(int(ids[4])), new[0])
    _, found = index.search(new, 1)
    assert found[0, 0] == ids[4]


def test_duplicate_ids_in_one_batch_keep_last() -> None:
    vecs = unit(3, seed=3)
    index = build_for(np.array([1, 2, 1]), vecs)
    assert len(index) == 2
    assert np.allclose(index.reconstruct(1), vecs[2])
    assert np.allclose(index.reconstruct(2), vecs[1])


def test_contains_and_reconstruct(stored: tuple) -> None:
    ids, vecs = stored
    index = build_for(ids, vecs)
    assert 42 in index and np.int64(42) in index
    assert 43 not in index and "42" not in index
    assert np.allclose(index.reconstruct(12345678901), vecs[6])
    with pytest.raises(NotFoundError, match="no indexed vector for image id 43"):
        index.reconstruct(43)


@pytest.mark.parametrize(
    ("ids", "vectors"),
    [
        (np.arange(3), unit(3, DIM + 1)),
        (np.arange(2), unit(3)),
        (np.array([-1, 2, 3]), unit(3)),
    ],
    ids=["wrong dim", "count mismatch", "negative id"],
)
def test_bad_adds(ids: np.ndarray, vectors: np.ndarray) -> None:
    index = VectorIndex(DIM)
    with pytest.raises(ValueError):
        index.add(ids, vectors)
    assert len(index) == 0


def test_bad_query_dim(stored: tuple) -> None:
    with pytest.raises(ValueError, match=r"queries must have shape \[N, 16\]"):
        build_for(*stored).search(unit(1, 8), 3)


def test_accepts_float64_and_non_contiguous(stored: tuple) -> None:
    ids, vecs = stored
    index = VectorIndex(DIM)
    index.add(ids[::2], vecs.astype(np.float64)[::2])
    _, found = index.search(np.asfortranarray(vecs[::2]), 1)
    assert np.array_equal(found[:, 0], ids[::2])


def test_save_load_round_trip(tmp_path: Path, stored: tuple) -> None:
    ids, vecs = stored
    index = build_for(ids, vecs)
    index.remove([ids[1]])
    path = tmp_path / "cache" / "index.faiss"
    index.save(path)
    loaded = VectorIndex.load(path)
    assert len(loaded) == len(index) and loaded.dim == DIM
    assert np.array_equal(loaded.ids(), index.ids())
    queries = unit(4, seed=9)
    for a, b in zip(loaded.search(queries, 5), index.search(queries, 5), strict=True):
        assert np.array_equal(a, b)
    loaded.add([ids[1]], vecs[1:2])  # still a working, mutable index
    assert ids[1] in loaded
    assert [p.name for p in path.parent.iterdir()] == ["index.faiss"]  # no temp left


@pytest.mark.parametrize("n", [50, 3000], ids=["flat", "flat-fp16"])
def test_mapped_index_survives_its_file_and_copies_before_a_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    """A loaded index maps the file; the file is replaced (as ``save`` does) or deleted
    under it, and the first change copies the storage (FAISS aborts on resizing a view)."""
    import imagefind.stores.vectorindex as vi

    monkeypatch.setattr(vi, "SMALL_LIMIT", 1000)
    ids, vecs = np.arange(n, dtype=np.int64) * 3, unit(n, seed=5)
    built = vi.build_for(ids, vecs)
    path = tmp_path / "index.faiss"
    built.save(path)
    loaded = VectorIndex.load(path)
    assert loaded.kind == built.kind == ("flat" if n < 1000 else "flat-fp16")
    assert loaded._mapped
    build_for(ids[:1], vecs[:1]).save(path)  # replaced on disk
    (tmp_path / "other").write_bytes(b"x" * 4096)
    path.unlink()
    queries = unit(3, seed=6)
    for a, b in zip(loaded.search(queries, 5), built.search(queries, 5), strict=True):
        assert np.array_equal(a, b)
    assert loaded.remove(ids[:2]) == 2 and not loaded._mapped
    loaded.add([1], vecs[:1])
    assert len(loaded) == n - 1 and 1 in loaded and ids[0] not in loaded
    assert loaded.search(vecs[:1], 1)[1][0, 0] == 1


def test_unmapped_load_is_a_copy(tmp_path: Path, stored: tuple) -> None:
    ids, vecs = stored
    path = tmp_path / "index.faiss"
    build_for(ids, vecs).save(path)
    loaded = VectorIndex.load(path, mapped=False)
    assert not loaded._mapped
    loaded.add([1], vecs[:1])
    assert 1 in loaded and len(loaded) == len(ids) + 1


@pytest.mark.parametrize("content", [b"", b"not a faiss index at all"], ids=["empty", "junk"])
def test_load_bad_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "index.faiss"
    path.write_bytes(content)
    with pytest.raises(LibraryError, match="cannot read vector index") as err:
        VectorIndex.load(path)
    assert str(err.value).startswith(str(path))
    assert "\n" not in str(err.value)


def test_load_missing(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="cannot read vector index"):
        VectorIndex.load(tmp_path / "nope.faiss")


def test_load_other_index_kind(tmp_path: Path) -> None:
    import faiss

    path = tmp_path / "flat.faiss"
    faiss.write_index(faiss.IndexFlatIP(DIM), str(path))
    with pytest.raises(LibraryError, match="not an imagefind vector index"):
        VectorIndex.load(path)


def test_for_size() -> None:
    index = for_size(1_000_000, 512)
    assert isinstance(index, VectorIndex) and index.dim == 512 and len(index) == 0


def test_invalid_dim() -> None:
    with pytest.raises(ValueError):
        VectorIndex(0)


def test_threads_search_while_adding() -> None:
    index = build_for(np.arange(100), unit(100, seed=4))
    errors: list[BaseException] = []

    def searcher() -> None:
        try:
            for _ in range(50):
                _scores, found = index.search(unit(2, seed=5), 10)
                assert (found >= 0).all()
        except BaseException as exc:  # reported below
            errors.append(exc)

    def writer() -> None:
        try:
            for i in range(50):
                index.add([1000 + i], unit(1, seed=i))
                index.remove([i])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=f) for f in (searcher, searcher, writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(index) == 100


def test_ivf_survives_save_and_load(tmp_path, monkeypatch) -> None:
    import imagefind.stores.vectorindex as vi

    monkeypatch.setattr(vi, "SMALL_LIMIT", 10)
    monkeypatch.setattr(vi, "EXACT_LIMIT", 100)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, DIM)).astype(np.float32)
    vecs = centres[rng.integers(0, 20, 3000)] + rng.normal(0, 0.05, (3000, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = np.arange(3000, dtype=np.int64) + 7
    index = vi.build_for(ids, vecs)
    assert index.kind == "ivf"
    index.save(tmp_path / "ivf.faiss")
    loaded = vi.VectorIndex.load(tmp_path / "ivf.faiss")
    assert loaded.kind == "ivf" and loaded.dim == DIM and len(loaded) == 3000
    _, found = loaded.search(vecs[:5], 1)
    assert found[:, 0].tolist() == ids[:5].tolist()


def test_searches_run_beside_writes_without_deadlock() -> None:
    import threading

    rng = np.random.default_rng(3)
    vecs = rng.normal(size=(400, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = build_for(np.arange(200), vecs[:200])
    errors: list[BaseException] = []

    def search() -> None:
        try:
            for i in range(200):
                scores, _ = index.search(vecs[i % 200], 5)
                assert scores.shape[1] == 5
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def write() -> None:
        for i in range(200, 400):
            index.add(np.array([i]), vecs[i : i + 1])
            index.remove(np.array([i - 100]))

    threads = [threading.Thread(target=search) for _ in range(4)] + [threading.Thread(target=write)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads) and not errors
    assert len(index) == 200


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(60, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vecs = centres[rng.integers(0, 60, n)] + rng.normal(0, 0.7 / np.sqrt(dim), (n, dim))
    return (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)


def test_ann_agrees_with_exact_for_text_and_image_queries(monkeypatch, tmp_path) -> None:
    """The IVF index is tuned on text-like probes as well as image-like ones: a caption's
    best match scores ~0.3, and its neighbours spread over many cells."""
    import imagefind.stores.vectorindex as vi

    monkeypatch.setattr(vi, "SMALL_LIMIT", 10)
    monkeypatch.setattr(vi, "EXACT_LIMIT", 100)
    dim = 64
    vecs = _clustered(20_000, dim, seed=1)
    ids = np.arange(len(vecs), dtype=np.int64) + 1
    index = vi.build_for(ids, vecs)
    assert index.kind == "ivf"
    index.save(tmp_path / "ivf.faiss")
    loaded = vi.VectorIndex.load(tmp_path / "ivf.faiss")  # mapped, as a CLI query loads it
    exact = build_for(ids, vecs)
    for cosine in (0.7, 0.3):
        queries = vi.probe_queries(vecs, 300, cosine, seed=99)  # not the tuning probes
        _, truth = exact.search(queries, 10)
        for ann in (index, loaded):
            _, found = ann.search(queries, 10)
            recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)])
            assert recall >= 0.93, (cosine, recall)
    loaded.add([10**9], vecs[:1])  # a mapped IVF index copies itself before a change
    assert 10**9 in loaded and len(loaded) == len(vecs) + 1


def test_a_file_system_that_cannot_map_is_read_instead(tmp_path: Path, monkeypatch) -> None:
    import faiss

    import imagefind.stores.vectorindex as vi

    ids, vecs = np.arange(5, dtype=np.int64), unit(5, seed=2)
    build_for(ids, vecs).save(tmp_path / "i.faiss")
    real = faiss.read_index

    def no_mmap(path: str, flags: int = 0):  # type: ignore[no-untyped-def]
        if flags & faiss.IO_FLAG_MMAP_IFC:
            raise RuntimeError("Error: mmap failed")
        return real(path, flags)

    monkeypatch.setattr(vi.faiss, "read_index", no_mmap)
    loaded = VectorIndex.load(tmp_path / "i.faiss")
    assert not loaded._mapped and len(loaded) == 5
