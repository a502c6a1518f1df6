"""Shared fixtures: a tiny random-weight CLIP exported by our own code, and its reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagefind.models import ClipModel, load_model
from tests.modelkit import random_checkpoint

OUTPUT = Path(__file__).resolve().parents[1] / "test-output"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A transformers CLIP checkpoint with random weights and CLIP's real vocabulary."""
    return random_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-clip")


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkpoint exported with `imagefind models export`'s code, dynamic batch."""
    from imagefind.models.export import export_clip

    return export_clip(tiny_checkpoint, tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path) -> ClipModel:
    return load_model(str(tiny_model_dir))


@pytest.fixture(scope="session")
def reference(tiny_checkpoint: Path):
    """The same weights in transformers: the ground truth our ONNX path must equal."""
    from transformers import CLIPModel, CLIPTokenizer
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    model = CLIPModel.from_pretrained(tiny_checkpoint).eval()
    tokenizer = CLIPTokenizer.from_pretrained(tiny_checkpoint)
    processor = CLIPImageProcessorPil.from_pretrained(tiny_checkpoint)
    return model, tokenizer, processor


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT
