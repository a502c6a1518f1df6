"""The model-zoo benchmark on the tiny model, so that it cannot rot: the same measurement
code that fills the README's "Choosing a model" table, in seconds."""

from __future__ import annotations

from pathlib import Path

from benchmarks import models
from imagefind.models.quantize import quantize_model


def test_measure_dirs_on_the_tiny_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    int8 = quantize_model(tiny_model_dir, tmp_path / "int8")

    row = models.measure_dirs(tiny_model_dir, int8, batch=2, text_repeats=3, log=lambda _: None)

    assert row["parameters"] > 0 and row["fp32_mb"] > 0 and row["int8_mb"] > 0
    for precision in ("fp32", "int8"):
        numbers = row[precision]
        assert numbers["img_per_s"] > 0 and numbers["text_ms_median"] > 0
        assert numbers["dim"] == 32 and numbers["batch"] == 2 and numbers["batches"] == 2
    assert "flags" in models.cpu_flags() or models.cpu_flags() == {}
    row |= {"label": "tiny", "zoo_name": "tiny", "published_recall": None}
    table = models.markdown({"classes": {"tiny": row}})
    assert "| tiny | `tiny` | 32 |" in table and table.rstrip().endswith("| — |")


def test_size_classes_are_complete() -> None:
    """Every class names its zoo model, where its shapes come from, and its recall source."""
    assert list(models.SIZE_CLASSES) == ["b32", "b16", "siglip2-b16", "l14", "so400m"]
    for cls in models.SIZE_CLASSES.values():
        assert cls.shapes_from.endswith(".json") and cls.batch >= 1
        assert cls.recall is None or models.RECALL_SOURCE
