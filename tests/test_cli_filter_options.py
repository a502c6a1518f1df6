"""The filter options of search, similar and duplicates, through the real CLI on both
stores: what passes, --sort, and bad values as one line with exit code 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imagefind import Library
from imagefind.cli import app
from tests import filterkit


@pytest.fixture
def run(tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, store: str | None):
    root = tmp_path / "photos"
    filterkit.write_photos(root)
    with Library.open(tmp_path / "lib", model=str(tiny_model_dir), store=store) as lib:
        lib.index([root])
        ids = filterkit.stamp(lib.store, root)
    monkeypatch.chdir(root)  # --in takes relative folders
    monkeypatch.setenv("IMAGEFIND_HOME", str(tmp_path / "lib"))
    if store:
        monkeypatch.setenv("IMAGEFIND_STORE", store)
    else:
        monkeypatch.delenv("IMAGEFIND_STORE", raising=False)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> tuple[str, dict[str, int]]:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return (result.stdout if code == 0 else result.stderr), ids

    return invoke


def _hits(out: str) -> list[dict]:
    return json.loads(out)["hits"]


def test_search_filters_and_sorts(run) -> None:
    out, ids = run(
        "search",
        "a photo",
        "-k",
        "20",
        "--in",
        "b",
        "--in",
        "a",
        "--after",
        "2018-07",
        "--before",
        "2021-05-05",
        "--json",
    )
    expected = {
        ids[n]
        for n in (
            "a/02.jpg",
            "a/03.jpg",
            "b/05.jpg",
            "b/06.jpg",
            "b/07.jpg",
            "b/08.jpg",
            "b/deep/09.jpg",
        )
    }
    assert {h["id"] for h in _hits(out)} == expected
    out, _ = run("search", "a photo", "--place", "LISBOA", "--json")
    assert _hits(out) == []  # the name as stored is Lisbon: no guessing
    out, _ = run(
        "search",
        "a photo",
        "--place",
        "lisbon",
        "--camera",
        "EOS R5",
        "--orientation",
        "portrait",
        "--format",
        "jpeg",
        "--json",
    )
    assert [h["id"] for h in _hits(out)] == [ids["b/deep/09.jpg"]]
    out, _ = run("search", "a photo", "-k", "12", "--sort", "-date", "--json")
    taken = {ids[p]: t for p, _, t, *_ in filterkit.PHOTOS}
    dates = [taken[h["id"]] for h in _hits(out)]
    assert dates[:-1] == sorted(dates[:-1], reverse=True) and dates[-1] is None
    plain, _ = run("search", "a photo", "--camera", "iphone")
    assert sorted(line.split("\t")[1] for line in plain.splitlines()) == [
        str(Path.cwd() / "b" / "06.jpg"),
        str(Path.cwd() / "b" / "07.jpg"),
    ]


def test_similar_and_duplicates_take_folders(run) -> None:
    _, ids = run("stats")
    out, _ = run("similar", f"#{ids['a/01.jpg']}", "--in", "bb", "--json")
    assert {h["id"] for h in _hits(out)} == {ids["bb/11.jpg"], ids["bb/12.jpg"]}
    out, _ = run("duplicates", "--in", "bb", "--threshold", "1.0", "--json")
    assert json.loads(out)["groups"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--after", "yesterday-ish"),
            "Error: --after 'yesterday-ish': not a date; use YYYY, "
            "YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]",
        ),
        (
            ("--orientation", "diagonal"),
            "Error: --orientation 'diagonal': unknown orientation; "
            "use one of landscape, portrait, square",
        ),
        (
            ("--after", "2020", "--before", "2019"),
            "Error: --before 2019: earlier than --after 2020",
        ),
        (
            ("--sort", "newest"),
            "Error: --sort 'newest': unknown order; use one of score, date, -date",
        ),
    ],
)
def test_bad_values_are_one_line_and_exit_1(run, args: tuple[str, ...], message: str) -> None:
    err, _ = run("search", "a photo", *args, code=1)
    assert err.startswith(message) and len(err.strip().splitlines()) == 1
