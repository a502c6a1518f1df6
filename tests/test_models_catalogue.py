"""The shipped immich-app zoo catalogue: its data, ``models list --available`` and the error
for a name that is not in it (a fake hub and a fake cache: never the network)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import huggingface_hub
import pytest
from typer.testing import CliRunner

from imagefind.cli import app
from imagefind.cli.app import stdout as cli_stdout
from imagefind.models.catalogue import CatalogueEntry, catalogue, names, sources
from imagefind.models.hub import DEFAULT_MODEL, KNOWN_MODELS
from tests.test_models_hub import cache as cache  # fixture: a fresh IMAGEFIND_CACHE (autouse)

REQUIRED = {"name", "dim", "multilingual", "cached", "image_size", "download_mb", "recall",
            "recall_source"}  # fmt: skip
# A sample of immich's CLIP list (machine-learning/immich_ml/models/constants.py).
IMMICH_SAMPLE = [
    "ViT-B-32__openai", "ViT-B-16-SigLIP2__webli", "nllb-clip-base-siglip__v1",
    "nllb-clip-large-siglip__mrl", "XLM-Roberta-Large-Vit-B-16Plus", "LABSE-Vit-L-14",
    "ViT-SO400M-16-SigLIP2-384__webli", "RN50__openai", "ViT-H-14-378-quickgelu__dfn5b",
    "XLM-Roberta-Large-ViT-H-14__frozen_laion5b_s13b_b90k", "ViT-gopt-16-SigLIP2-384__webli",
]  # fmt: skip


def _run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def _available() -> list[dict]:
    rows = json.loads(_run("models", "list", "--available", "--json"))
    assert isinstance(rows, list)
    return rows


# -- the data ----------------------------------------------------------------------------------


def test_every_entry_has_the_fields_with_consistent_types() -> None:
    entries = catalogue()
    assert len(entries) >= 59
    assert len({e.name for e in entries}) == len(entries)
    for e in entries:
        assert e.name and "/" not in e.name, e
        assert e.dim is None or (isinstance(e.dim, int) and e.dim > 0), e
        assert isinstance(e.multilingual, bool), e
        assert e.image_size is None or (isinstance(e.image_size, int) and e.image_size >= 224), e
        assert e.download_mb is None or e.download_mb > 0, e
        assert e.recall is None or (isinstance(e.recall, float) and 0 < e.recall < 100), e
        # A figure always says whose it is; no figure, no source.
        assert (e.recall is None) == (e.recall_source is None), e
        assert e.recall_source is None or "immich" in e.recall_source, e


@pytest.mark.parametrize("name", IMMICH_SAMPLE)
def test_immich_models_are_listed(name: str) -> None:
    assert name in names()


def test_known_models_and_the_default_are_in_the_catalogue() -> None:
    assert set(KNOWN_MODELS) <= names()
    assert DEFAULT_MODEL in names()


def test_published_figures() -> None:
    """Spot checks against immich's tables (server constants and the docs' English table)."""
    by_name = {e.name: e for e in catalogue()}
    assert by_name["ViT-B-32__openai"].dim == 512
    assert by_name["ViT-B-32__openai"].image_size == 224
    assert by_name["ViT-B-32__openai"].recall == 59.37
    assert by_name["nllb-clip-base-siglip__v1"].dim == 768
    assert by_name["nllb-clip-base-siglip__v1"].image_size == 384
    assert by_name["XLM-Roberta-Large-Vit-B-16Plus"].dim == 640
    assert by_name["XLM-Roberta-Large-Vit-B-16Plus"].recall is None  # not in immich's table
    assert by_name["ViT-SO400M-16-SigLIP2-384__webli"].dim == 1152


@pytest.mark.parametrize(
    ("name", "multilingual"),
    [("nllb-clip-base-siglip__v1", True), ("XLM-Roberta-Large-Vit-B-32", True),
     ("ViT-B-16-SigLIP2__webli", True), ("ViT-B-32__openai", False),
     ("ViT-B-16-SigLIP__webli", False)],
)  # fmt: skip
def test_multilingual_flag(name: str, multilingual: bool) -> None:
    assert {e.name: e for e in catalogue()}[name].multilingual is multilingual


def test_sources_name_every_column() -> None:
    assert {"names", "dim", "image_size", "recall", "download_mb"} <= set(sources())
    assert "searching" in sources()["recall"]


# -- the CLI -----------------------------------------------------------------------------------


def test_available_json_shape() -> None:
    rows = _available()
    assert [r["name"] for r in rows] == [e.name for e in catalogue()]
    for row in rows:
        assert row.keys() >= REQUIRED
        assert row["cached"] is False
    assert CatalogueEntry(**rows[0]).to_json() == rows[0]


def test_cached_flag_follows_the_cache_directory(cache: Path, tiny_model_dir: Path) -> None:
    shutil.copytree(tiny_model_dir, cache / "immich-app__ViT-B-32__openai")
    (cache / "immich-app__ViT-L-14__openai").mkdir()  # an incomplete download is not cached
    cached = {r["name"] for r in _available() if r["cached"]}
    assert cached == {"ViT-B-32__openai"}


@pytest.mark.parametrize("columns", [80, 160])
def test_available_table(
    cache: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    """Every figure readable in an 80-column terminal (long names fold), names whole in a
    wide one."""
    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.setattr(cli_stdout, "_console", None)  # a console made for this width
    shutil.copytree(tiny_model_dir, cache / "immich-app__nllb-clip-base-siglip__v1")
    out = _run("models", "list", "--available")
    row = next(line for line in out.splitlines() if "68.41" in line)  # __v1, cached
    assert row.split()[-7:] == ["NLLB-CLIP", "768", "yes", "384", "2030", "68.41", "yes"]
    assert "…" not in out
    if columns > 100:
        assert "nllb-clip-base-siglip__v1" in out
    assert "Crossmodal-3600" in out
    assert str(cache) in out.replace("\n", "")


def test_plain_list_is_unchanged() -> None:
    data = json.loads(_run("models", "list", "--json"))
    assert {m["name"] for m in data["models"]} == set(KNOWN_MODELS)


# -- a name that is not in the zoo -------------------------------------------------------------


@pytest.fixture
def hub_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**kwargs: object) -> None:
        raise OSError("401 Client Error: Repository Not Found")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)


@pytest.mark.parametrize(
    "args",
    [["models", "download", "NoSuch__model"],
     ["embed", "--text", "cat", "--model", "NoSuch__model"]],
    ids=["download", "--model"],
)  # fmt: skip
def test_unknown_name_is_one_line_pointing_to_the_list(hub_fails: None, args: list[str]) -> None:
    out = _run(*args, code=1).strip()
    assert out.count("\n") == 0, out
    assert out.startswith("Error: model 'NoSuch__model' is not in the immich-app model zoo")
    assert "imagefind models list --available" in out


def test_known_name_offline_keeps_the_offline_help(hub_fails: None, cache: Path) -> None:
    out = _run("models", "download", "ViT-L-14__openai", code=1)
    assert "could not be downloaded" in out and "list --available" not in out


def test_other_owners_are_not_checked(hub_fails: None) -> None:
    out = _run("models", "download", "someone/NoSuch__model", code=1)
    assert "could not be downloaded" in out
