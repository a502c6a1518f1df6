"""Library behaviour that the CLI tests do not reach: arithmetic on built vectors, uploads,
removal, model binding, garbage collection."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

import imagefind
from imagefind import AddResult, ImageError, ImageOut, Library, NotFoundError
from imagefind.records import NewImage
from tests.synth import natural_image


@pytest.fixture(autouse=True)
def _on_each_store(store: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here runs on each store: the variable reaches every ``Library.open``."""
    if store:
        monkeypatch.setenv("IMAGEFIND_STORE", store)
    else:
        monkeypatch.delenv("IMAGEFIND_STORE", raising=False)


@pytest.fixture
def lib(tmp_path: Path, tiny_model_dir: Path) -> Library:
    library = Library.open(tmp_path / "lib", model=str(tiny_model_dir))
    yield library
    library.close()


def _jpeg(seed: int, size: tuple[int, int] = (320, 240)) -> bytes:
    out = io.BytesIO()
    natural_image(*size, seed=seed).save(out, "JPEG", quality=90)
    return out.getvalue()


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def test_query_arithmetic_ranks_as_designed(lib: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    dim = lib.model.dim
    e = np.eye(dim, dtype=np.float32)
    beach, sunset, people = e[0], e[1], e[2]
    rows = {
        "A": _unit(beach + sunset),
        "B": _unit(beach + sunset + people),
        "C": beach,
        "D": people,
    }
    items = [
        NewImage(
            path=f"/virtual/{name}.jpg",
            upload_key=None,
            sha256=name * 64,
            size=1,
            mtime=0.0,
            width=1,
            height=1,
            format="JPEG",
            taken_at=None,
        )
        for name in rows
    ]
    lib.store.add(items, np.stack(list(rows.values())))
    words = {"beach": beach, "sunset": sunset, "people": people}
    monkeypatch.setattr(lib.searcher, "text_vector", lambda text, lang=None: words[text])

    def order(query: str) -> list[str]:
        return [Path(h.image.source).stem for h in lib.search(query, k=4)]

    assert order("beach + sunset")[0] == "A"
    assert order("beach + sunset - people") == ["A", "C", "B", "D"]
    assert order("2:people + beach")[0] == "D"
    assert order("beach - sunset")[0] == "C"
    # An image part by id is left out of its own results.
    a_id = lib.store.by_path("/virtual/A.jpg").id
    assert a_id not in [h.id for h in lib.search(f"#{a_id} + people", k=4)]


def test_uploads_are_content_addressed_and_deduplicated(lib: Library) -> None:
    first = lib.add(_jpeg(1), name="one.jpg")
    again = lib.add(_jpeg(1), name="same-bytes.jpg")
    assert not first.duplicate and again.duplicate and again.id == first.id
    stored = lib.original_path(first.id)
    assert stored.read_bytes() == _jpeg(1)
    assert stored.parent.parent == lib.path / "uploads" and stored.stem == first.image.sha256
    assert lib.thumbnail_path(first.id).is_file()
    thumb = lib.thumbnail_path(first.id)
    lib.remove([first.id])
    assert not stored.exists() and not thumb.exists()
    with pytest.raises(NotFoundError):
        lib.get(first.id)


def test_bad_upload_is_refused_and_others_kept(lib: Library) -> None:
    good, evil, also_good = lib.add_each(
        [("good.jpg", _jpeg(2)), ("evil.png", b"<html></html>"), ("also-good.jpg", _jpeg(3))]
    )
    assert isinstance(good, AddResult) and isinstance(also_good, AddResult)
    assert (good.name, also_good.name) == ("good.jpg", "also-good.jpg")
    assert isinstance(evil, ImageError)
    assert str(evil).startswith("evil.png: ") and "not a supported image" in str(evil)
    assert lib.count() == 2


def test_similar_by_bytes_by_id_and_threshold(lib: Library) -> None:
    ids = [lib.add(_jpeg(s), name=f"{s}.jpg").id for s in range(5)]
    by_id = lib.similar(ids[0], k=10)
    assert ids[0] not in [h.id for h in by_id] and len(by_id) == 4
    by_bytes = lib.similar(_jpeg(0), k=10)
    assert by_bytes[0].id == ids[0] and by_bytes[0].score >= 0.999
    cut = by_id[1].score
    assert all(h.score >= cut for h in lib.similar(ids[0], k=10, threshold=cut))


def test_remove_a_folder_and_collect_orphans(lib: Library, tmp_path: Path) -> None:
    folder = tmp_path / "pics"
    folder.mkdir()
    for s in range(3):
        (folder / f"{s}.jpg").write_bytes(_jpeg(10 + s))
    assert lib.index([folder]).added == 3
    orphan = lib.files.thumb_path("f" * 64)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left by a crash")
    assert lib.collect_garbage() == 1 and not orphan.exists()
    assert len(lib.remove([str(folder)])) == 3 and lib.count() == 0
    assert all(f.exists() for f in folder.iterdir())  # the originals are never touched


def test_another_process_sees_new_images(
    lib: Library, tmp_path: Path, tiny_model_dir: Path
) -> None:
    lib.add(_jpeg(20), name="a.jpg")
    assert len(lib.search("anything", k=10)) == 1
    other = Library.open(lib.path, model=str(tiny_model_dir))
    other.add(_jpeg(21), name="b.jpg")
    other.close()
    assert len(lib.search("anything", k=10)) == 2


def test_stats_and_text_cache(lib: Library) -> None:
    lib.add(_jpeg(30), name="x.jpg")
    stats = lib.stats()
    assert stats.count == 1 and stats.dim == lib.model.dim and stats.size_bytes > 0
    v1 = lib.searcher.text_vector("a red car")
    assert lib.searcher.text_vector("a red car") is v1  # served from the cache


def test_int8_precision_is_cached_and_recorded(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEFIND_CACHE", str(tmp_path / "cache"))
    with Library.open(tmp_path / "lib8", model=str(tiny_model_dir), precision="int8") as lib:
        lib.add(_jpeg(40), name="a.jpg")
        assert lib.stats().model == f"{tiny_model_dir}@int8"
        copies = list((tmp_path / "cache" / "int8").iterdir())
        assert len(copies) == 1
    with Library.open(tmp_path / "lib8") as again:  # reopens the same int8 weights
        assert again.search("a photo", k=1)[0].image.source.startswith("upload:")
        assert again.model.name.endswith("@int8")
    assert len(list((tmp_path / "cache" / "int8").iterdir())) == 1  # made once


def test_uploads_keep_their_names_even_when_names_repeat(lib: Library) -> None:
    results = lib.add_each([("image.png", _jpeg(50)), ("image.png", _jpeg(51))])
    assert all(isinstance(r, AddResult) for r in results) and results[0].id != results[1].id
    assert [r.image.name for r in results] == ["image.png", "image.png"]
    assert lib.get(results[0].id).name == "image.png"


def test_search_without_paths_reads_a_path_as_text(
    lib: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib.add(_jpeg(60), name="a.jpg")
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(_jpeg(61))
    texts: set[str] = set()
    encode = lib.searcher.text_vectors
    monkeypatch.setattr(
        lib.searcher, "text_vectors", lambda t, lang=None: texts.update(t) or encode(t, lang)
    )
    lib.search(f"{photo} + sunset", k=1)
    assert texts == {"sunset"}  # the file is read as an image
    lib.search(f"{photo} + sunset", k=1, paths=False)
    assert texts == {str(photo), "sunset"}  # only text: no file is read


def test_a_string_is_a_path_never_an_id(
    lib: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``remove(["3"])`` with a folder called 3 here removes that folder, not image #3."""
    others = [lib.add(_jpeg(70 + s), name=f"{s}.jpg").id for s in range(3)]
    folder = tmp_path / "3"
    folder.mkdir()
    (folder / "in-three.jpg").write_bytes(_jpeg(80))
    lib.index([folder])
    monkeypatch.chdir(tmp_path)
    removed = lib.remove(["3"])
    assert [Path(r.source).name for r in removed] == ["in-three.jpg"]
    assert sorted(i.id for i in lib.images()) == sorted(others)  # #3 is still there
    with pytest.raises(NotFoundError, match="3: not in the library"):
        lib.remove(["3"])
    assert [r.id for r in lib.remove([3])] == [3]  # an int is an id


def test_images_come_out_as_the_one_public_image_type(lib: Library) -> None:
    added = lib.add(_jpeg(90), name="x.jpg")
    assert imagefind.ImageOut is ImageOut
    got, page = lib.get(added.id), lib.images()
    assert got == added.image and page == [added.image]
    assert isinstance(got.added_at, str) and got.added_at.endswith("+00:00")
    assert lib.remove([added.id]) == [added.image]


def test_add_each_answers_for_each_input_in_order(lib: Library, tmp_path: Path) -> None:
    """A refused path used to be reported before every refused upload, whatever the order."""
    folder = tmp_path / "pics"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(_jpeg(100))
    missing = tmp_path / "missing.jpg"
    outcomes = lib.add_each(
        [
            ("evil.png", b"<html></html>"),
            ("gone", missing),
            ("good.jpg", _jpeg(101)),
            ("pics", folder),
            ("other.jpg", _jpeg(102)),
        ]
    )
    evil, gone, good, pics, other = outcomes
    assert isinstance(evil, ImageError) and str(evil).startswith("evil.png: not a supported")
    assert isinstance(gone, ImageError) and str(gone) == f"{missing}: no such file or folder"
    assert isinstance(good, AddResult) and good.name == "good.jpg" and not good.duplicate
    assert isinstance(pics, ImageError) and "imagefind index" in str(pics)
    assert isinstance(other, AddResult) and other.name == "other.jpg"
    assert lib.count() == 2


def test_add_refuses_a_folder_and_names_it(lib: Library, tmp_path: Path) -> None:
    folder = tmp_path / "pics"
    folder.mkdir()
    for s in range(2):
        (folder / f"{s}.jpg").write_bytes(_jpeg(110 + s))
    with pytest.raises(ImageError, match=f"{folder}: a folder, not an image") as refused:
        lib.add(folder)
    assert f"'imagefind index {folder}'" in str(refused.value)
    with pytest.raises(ImageError, match="a folder"):
        lib.add_many([("one.jpg", folder / "0.jpg"), ("pics", str(folder))])
    assert lib.count() == 1  # the good one is in; nothing of the folder


def test_bytes_without_a_name_have_none(lib: Library) -> None:
    added = lib.add(_jpeg(120))
    assert added.image.name == f"upload {added.image.sha256[:8]}"
    assert lib.get(added.id).name == added.image.name and added.name == added.image.name
