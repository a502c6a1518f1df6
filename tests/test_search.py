"""search: concurrent queries share encoder passes and index scans, and each still gets
exactly the hits it would get alone."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from imagefind import Library
from tests.synth import natural_image

QUERIES = [f"{a} {b}" for a in ("red", "dark", "wet", "old") for b in ("car", "dog", "sea")]


@pytest.fixture
def lib(tmp_path: Path, tiny_model_dir: Path) -> Library:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(30):
        natural_image(160, 120, seed=i).save(photos / f"{i:02d}.jpg", quality=90)
    library = Library.open(tmp_path / "lib", model=str(tiny_model_dir))
    library.index([photos])
    yield library
    library.close()


def _held_first_call(lib: Library) -> threading.Event:
    """Hold the first text encode until every other query has queued behind it."""
    model = lib.model
    encode, release = model.encode_texts, threading.Event()
    first = [True]

    def held(texts: list[str], lang: str | None = None) -> np.ndarray:
        if first[0]:
            first[0] = False
            release.wait(10)
        return encode(texts, lang=lang)

    model.encode_texts = held  # type: ignore[method-assign]
    return release


def test_concurrent_queries_get_their_own_hits_in_shared_batches(lib: Library) -> None:
    alone = {q: [(h.id, h.score) for h in lib.search(q, k=5)] for q in QUERIES}
    lib.searcher.clear_cache()
    release = _held_first_call(lib)
    encodes_before = lib.searcher._encode.batches
    results: dict[str, list[tuple[int, float]]] = {}
    errors: list[BaseException] = []

    def run(q: str, k: int) -> None:
        try:
            results[q] = [(h.id, h.score) for h in lib.search(q, k=k)]
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(q, 5 if i % 2 else 3)) for i, q in enumerate(QUERIES)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(lib.searcher._encode._queue) < len(QUERIES) - 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    for t in threads:
        t.join(30)
    assert not errors
    for i, q in enumerate(QUERIES):
        assert results[q] == alone[q][: 5 if i % 2 else 3]
    assert lib.searcher._encode.batches - encodes_before == 2  # the held one, then the rest


def test_a_failing_query_fails_alone(lib: Library) -> None:
    """A bad vector in a shared index call gets its own error; the others their hits."""
    good = lib.searcher.text_vector("a red car")
    bad = np.ones(7, dtype=np.float32)
    outcomes: dict[str, object] = {}

    def run(name: str, vector: np.ndarray) -> None:
        try:
            outcomes[name] = lib.searcher.search_vector(vector, 3)
        except Exception as exc:
            outcomes[name] = exc

    threads = [threading.Thread(target=run, args=(f"good{i}", good)) for i in range(4)]
    threads.append(threading.Thread(target=run, args=("bad", bad)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert isinstance(outcomes.pop("bad"), ValueError)
    assert all(len(v) == 3 for v in outcomes.values())  # type: ignore[arg-type]


def test_a_large_k_runs_alone_with_the_same_hits(lib: Library) -> None:
    lookups = lib.searcher._lookup.batches
    many = lib.search("a red car", k=150)  # more than SHARED_K: its own index call
    assert lib.searcher._lookup.batches == lookups
    assert [h.id for h in many[:5]] == [h.id for h in lib.search("a red car", k=5)]
    assert len(many) == 30  # every image in the library
