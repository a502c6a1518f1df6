"""Text in images from the command line, on both stores: ``index --ocr/--no-ocr``,
``search --mode``, ``imagefind ocr``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imagefind.cli import app
from tests.synth import natural_image
from tests.textkit import DEJAVU, render

pytest.importorskip("rapidocr_onnxruntime", reason="the OCR tests need the 'ocr' extra")


@pytest.fixture
def cli(tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, store: str | None):
    monkeypatch.setenv("IMAGEFIND_HOME", str(tmp_path / "library"))
    if store:
        monkeypatch.setenv("IMAGEFIND_STORE", store)
    else:
        monkeypatch.delenv("IMAGEFIND_STORE", raising=False)
    monkeypatch.setenv("IMAGEFIND_MODEL", str(tiny_model_dir))
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result.stdout if code == 0 else result.output

    return run


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    pics = tmp_path / "pics"
    pics.mkdir()
    font = DEJAVU / "DejaVuSans.ttf"
    for name, text in [("wifi.png", "WiFi-Password: Sunflower"), ("ticket.png", "Open Air 2023")]:
        render(text, font, 32, "gradient", 4.0, seed=len(name)).save(pics / name)
    natural_image(320, 240, seed=3).save(pics / "beach.jpg")
    return pics


def _hits(cli, query: str, *options: str) -> list[dict]:
    result = json.loads(cli("search", query, "--json", *options))
    return result["hits"]


def test_index_with_ocr_then_search_each_mode(cli, folder: Path) -> None:
    summary = json.loads(cli("index", str(folder), "--ocr", "--json"))
    assert summary["ocr"]["read"] == 3 and summary["ocr"]["with_text"] == 2
    result = json.loads(cli("search", "wifi", "--json"))
    assert result["mode"] == "hybrid"  # the library has text: hybrid by default
    text = _hits(cli, "password", "--mode", "text")
    assert [Path(h["image"]["path"]).name for h in text] == ["wifi.png"]
    assert "⟦Password⟧" in text[0]["text_match"] and "Sunflower" in text[0]["text"]
    phrase = _hits(cli, '"open air 2023"', "--mode", "text")
    assert [Path(h["image"]["path"]).name for h in phrase] == ["ticket.png"]
    assert _hits(cli, '"air open"', "--mode", "text") == []  # a phrase keeps its order
    clip = _hits(cli, "wifi", "--mode", "clip", "-k", "3")
    assert len(clip) == 3 and -1 <= clip[0]["score"] <= 1
    plain = cli("search", "sunflower", "--mode", "text")
    assert plain.split("\t")[1].endswith("wifi.png") and "⟦Sunflower⟧" in plain


def test_no_ocr_then_the_ocr_command_fills_in(cli, folder: Path) -> None:
    summary = json.loads(cli("index", str(folder), "--json"))
    assert summary["ocr"] is None
    assert json.loads(cli("search", "wifi", "--json"))["mode"] == "clip"
    assert _hits(cli, "wifi", "--mode", "text") == []
    filled = json.loads(cli("ocr", "--json"))
    assert filled["read"] == 3 and filled["errors"] == 0
    assert json.loads(cli("ocr", "--json"))["read"] == 0  # again: nothing left to read
    assert [Path(h["image"]["path"]).name for h in _hits(cli, "wifi", "--mode", "text")] == [
        "wifi.png"
    ]
    render("Museum Ticket", DEJAVU / "DejaVuSans.ttf", 30, "plain", 0, 1).save(folder / "m.png")
    again = json.loads(cli("index", str(folder), "--json"))  # ocr turned it on: remembered
    assert again["ocr"]["read"] == 1
    off = json.loads(cli("index", str(folder), "--no-ocr", "--json"))
    assert off["ocr"] is None


def test_an_unknown_mode_is_one_line_and_exit_1(cli, folder: Path) -> None:
    cli("index", str(folder))
    out = cli("search", "wifi", "--mode", "fuzzy", code=1)
    assert "mode 'fuzzy': unknown; choose one of hybrid, clip, text" in out
