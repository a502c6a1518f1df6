"""The CLI end to end on a generated folder, through typer's runner (real commands, real
library, the tiny model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imagefind.cli import app
from tests.conftest import PHOTO_COUNT

SUMMARY_KEYS = {"added", "updated", "renamed", "removed", "unchanged", "skipped", "encoded"}


@pytest.fixture
def cli(tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
        store: str | None):
    monkeypatch.setenv("IMAGEFIND_HOME", str(tmp_path / "library"))
    if store:  # every command of the test runs on this store (the same suite on each)
        monkeypatch.setenv("IMAGEFIND_STORE", store)
    else:
        monkeypatch.delenv("IMAGEFIND_STORE", raising=False)
    monkeypatch.setenv("IMAGEFIND_MODEL", str(tiny_model_dir))
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result.stdout

    return run


def _index(cli, folder: Path) -> dict:
    summary = json.loads(cli("index", str(folder), "--json"))
    assert summary.keys() >= SUMMARY_KEYS
    return summary


def test_index_reports_and_skips_bad_files(cli, photo_folder: Path) -> None:
    summary = _index(cli, photo_folder)
    assert summary["added"] == PHOTO_COUNT
    skipped = {Path(s["path"]).name: s["reason"] for s in summary["skipped"]}
    assert set(skipped) == {"corrupt.jpg", "notes.jpg"}
    assert "truncated or corrupt" in skipped["corrupt.jpg"]
    assert "not a supported image" in skipped["notes.jpg"]
    stats = json.loads(cli("stats", "--json"))
    assert stats["count"] == PHOTO_COUNT and stats["dim"] == 32


def test_second_index_encodes_nothing(cli, photo_folder: Path) -> None:
    _index(cli, photo_folder)
    again = _index(cli, photo_folder)
    assert again["encoded"] == 0 and again["added"] == 0
    assert again["unchanged"] == PHOTO_COUNT


def test_rename_is_relinked_without_encoding(cli, photo_folder: Path) -> None:
    _index(cli, photo_folder)
    src = photo_folder / "trip" / "IMG_0003.jpg"
    dst = photo_folder / "moved" / "renamed.jpg"
    dst.parent.mkdir()
    src.rename(dst)
    summary = _index(cli, photo_folder)
    assert summary["renamed"] == 1 and summary["encoded"] == 0 and summary["removed"] == 0
    hits = json.loads(cli("similar", str(dst), "-k", "50", "--json"))["hits"]
    assert str(src) not in {h["image"]["source"] for h in hits}


def test_similar_returns_exact_copy_first(cli, photo_folder: Path) -> None:
    _index(cli, photo_folder)
    original = photo_folder / "trip" / "IMG_0000.jpg"
    lines = cli("similar", str(original), "-k", "5").strip().splitlines()
    score, path = lines[0].split("\t")
    assert path == str(photo_folder / "trip" / "IMG_0000-copy.jpg")
    assert float(score) >= 0.999
    assert str(original) not in [line.split("\t")[1] for line in lines]


def test_deleted_file_disappears(cli, photo_folder: Path) -> None:
    _index(cli, photo_folder)
    gone = photo_folder / "shapes" / "red-circle.png"
    gone.unlink()
    summary = _index(cli, photo_folder)
    assert summary["removed"] == 1
    hits = json.loads(cli("search", "a red circle", "-k", "100", "--json"))["hits"]
    assert len(hits) == PHOTO_COUNT - 1
    assert str(gone) not in {h["image"]["source"] for h in hits}


def test_search_output_is_sorted_score_tab_path(cli, photo_folder: Path) -> None:
    _index(cli, photo_folder)
    lines = cli("search", "a green triangle", "-k", "7").strip().splitlines()
    assert len(lines) == 7
    scores = [float(line.split("\t")[0]) for line in lines]
    assert scores == sorted(scores, reverse=True)
    assert all(Path(line.split("\t")[1]).exists() for line in lines)
    high = json.loads(cli("search", "a green triangle", "--threshold", str(scores[2]), "--json"))
    assert all(h["score"] >= scores[2] for h in high["hits"]) and len(high["hits"]) >= 3


def test_json_outputs_parse(cli, photo_folder: Path) -> None:
    _index(cli, photo_folder)
    # Random weights put everything close together: only exact copies pass 1.0.
    groups = json.loads(cli("duplicates", "--threshold", "1.0", "--json"))["groups"]
    assert [g["kind"] for g in groups] == ["exact"]
    assert {Path(i["source"]).name for i in groups[0]["images"]} == {
        "IMG_0000.jpg", "IMG_0000-copy.jpg"}
    hit = json.loads(cli("search", "cat", "-k", "1", "--json"))["hits"][0]
    assert {"id", "score", "image"} <= hit.keys()
    assert {"id", "source", "sha256", "width", "height"} <= hit["image"].keys()
    removed = json.loads(cli("remove", f"#{hit['id']}", "--json"))["removed"]
    assert removed[0]["id"] == hit["id"]


def test_errors_are_one_line_with_exit_code(cli, photo_folder: Path) -> None:
    out = CliRunner().invoke(app, ["remove", "#424242"])
    assert out.exit_code == 1
    assert out.stderr.strip() == "Error: no image with id 424242"
    assert "Traceback" not in out.output
    bad = CliRunner().invoke(app, ["search", "cat +"])
    assert bad.exit_code == 1 and bad.stderr.startswith("Error: ")
    usage = CliRunner().invoke(app, ["search", "cat", "-k", "0"])
    assert usage.exit_code == 2


def test_model_mismatch_is_a_clear_error(cli, photo_folder: Path, tmp_path: Path,
                                         tiny_checkpoint: Path) -> None:
    from imagefind.models.export import export_clip
    from tests.modelkit import random_checkpoint

    _index(cli, photo_folder)
    other = export_clip(random_checkpoint(tmp_path / "ck2", seed=1), tmp_path / "other")
    out = CliRunner().invoke(app, ["search", "cat", "--model", str(other)])
    assert out.exit_code == 1
    assert "reindex --model" in out.stderr and "different model" in out.stderr
    cli("reindex", "--model", str(other))
    stats = json.loads(cli("stats", "--json", "--library", str(tmp_path / "library")))
    assert stats["model"] == str(other)
    assert cli("search", "cat", "--model", str(other), "-k", "1")


def test_real_command_prints_everything_before_its_quick_exit(
    cli, photo_folder: Path, tmp_path: Path
) -> None:
    """``search`` and ``similar`` end without interpreter teardown: run the installed
    command (not the in-process runner) and check that every line still arrives."""
    import subprocess

    from tests.crashkit import imagefind_exe

    _index(cli, photo_folder)
    run = [imagefind_exe()]
    out = subprocess.run([*run, "search", "a red circle", "-k", "5"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.strip().splitlines()) == 5
    photo = next((photo_folder / "trip").glob("IMG_0001.jpg"))
    out = subprocess.run([*run, "similar", str(photo), "-k", "3", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)["hits"]) == 3
    bad = subprocess.run([*run, "search", "cat +"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.startswith("Error: ")


def test_a_bare_number_is_a_path_and_an_id_is_written_with_a_hash(
    cli, photo_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``remove 3`` with a folder called 3 here removes that folder, never image #3."""
    _index(cli, photo_folder / "shapes")
    folder = tmp_path / "3"
    folder.mkdir()
    (folder / "in-three.jpg").write_bytes((photo_folder / "trip" / "IMG_0001.jpg").read_bytes())
    _index(cli, folder)
    monkeypatch.chdir(tmp_path)
    removed = json.loads(cli("remove", "3", "--json"))["removed"]
    assert [Path(r["source"]).name for r in removed] == ["in-three.jpg"]
    assert json.loads(cli("similar", "#3", "-k", "1", "--json"))["query"] == "#3"
    assert json.loads(cli("remove", "#3", "--json"))["removed"][0]["id"] == 3
    for command in ("remove", "similar"):
        out = CliRunner().invoke(app, [command, "#abc"])
        assert out.exit_code == 1
        assert out.stderr.startswith("Error: '#abc' is not an image id: an id is # and digits")
        missing = CliRunner().invoke(app, [command, "#3"])
        assert missing.exit_code == 1 and missing.stderr.strip() == "Error: no image with id 3"


def test_cli_json_and_the_api_print_the_same_objects(
    cli, photo_folder: Path, tmp_path: Path, tiny_model_dir: Path, store: str | None
) -> None:
    """Each ``--json`` output equals its API twin on the same library. ``index --json`` has
    no twin (the API does not index folders). Scores are compared to 1e-5, not exactly:
    the CLI runs its query with quick-start sessions (no graph optimisation), whose float
    rounding may differ in the last digits."""
    from fastapi.testclient import TestClient

    from imagefind.library import Library
    from imagefind.web import create_app

    _index(cli, photo_folder)

    def same(printed: str, served: object) -> None:
        assert json.loads(printed) == _scores_approx(served)

    with (
        Library.open(tmp_path / "library", model=str(tiny_model_dir), store=store) as lib,
        TestClient(create_app(lib)) as api,
    ):
        first, second = (h.id for h in lib.search("anything", k=2))
        same(cli("search", "a red circle", "-k", "5", "--json"),
             api.get("/api/search", params={"q": "a red circle", "k": 5}).json())
        same(cli("similar", f"#{first}", "-k", "5", "--json"),
             api.get(f"/api/images/{first}/similar", params={"k": 5}).json())
        same(cli("duplicates", "--json"), api.get("/api/duplicates").json())
        same(cli("duplicates", "-t", "0.99", "--json"),
             api.get("/api/duplicates", params={"threshold": 0.99}).json())
        same(cli("stats", "--json"), api.get("/api/stats").json())
        image = api.get(f"/api/images/{first}").json()
        same(cli("remove", f"#{first}", "--json"), {"removed": [image]})
        before = api.get(f"/api/images/{second}").json()
        assert api.delete(f"/api/images/{second}").json() == before  # as remove prints each


def _scores_approx(value: object) -> object:
    """JSON data with every ``score`` wrapped in ``pytest.approx``."""
    if isinstance(value, dict):
        return {
            k: pytest.approx(v, abs=1e-5) if k == "score" else _scores_approx(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scores_approx(v) for v in value]
    return value


def test_serve_takes_its_store_as_a_parameter(
    cli, monkeypatch: pytest.MonkeyPatch, store: str | None
) -> None:
    """``serve --store`` used to reach the web app through ``os.environ``, and stayed there."""
    import os

    import uvicorn

    seen: dict[str, object] = {}

    def fake_run(app: object, **kw: object) -> None:
        seen["store"] = type(app.state.imagefind.library.store).__name__  # type: ignore[attr-defined]
        seen["env"] = os.environ.get("IMAGEFIND_STORE")

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.delenv("IMAGEFIND_STORE", raising=False)
    cli("serve", "--port", "9999", *(["--store", store] if store else []))
    assert seen == {"store": "PostgresStore" if store else "EmbeddedStore", "env": None}
    assert "IMAGEFIND_STORE" not in os.environ
