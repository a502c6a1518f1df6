"""The DATA forms of ``imagefind finetune``, their bad rows, the split and the pixels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagefind.finetune import FinetuneError
from imagefind.finetune.data import (
    PixelBatches,
    detect_form,
    load_pairs,
    preprocess_config,
    split,
)
from imagefind.models.preprocess import Preprocessor
from tests.synth import shape_image

RED, BLUE = (220, 30, 30), (30, 60, 220)


def _img(path: Path, colour=RED, shape: str = "circle", seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape_image(colour, shape, size=48, seed=seed).save(path)
    return path


def _corrupt(path: Path) -> Path:
    _img(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def _reasons(pairs) -> dict[str, str]:
    return {Path(b.where).name: b.reason for b in pairs.bad}


def test_sidecar_captions(tmp_path: Path) -> None:
    _img(tmp_path / "a.png")
    (tmp_path / "a.txt").write_text("  a red\n circle \n")
    _img(tmp_path / "sub" / "b.png", BLUE, "square")
    (tmp_path / "sub" / "b.txt").write_text("a blue square")
    pairs = load_pairs(tmp_path)
    assert pairs.form == "captions" and not pairs.bad
    assert [(p.path.name, p.caption) for p in pairs.pairs] == [
        ("a.png", "a red circle"),
        ("b.png", "a blue square"),
    ]


def test_sidecar_bad_rows_are_reported_and_skipped(tmp_path: Path) -> None:
    _img(tmp_path / "good.png")
    (tmp_path / "good.txt").write_text("a red circle")
    _img(tmp_path / "nocaption.png")
    _img(tmp_path / "empty.png")
    (tmp_path / "empty.txt").write_text("  \n")
    _corrupt(tmp_path / "broken.png")
    (tmp_path / "broken.txt").write_text("a broken image")
    (tmp_path / "fake.jpg").write_text("not an image")
    (tmp_path / "fake.txt").write_text("text pretending")
    pairs = load_pairs(tmp_path)
    assert [p.path.name for p in pairs.pairs] == ["good.png"]
    reasons = _reasons(pairs)
    assert set(reasons) == {"nocaption.png", "empty.png", "broken.png", "fake.jpg"}
    assert reasons["nocaption.png"] == "no caption (nocaption.txt)"
    assert reasons["empty.png"] == "empty caption"
    assert reasons["broken.png"].startswith("unreadable image: truncated or corrupt")
    assert reasons["fake.jpg"].startswith("unreadable image: not a supported image")


def test_class_subfolders_fill_the_template(tmp_path: Path) -> None:
    _img(tmp_path / "red_circle" / "1.png")
    _img(tmp_path / "blue-square" / "2.png", BLUE, "square")
    _corrupt(tmp_path / "blue-square" / "3.png")
    (tmp_path / "blue-square" / "notes.md").write_text("ignored: not an image name")
    pairs = load_pairs(tmp_path, template="a drawing of a {class}")
    assert pairs.form == "classes"
    assert sorted(p.caption for p in pairs.pairs) == [
        "a drawing of a blue square",
        "a drawing of a red circle",
    ]
    assert list(_reasons(pairs)) == ["3.png"]


def test_a_template_without_a_class_is_refused(tmp_path: Path) -> None:
    _img(tmp_path / "cats" / "1.png")
    with pytest.raises(FinetuneError, match=r"no \{class\}"):
        load_pairs(tmp_path, template="a photo")


@pytest.mark.parametrize("header", ["path,caption\n", "image,text\n", ""])
def test_csv_with_or_without_a_header(tmp_path: Path, header: str) -> None:
    _img(tmp_path / "imgs" / "a.png")
    _img(tmp_path / "imgs" / "b.png", BLUE)
    _corrupt(tmp_path / "imgs" / "c.png")
    (tmp_path / "pairs.csv").write_text(
        header + 'imgs/a.png,"a red circle, small"\n'
        "imgs/b.png,a blue circle\n"
        "imgs/missing.png,a ghost\n"
        "imgs/a.png,\n"
        "imgs/c.png,a broken one\n"
        "only-one-column\n"
    )
    pairs = load_pairs(tmp_path / "pairs.csv")
    assert pairs.form == "csv"
    assert [(p.path.name, p.caption) for p in pairs.pairs] == [
        ("a.png", "a red circle, small"),
        ("b.png", "a blue circle"),
    ]
    first = 2 if header else 1
    bad = {b.where: b.reason for b in pairs.bad}
    assert bad[f"pairs.csv:{first + 2}"].startswith("missing file")
    assert bad[f"pairs.csv:{first + 3}"] == "empty caption"
    assert bad[f"pairs.csv:{first + 4}"].startswith("unreadable image")
    assert bad[f"pairs.csv:{first + 5}"] == "expected two columns: path,caption"
    assert len(bad) == 4


def test_jsonl_rows_and_their_faults(tmp_path: Path) -> None:
    _img(tmp_path / "a.png")
    lines = [
        json.dumps({"path": "a.png", "caption": "a red circle"}),
        json.dumps({"image": str(tmp_path / "a.png"), "text": "absolute path, other keys"}),
        "{not json",
        json.dumps(["a.png", "a list"]),
        json.dumps({"caption": "no path"}),
        json.dumps({"path": "gone.png", "caption": "missing"}),
        json.dumps({"path": "a.png", "caption": ""}),
        "",
    ]
    (tmp_path / "pairs.jsonl").write_text("\n".join(lines))
    pairs = load_pairs(tmp_path / "pairs.jsonl")
    assert pairs.form == "jsonl"
    assert [p.caption for p in pairs.pairs] == ["a red circle", "absolute path, other keys"]
    bad = {b.where: b.reason for b in pairs.bad}
    assert bad["pairs.jsonl:3"].startswith("not valid JSON")
    assert bad["pairs.jsonl:4"] == "expected a JSON object with path and caption"
    assert bad["pairs.jsonl:5"] == "no path"
    assert bad["pairs.jsonl:6"].startswith("missing file")
    assert bad["pairs.jsonl:7"] == "empty caption"
    assert len(bad) == 5


def test_form_detection_and_its_errors(tmp_path: Path) -> None:
    (tmp_path / "x.tsv").write_text("a\tb\n")
    with pytest.raises(FinetuneError, match=r"\.csv or \.jsonl"):
        detect_form(tmp_path / "x.tsv")
    with pytest.raises(FinetuneError, match="no such file or folder"):
        detect_form(tmp_path / "nothing")
    _img(tmp_path / "flat" / "a.png")
    with pytest.raises(FinetuneError, match="no captions found"):
        detect_form(tmp_path / "flat")
    with pytest.raises(FinetuneError, match="unknown DATA form"):
        load_pairs(tmp_path / "flat", form="parquet")


def test_split_is_seeded_disjoint_and_complete() -> None:
    train, held = split(50, 0.2, seed=3)
    assert len(held) == 10 and sorted(train + held) == list(range(50))
    assert split(50, 0.2, seed=3) == (train, held)
    assert split(50, 0.2, seed=4) != (train, held)
    assert split(3, 0.1, seed=0)[1] != []  # a tiny set still holds one out
    with pytest.raises(FinetuneError, match="holdout"):
        split(10, 1.0, seed=0)


def test_preprocessing_matches_the_exported_model(
    tiny_checkpoint: Path, tiny_model_dir: Path
) -> None:
    """Training pixels must be inference pixels: same config as export writes."""
    from imagefind.models.layout import read_model_dir

    processor = json.loads((tiny_checkpoint / "preprocessor_config.json").read_text())
    assert preprocess_config(processor, 224) == read_model_dir(tiny_model_dir).preprocess


@pytest.mark.parametrize("augment", [False, True])
def test_pixel_batches_are_the_preprocessors_pixels(tmp_path: Path, augment: bool) -> None:
    paths = [_img(tmp_path / f"{i}.png", seed=i) for i in range(3)]
    Image.open(paths[0]).convert("RGBA").save(paths[0])  # an alpha channel on one
    for p in paths:
        p.with_suffix(".txt").write_text("a red circle")
    pairs = load_pairs(tmp_path).pairs
    pre = Preprocessor(preprocess_config({}, 32))
    batches = PixelBatches(pairs, pre, augment=augment, seed=1)
    first = batches.batch([0, 1, 2], epoch=0)
    assert first.shape == (3, 3, 32, 32) and first.dtype == np.float32
    again = [px for _, px in batches.iterate([[0, 1], [2]], epoch=0)]
    np.testing.assert_array_equal(np.concatenate(again), first)  # seeded, cached or not
    if not augment:
        from imagefind.images import decode, read_file

        direct = pre(decode(read_file(paths[1]), "x").image)
        np.testing.assert_array_equal(first[1], direct)
    else:
        assert not np.array_equal(batches.batch([0], epoch=1), first[:1])
