"""Remembered roots on each store: index records folders, index alone re-scans them, roots
lists them with counts and scan times, roots remove forgets one and its images (files kept)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imagefind import Library
from imagefind.cli import app
from imagefind.errors import LibraryError, NotFoundError
from tests.synth import natural_image


@pytest.fixture(autouse=True)
def _on_each_store(store: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if store:
        monkeypatch.setenv("IMAGEFIND_STORE", store)
    else:
        monkeypatch.delenv("IMAGEFIND_STORE", raising=False)


def _photos(folder: Path, count: int, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        natural_image(96, 64, seed=seed + i).save(folder / f"p{i}.jpg", quality=90)
    return folder


@pytest.fixture
def lib(tmp_path: Path, tiny_model_dir: Path) -> Library:
    library = Library.open(tmp_path / "lib", model=str(tiny_model_dir))
    yield library
    library.close()


def test_index_remembers_folders_and_rescans_them(lib: Library, tmp_path: Path) -> None:
    a = _photos(tmp_path / "a", 3, seed=1)
    b = _photos(tmp_path / "b", 2, seed=10)
    lib.index([a])
    lib.index([b / "p0.jpg"])  # a file is not a root
    assert [r.path for r in lib.roots.all()] == [str(a)]
    lib.index([b])
    roots = {r.path: r for r in lib.roots.all()}
    assert {p: r.images for p, r in roots.items()} == {str(a): 3, str(b): 2}
    assert all(r.exists and r.scanned_at for r in roots.values())
    _photos(a / "new", 1, seed=20)
    (b / "p1.jpg").unlink()
    summary = lib.index()  # no paths: every root
    assert (summary.added, summary.removed, summary.unchanged) == (1, 1, 4)
    assert {r.path: r.images for r in lib.roots.all()} == {str(a): 4, str(b): 1}


def test_roots_never_nest(lib: Library, tmp_path: Path) -> None:
    top = tmp_path / "top"
    _photos(top / "x", 1, seed=1)
    _photos(top / "y", 1, seed=2)
    lib.index([top / "x"])
    lib.index([top / "y"])
    lib.index([top])  # holds both: replaces them
    assert [r.path for r in lib.roots.all()] == [str(top)]
    lib.index([top / "x"])  # inside a root: nothing new
    assert [r.path for r in lib.roots.all()] == [str(top)]
    assert lib.roots.all()[0].images == 2


def test_missing_root_keeps_its_images(lib: Library, tmp_path: Path) -> None:
    a = _photos(tmp_path / "a", 2, seed=1)
    lib.index([a])
    hidden = tmp_path / "unplugged"
    a.rename(hidden)  # an unmounted drive looks like this
    summary = lib.index()
    assert summary.removed == 0 and lib.count() == 2
    assert "folder is missing" in summary.skipped[0].reason
    assert lib.roots.all()[0].exists is False
    hidden.rename(a)


def test_remove_root_removes_images_not_files(lib: Library, tmp_path: Path) -> None:
    a = _photos(tmp_path / "a", 2, seed=1)
    b = _photos(tmp_path / "b", 1, seed=5)
    lib.index([a])
    lib.index([b])
    removed = lib.roots.remove(a)
    assert len(removed) == 2 and lib.count() == 1
    assert [r.path for r in lib.roots.all()] == [str(b)]
    assert sorted(p.name for p in a.iterdir()) == ["p0.jpg", "p1.jpg"]
    with pytest.raises(NotFoundError, match=r"not a root of this library \(roots: "):
        lib.roots.remove(a)


def test_index_without_roots_says_how(lib: Library) -> None:
    with pytest.raises(LibraryError, match="imagefind index FOLDER"):
        lib.index()


def test_cli_roots(tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEFIND_HOME", str(tmp_path / "library"))
    monkeypatch.setenv("IMAGEFIND_MODEL", str(tiny_model_dir))
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result.stdout

    assert "no folders yet" in CliRunner().invoke(app, ["index"]).output
    a = _photos(tmp_path / "a", 2, seed=1)
    run("index", str(a), "--json")
    (a / "p0.jpg").unlink()
    again = json.loads(run("index", "--json"))
    assert again["removed"] == 1
    roots = json.loads(run("roots", "--json"))
    assert [(r["path"], r["images"], r["exists"]) for r in roots] == [(str(a), 1, True)]
    assert roots[0]["scanned_at"] is not None
    assert f"{a}\t1 images\tscanned " in run("roots")
    assert "1 image(s) removed" in run("roots", "remove", str(a))
    assert json.loads(run("roots", "--json")) == []
    assert (a / "p1.jpg").exists()
    out = runner.invoke(app, ["roots", "remove", str(a)])
    assert out.exit_code == 1 and "not a root of this library" in out.output
    shutil.rmtree(a)
