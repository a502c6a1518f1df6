"""Hostile files: every file of a generated corpus (tests/hostile.py) is either indexed
correctly or skipped with its reason; the run never crashes and nothing else is lost. The same
corpus goes through uploads (library and HTTP), and broken model files give clear errors."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from imagefind.errors import ImagefindError, ModelError
from imagefind.library import Library
from imagefind.models import load_model
from imagefind.schemas import IndexSummary
from tests.hostile import Corpus, Expect, image_files, make_corpus, upright
from tests.test_reliability_crash import cli_env, imagefind_exe

ROOT_READS_ANYTHING = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    made = make_corpus(tmp_path_factory.mktemp("hostile") / "corpus")
    yield made
    for path in made.root.rglob("*"):  # let pytest clean up the 000 file
        if not path.is_symlink() and path.is_file():
            path.chmod(0o644)


def deny_reading(monkeypatch: pytest.MonkeyPatch, denied: Path) -> None:
    """Root reads a chmod 000 file anyway: make it fail as it does for everyone else."""
    real = pathlib.Path.read_bytes

    def read_bytes(self: pathlib.Path) -> bytes:
        if os.path.abspath(self) == str(denied):
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(pathlib.Path, "read_bytes", read_bytes)


def check_summary(
    summary: IndexSummary, lib: Library, expect: dict[str, Expect]
) -> tuple[int, int]:
    """Every expectation met, nothing unexpected; returns (indexed, skipped) counts."""
    skipped = {s.path: s.reason for s in summary.skipped}
    indexed = {r.path for r in lib.images(0, 10_000)}
    wrong = []
    for path, exp in expect.items():
        if exp.outcome == "indexed" and path not in indexed:
            wrong.append(f"{path!r}: expected indexed, got {skipped.get(path, 'nothing')!r}")
        elif exp.outcome == "skipped" and exp.reason not in skipped.get(path, "\0"):
            got = "indexed" if path in indexed else skipped.get(path, "nothing")
            wrong.append(f"{path!r}: expected skipped for {exp.reason!r}, got {got!r}")
    assert not wrong, "\n".join(wrong)
    assert set(skipped) <= set(expect), f"skipped, not in the corpus: {set(skipped) - set(expect)}"
    assert indexed <= set(expect), f"indexed, not in the corpus: {indexed - set(expect)}"
    assert not [r for r in skipped.values() if "unexpected error" in r], skipped
    for rec in lib.images(0, 10_000):  # each row has its thumbnail
        assert lib.thumbnail_path(rec.id).is_file(), rec.path
    assert summary.added == len(indexed) == lib.count()
    return len(indexed), len(skipped)


def test_hostile_corpus_indexes_or_skips_every_file(
    corpus: Corpus, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expect = dict(corpus.expect)
    locked = corpus.root / "fs" / "locked.jpg"
    if ROOT_READS_ANYTHING:
        deny_reading(monkeypatch, locked)
    # A file that vanishes between the folder listing and the read.
    vanishing = corpus.root / "fs" / "vanishing.jpg"
    shutil.copy(corpus.root / "fs" / "real.jpg", vanishing)
    expect[str(vanishing)] = Expect("skipped", "No such file or directory")
    import imagefind.ingest as ingest_module

    real_walk = ingest_module.walk

    def walk_then_delete(*args: object, **kw: object) -> Iterator[object]:
        yield from real_walk(*args, **kw)  # type: ignore[arg-type]
        vanishing.unlink(missing_ok=True)

    monkeypatch.setattr(ingest_module, "walk", walk_then_delete)

    with Library.open(tmp_path / "lib", model=str(tiny_model_dir)) as lib:
        summary = lib.index([corpus.root])
        indexed, skipped = check_summary(summary, lib, expect)
        # The run after: nothing changes, nothing crashes, nothing already indexed is lost.
        again = lib.index([corpus.root])
        assert again.added == again.encoded == again.removed == 0
        assert again.unchanged == indexed and lib.count() == indexed
    print(
        f"\nhostile corpus: {len(expect)} inputs, {indexed} indexed, {skipped} skipped "
        f"with a reason, 0 crashes"
    )


def test_exif_orientations_embed_like_the_upright_original(
    corpus: Corpus, tiny_model_dir: Path, tmp_path: Path
) -> None:
    model = load_model(str(tiny_model_dir))
    reference = model.encode_images([upright()])[0]
    with Library.open(tmp_path / "lib", model=model) as lib:
        lib.index([corpus.root / f"orientation-{o}.jpg" for o in range(1, 9)])
        assert lib.count() == 8
        worst = 1.0
        for rec in lib.images(0, 8):
            assert (rec.width, rec.height) == (160, 120), rec.path  # recorded upright
            _, vectors = lib.store.vectors([rec.id])
            cosine = float(vectors[0] @ reference)  # both L2-normalised
            assert cosine >= 0.99, f"{rec.path}: cosine {cosine:.4f} to the upright original"
            worst = min(worst, cosine)
    print(f"\nEXIF orientations 1-8: worst cosine to the upright original {worst:.4f}")


def test_embed_cli_orients_too(corpus: Corpus, tiny_model_dir: Path) -> None:
    files = [str(corpus.root / f"orientation-{o}.jpg") for o in (1, 6, 8)]
    run = subprocess.run(
        [imagefind_exe(), "embed", *files, "--model", str(tiny_model_dir), "--json"],
        env=cli_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    vectors = [np.asarray(json.loads(line)["embedding"]) for line in run.stdout.splitlines()]
    assert len(vectors) == 3
    assert min(float(v @ vectors[0]) for v in vectors) >= 0.99


@pytest.mark.slow
def test_cli_index_of_the_corpus_never_crashes(
    corpus: Corpus, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """The real command, human and JSON output: exit 0, each skip reported with its reason
    (the file name that is not UTF-8 included)."""
    library = tmp_path / "lib"
    args = [imagefind_exe(), "index", str(corpus.root), "--library", str(library)]
    args += ["--model", str(tiny_model_dir)]
    run = subprocess.run([*args, "--json"], env=cli_env(), capture_output=True, timeout=300)
    assert run.returncode == 0, run.stderr.decode()
    summary = json.loads(run.stdout)
    reasons = {s["path"]: s["reason"] for s in summary["skipped"]}
    for path, exp in corpus.expect.items():
        if exp.outcome == "skipped" and not (ROOT_READS_ANYTHING and path.endswith("locked.jpg")):
            assert exp.reason in reasons.get(path, ""), (path, reasons.get(path))
    (library / "catalog.sqlite3").unlink()  # again, human output this time
    run = subprocess.run(args, env=cli_env(), capture_output=True, timeout=300)
    assert run.returncode == 0, run.stderr.decode()
    assert b"skipped" in run.stdout and b"Traceback" not in run.stdout + run.stderr
    assert b"not valid UTF-8" in run.stdout


def test_uploads_of_the_corpus_are_added_or_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The same bytes as uploads: each gives a result or an ImagefindError naming it."""
    files = image_files()
    with Library.open(tmp_path / "lib", model=str(tiny_model_dir)) as lib:
        outcomes = lib.add_each([(name, data) for name, (data, _) in files.items()])
        assert len(outcomes) == len(files)
        for (name, (_, exp)), outcome in zip(files.items(), outcomes, strict=True):
            if exp.outcome == "indexed":
                assert not isinstance(outcome, ImagefindError), (name, str(outcome))
                assert outcome.name == name
            else:
                assert isinstance(outcome, ImagefindError), name
                assert str(outcome).startswith(f"{name}: ") and exp.reason in str(outcome)
        for name, (data, exp) in files.items():  # one at a time too: raises only our errors
            try:
                lib.add(data, name=name)
            except ImagefindError:
                assert exp.outcome == "skipped"


@pytest.mark.slow
def test_http_uploads_of_the_corpus_never_500(tiny_model_dir: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from imagefind.web import create_app

    files = image_files()
    with (
        Library.open(tmp_path / "lib", model=str(tiny_model_dir)) as lib,
        TestClient(create_app(lib), raise_server_exceptions=False) as client,
    ):
        for name, (data, exp) in files.items():
            r = client.post("/api/images", files=[("files", (name, data, "image/jpeg"))])
            if exp.outcome == "indexed":
                assert r.status_code in (200, 201), (name, r.text)
            else:
                assert r.status_code in (413, 415, 422), (name, r.status_code, r.text)
                assert exp.reason in r.json()["detail"], (name, r.text)
            r = client.post("/api/search/image", files=[("file", (name, data, "image/png"))])
            assert r.status_code < 500, (name, r.status_code, r.text)
            assert (r.status_code == 200) == (exp.outcome == "indexed"), (name, r.text)


# -- model files -----------------------------------------------------------------------------
# tests/test_models_errors.py covers empty, random and text model.onnx files, and
# tests/test_models_hub.py partial and corrupt downloads (cleared, retried once, then a clear
# error). What is added here: a real graph cut short, and what the CLI prints for it.


def _truncated_copy(tiny_model_dir: Path, tmp_path: Path, sub: str) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(tiny_model_dir, copy)
    onnx_path = copy / sub / "model.onnx"
    data = onnx_path.read_bytes()
    onnx_path.write_bytes(data[: len(data) * 2 // 3])
    return copy


@pytest.mark.parametrize("sub", ["visual", "textual"])
def test_truncated_onnx_is_a_clear_model_error(
    tiny_model_dir: Path, tmp_path: Path, sub: str
) -> None:
    model = load_model(str(_truncated_copy(tiny_model_dir, tmp_path, sub)))
    with pytest.raises(ModelError) as info:
        if sub == "visual":
            model.encode_images([upright()])
        else:
            model.encode_texts(["a dog"])
    message = str(info.value)
    assert f"{sub}/model.onnx" in message and "not a valid ONNX model" in message


def test_cli_with_a_truncated_model_says_so(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = _truncated_copy(tiny_model_dir, tmp_path, "textual")
    run = subprocess.run(
        [imagefind_exe(), "search", "a dog", "--library", str(tmp_path / "lib"),
         "--model", str(model)],
        env=cli_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 1
    assert run.stderr.startswith("Error: ") and "textual/model.onnx" in run.stderr
    assert "Traceback" not in run.stderr
