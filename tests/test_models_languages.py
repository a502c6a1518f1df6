"""A query's language reaches NLLB-CLIP from every face: the library, the CLI (``--lang``,
IMAGEFIND_LANG) and the HTTP API (``lang``); the other families ignore it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from imagefind.cli import app
from imagefind.library import Library
from imagefind.models import load_model
from imagefind.web import create_app
from tests.familykit import mclip_fixture as mclip_fixture  # fixture: mclip
from tests.familykit import nllb_fixture as nllb_fixture  # fixture: nllb
from tests.synth import natural_image

TEXTS = ["ein Hund am Strand", "Sonnenuntergang"]


def _photos(root: Path) -> Path:
    root.mkdir()
    for i in range(4):
        natural_image(96, 72, seed=i).save(root / f"{i}.jpg")
    return root


@pytest.fixture
def nllb_lib(nllb: tuple, tmp_path: Path) -> Iterator[Library]:
    photos = _photos(tmp_path / "photos")
    with Library.open(tmp_path / "lib", model=str(nllb[0])) as lib:
        lib.index([photos])
        yield lib


def _embed(model_dir: Path, *args: str, env: dict[str, str] | None = None) -> list[dict]:
    argv = ["embed", "--model", str(model_dir), "--json"]
    for t in TEXTS:
        argv += ["--text", t]
    result = CliRunner().invoke(app, [*argv, *args], env=env)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("family", ["tiny_model_dir", "mclip", "nllb"])
def test_embed_json_for_every_family(family: str, request: pytest.FixtureRequest) -> None:
    found = request.getfixturevalue(family)
    model_dir = found if isinstance(found, Path) else found[0]
    rows = _embed(model_dir, "--lang", "de")
    assert [(r["input"], r["kind"]) for r in rows] == [(t, "text") for t in TEXTS]
    expected = load_model(str(model_dir)).encode_texts(TEXTS, lang="de")
    assert np.abs(np.array([r["embedding"] for r in rows]) - expected).max() < 1e-6


def test_embed_lang_from_the_environment(nllb: tuple) -> None:
    german = _embed(nllb[0], "--lang", "de")
    assert _embed(nllb[0], env={"IMAGEFIND_LANG": "de"}) == german
    assert _embed(nllb[0]) != german


def test_embed_unknown_language_is_an_error_line(nllb: tuple) -> None:
    argv = ["embed", "--model", str(nllb[0]), "--lang", "xx-Klingon", "--text", "Hund"]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 1
    line = result.output.strip()
    assert line.startswith("Error: ") and "\n" not in line
    assert "'xx-Klingon' is not known" in line and str(nllb[0]) in line


def test_library_search_in_a_language(nllb_lib: Library) -> None:
    german = nllb_lib.search("Hund", k=4, lang="de")
    english = nllb_lib.search("Hund", k=4)
    model = nllb_lib.model
    vector = model.encode_texts(["Hund"], lang="de")[0]
    assert german[0].score == pytest.approx(float(vector @ nllb_lib.store.vectors(
        [german[0].id])[1][0]), abs=1e-3)  # fmt: skip
    assert [h.score for h in german] != [h.score for h in english]
    # Cached per language: the English vector is not served for German.
    assert nllb_lib.search("Hund", k=4, lang="de") == german


def test_cli_search_lang(nllb: tuple, tmp_path: Path) -> None:
    lib = ["-L", str(tmp_path / "lib"), "--model", str(nllb[0])]
    indexed = CliRunner().invoke(app, ["index", str(_photos(tmp_path / "photos")), *lib])
    assert indexed.exit_code == 0, indexed.output
    base = ["search", "Hund", *lib, "--json", "-k", "4"]
    german = CliRunner().invoke(app, [*base, "--lang", "de"])
    english = CliRunner().invoke(app, base)
    assert german.exit_code == english.exit_code == 0, german.output + english.output
    assert german.stdout != english.stdout


def test_http_search_lang(nllb_lib: Library) -> None:
    with TestClient(create_app(nllb_lib)) as client:
        german = client.get("/api/search", params={"q": "Hund", "lang": "de"})
        english = client.get("/api/search", params={"q": "Hund"})
        bad = client.get("/api/search", params={"q": "Hund", "lang": "klingon"})
    assert german.status_code == english.status_code == 200
    assert german.json()["hits"] != english.json()["hits"]
    assert bad.status_code == 422 and "'klingon' is not known" in bad.json()["detail"]
