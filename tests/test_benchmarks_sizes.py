"""The catalogue's download sizes: the parameter counting against ``transformers`` and against
open_clip's published figures, and the catalogue against the counting and our own exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import (
    SiglipTextConfig,
    SiglipTextModel,
    SiglipVisionConfig,
    SiglipVisionModel,
    XLMRobertaConfig,
    XLMRobertaModel,
)

from benchmarks import sizes
from imagefind.models.catalogue import catalogue, sources


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_image_tower_counting_matches_transformers() -> None:
    config = SiglipVisionConfig(
        hidden_size=64, intermediate_size=176, num_hidden_layers=3, num_attention_heads=4,
        image_size=96, patch_size=16,
    )  # fmt: skip
    with torch.device("meta"):
        model = SiglipVisionModel(config)
    assert sizes.vit_siglip(64, 3, 176, patch=16, size=96) == _params(model)


def test_text_tower_counting_matches_transformers() -> None:
    config = SiglipTextConfig(
        vocab_size=1000, hidden_size=64, intermediate_size=256, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=16,
    )  # fmt: skip
    with torch.device("meta"):
        model = SiglipTextModel(config)  # its head is open_clip's projection, bias included
    cfg = {"width": 64, "layers": 2, "vocab_size": 1000, "context_length": 16, "proj_bias": True}
    assert sizes.openclip_text(cfg, embed_dim=64) == _params(model)


def test_encoder_counting_matches_transformers() -> None:
    enc = sizes.Encoder(vocab=500, width=64, depth=2, mlp=128, positions=40, token_types=1)
    config = XLMRobertaConfig(
        vocab_size=500, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=128, max_position_embeddings=40, type_vocab_size=1,
    )  # fmt: skip
    with torch.device("meta"):
        model = XLMRobertaModel(config, add_pooling_layer=False)
    linear = 64 * 32 + 32  # M-CLIP's projection to a 32-d space
    assert sizes.encoder_text(enc, dim=32) == _params(model) + linear


@pytest.fixture(scope="module")
def configs() -> dict[str, dict[str, object]]:
    return sizes.openclip_configs()


def test_counting_agrees_with_every_published_siglip_row(configs: dict) -> None:
    assert sizes.check_counting(configs) == []
    assert "ViT-gopt-16-SigLIP2-256" in configs  # the configs were read


def test_catalogue_holds_what_the_benchmark_computes(configs: dict) -> None:
    """A catalogue edit without rerunning ``python -m benchmarks.sizes --write`` fails here."""
    computed = {name: mb for name, mb, _ in sizes.sizes(_models(), configs)}
    stored = {e.name: e.download_mb for e in catalogue()}
    assert stored == computed
    assert [name for name, mb in stored.items() if mb is None] == ["fg-clip2-base"]
    assert "parameters x 4 bytes" in sources()["download_mb"]


def test_sizes_match_our_own_exports_of_the_size_classes() -> None:
    """Our export of each measured size class has the catalogue's parameter count (to 0.5 %) and
    weighs its figure plus the graph and tokenizer files (at most 2 % more)."""
    results = json.loads((sizes.ROOT / "benchmarks/results/models.json").read_text())
    stored = {e.name: e.download_mb for e in catalogue()}
    for row in results["classes"].values():
        mb = stored[row["zoo_name"]]
        assert mb is not None, row["zoo_name"]
        assert abs(row["parameters"] * 4 / 1e6 - mb) / mb < 0.005, row["zoo_name"]
        assert 0 <= row["fp32_mb"] - mb < 0.02 * mb, row["zoo_name"]


def _models() -> list[dict[str, object]]:
    document = json.loads(Path(sizes.CATALOGUE).read_text("utf-8"))
    models: list[dict[str, object]] = document["models"]
    return models
