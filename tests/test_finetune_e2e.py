"""Real semantic search, end to end, without downloaded weights.

A tiny CLIP with random weights knows nothing; fine-tuned through ``imagefind finetune`` on
generated pictures of coloured shapes ("a red circle", "a blue square", ...), it must find a
green triangle when asked, through the exported ONNX model, the index and the search
command. Seeded and single-threaded, so every run trains the same model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from imagefind.cli import app

pytest.importorskip("torch")
pytestmark = pytest.mark.slow

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 40),
    "blue": (30, 60, 220),
    "yellow": (240, 210, 20),
}
SHAPES = ("circle", "square", "triangle")
IMAGE_SIZE = 64
# 400 steps of 32 pairs: about 10 s of training on one core, t→i R@1 0.9-1.0 for seeds 0-5.
TRAIN_ARGS = ["--lr", "1e-3", "--max-steps", "400", "--batch-size", "32", "--threads", "1"]


def shape_picture(colour: tuple[int, int, int], shape: str, seed: int) -> Image.Image:
    """One shape of a jittered colour, at a random size and place, on a random light,
    noisy background: nothing but colour and outline tells the captions apart."""
    rng = np.random.default_rng(seed)
    size = IMAGE_SIZE
    bg = rng.integers(150, 256, size=3)
    noise = rng.normal(0, 8, (size, size, 3))
    img = Image.fromarray(np.clip(bg + noise, 0, 255).astype("uint8"), "RGB")
    r = size * rng.uniform(0.22, 0.4)
    cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
    fill = tuple(
        int(np.clip(c + j, 0, 255)) for c, j in zip(colour, rng.integers(-20, 21, 3), strict=True)
    )
    draw = ImageDraw.Draw(img)
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    return img


def make_shapes(root: Path, per_class: int, seed: int = 0, captions: bool = True) -> Path:
    """``per_class`` pictures of each colour and shape, as NAME.png with a NAME.txt caption."""
    root.mkdir(parents=True, exist_ok=True)
    for ci, (colour, rgb) in enumerate(COLOURS.items()):
        for si, shape in enumerate(SHAPES):
            for k in range(per_class):
                name = f"{colour}-{shape}-{k:03d}"
                pic_seed = seed * 100_000 + (ci * len(SHAPES) + si) * 1000 + k
                shape_picture(rgb, shape, pic_seed).save(root / f"{name}.png")
                if captions:
                    (root / f"{name}.txt").write_text(f"a {colour} {shape}\n")
    return root


def shapes_checkpoint(out: Path, seed: int = 0) -> Path:
    """A random tiny CLIP for 64-px pictures (modelkit's "shapes" size); CLIP's vocabulary."""
    from tests.modelkit import random_checkpoint

    random_checkpoint(out, "shapes", seed, image_size=IMAGE_SIZE)
    return out


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("IMAGEFIND_MODEL", raising=False)
    monkeypatch.setenv("IMAGEFIND_HOME", str(tmp_path / "default-library"))
    runner = CliRunner()

    def run(*args: str | Path) -> str:
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        return result.stdout

    return run


def _top(cli, library: Path, query: str, k: int) -> list[str]:
    hits = json.loads(cli("search", query, "-k", str(k), "--library", library, "--json"))
    return [Path(h["image"]["source"]).stem.rsplit("-", 1)[0] for h in hits["hits"]]


def test_finetuned_tiny_clip_finds_green_triangles(cli, tmp_path: Path) -> None:
    data = make_shapes(tmp_path / "train", per_class=40)  # 480 pairs, 96 held out
    base = shapes_checkpoint(tmp_path / "base")
    out = tmp_path / "tuned"
    cli("finetune", data, "--base", base, "--out", out, *TRAIN_ARGS)

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["held_out"] == 96 and metrics["data"]["skipped"] == []
    before, after = metrics["before"]["text_to_image"], metrics["after"]["text_to_image"]
    assert before["R@1"] < 0.3  # chance is 1/12
    assert after["R@1"] >= 0.8
    assert metrics["after"]["image_to_text"]["R@5"] >= 0.9
    assert (out / "checkpoint" / "config.json").is_file()  # ready to be fine-tuned again

    # Unseen pictures, indexed with the exported ONNX model.
    gallery = make_shapes(tmp_path / "gallery", per_class=3, seed=7, captions=False)
    lib = tmp_path / "lib"
    cli("index", gallery, "--model", out, "--library", lib)
    assert _top(cli, lib, "a green triangle", 3) == ["green-triangle"] * 3
    assert _top(cli, lib, "a red circle", 1) == ["red-circle"]

    # A library built with the base model, re-embedded with the fine-tuned one.
    base_dir = tmp_path / "base-onnx"
    cli("models", "export", base, base_dir)
    old = tmp_path / "old-lib"
    cli("index", gallery, "--model", base_dir, "--library", old)
    cli("reindex", "--model", out, "--library", old)
    assert _top(cli, old, "a green triangle", 3) == ["green-triangle"] * 3


def test_cli_reports_bad_rows_and_writes_metrics(tmp_path: Path) -> None:
    data = make_shapes(tmp_path / "data", per_class=2)
    (data / "red-circle-000.txt").write_text(" \n")
    (data / "blue-square-001.png").write_bytes(b"not a picture")
    base = shapes_checkpoint(tmp_path / "base")
    out = tmp_path / "out"
    runner = CliRunner()
    common = ["finetune", str(data), "--base", str(base), "--out", str(out)]

    bad_choice = runner.invoke(app, [*common, "--train", "middle"])
    assert bad_choice.exit_code == 1
    assert "Error: --train 'middle': choose all, projections, or last-N" in bad_choice.output
    nothing = runner.invoke(app, [*common, "--resume"])
    assert nothing.exit_code == 1 and "nothing to resume" in nothing.output

    args = [*common, "--max-steps", "2", "-b", "8", "--threads", "1", "--train", "last-1"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert "22 pairs, 2 rows skipped" in result.stderr
    metrics = json.loads(result.stdout)
    assert metrics == json.loads((out / "metrics.json").read_text())
    skipped = {Path(s["where"]).name: s["reason"] for s in metrics["data"]["skipped"]}
    assert skipped["red-circle-000.png"] == "empty caption"
    assert skipped["blue-square-001.png"].startswith("unreadable image: not a supported image")
    assert metrics["train"]["steps"] == 2 and metrics["config"]["train"] == "last-1"
    assert set(metrics["after"]["text_to_image"]) == {"R@1", "R@5", "R@10"}

    again = runner.invoke(app, args)  # human output; the finished run is overwritten
    assert again.exit_code == 0, again.output
    lines = again.stdout.splitlines()
    assert lines[0].split() == ["recall", "i→t@1", "i→t@5", "i→t@10", "t→i@1", "t→i@5", "t→i@10"]
    assert lines[1].startswith("before") and lines[2].startswith("after")
    assert f"Model: {out} (use --model {out})" in again.stdout


def test_resume_continues_to_the_same_model(tmp_path: Path) -> None:
    """Interrupted after a checkpoint and resumed, a run ends where an unbroken one does."""
    import torch
    from safetensors.torch import load_file

    from imagefind.finetune import FinetuneError
    from imagefind.finetune.data import load_pairs
    from imagefind.finetune.train import FinetuneConfig, finetune

    data = load_pairs(make_shapes(tmp_path / "data", per_class=3))
    base = shapes_checkpoint(tmp_path / "base")
    cfg = FinetuneConfig(batch_size=8, lr=1e-3, max_steps=6, save_every=2, threads=1)
    whole = finetune(data, base, tmp_path / "whole", cfg)

    def stop_at_3(p) -> None:
        if p.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune(data, base, tmp_path / "broken", cfg, progress=stop_at_3)
    with pytest.raises(FinetuneError, match="add --resume"):
        finetune(data, base, tmp_path / "broken", cfg)
    with pytest.raises(FinetuneError, match="batch_size was 8, now 4"):
        finetune(
            data,
            base,
            tmp_path / "broken",
            FinetuneConfig(batch_size=4, lr=1e-3, max_steps=6, save_every=2, threads=1),
            resume=True,
        )
    steps: list[int] = []
    resumed = finetune(
        data, base, tmp_path / "broken", cfg, resume=True, progress=lambda p: steps.append(p.step)
    )
    assert steps == [3, 4, 5, 6]  # from the checkpoint at step 2
    assert not (tmp_path / "broken" / "train-state").exists()
    assert resumed.metrics["before"] == whole.metrics["before"]
    a = load_file(whole.checkpoint / "model.safetensors")
    b = load_file(resumed.checkpoint / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
