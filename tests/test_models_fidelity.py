"""Our ONNX encoders against transformers' CLIPModel on the same weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from imagefind.models import ClipModel, load_model
from imagefind.models.export import export_clip
from imagefind.models.quantize import quantize_model
from tests.synth import natural_image

SIZES = [
    (640, 480),
    (480, 640),
    (224, 224),
    (1000, 250),
    (97, 313),
    (1600, 1200),
    (300, 300),
    (800, 600),
    (1200, 900),
    (333, 777),
]
TEXTS = [
    "a dog",
    "",
    "a photo of a red car parked by the sea at sunset",
    "Café crème, naïve façade — déjà vu!",
    "emoji 🐶🚗 and ünïcödé",
    "UPPER lower MiXeD    repeated     spaces",
    "x " * 120,  # far over 77 tokens: truncated, still ends in end-of-text
    "sunset over mountains, with a lake; reflections (long exposure).",
    "日本語のテキスト",
]


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def _ref_images(reference, images) -> np.ndarray:
    model, _, processor = reference
    pixels = processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        feats = model.get_image_features(pixel_values=pixels)
    feats = feats if torch.is_tensor(feats) else feats.pooler_output
    return feats.numpy()


def _ref_texts(reference, texts) -> np.ndarray:
    model, tokenizer, _ = reference
    ids = tokenizer(
        texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt"
    )["input_ids"]
    with torch.no_grad():
        feats = model.get_text_features(input_ids=ids)
    feats = feats if torch.is_tensor(feats) else feats.pooler_output
    return feats.numpy()


@pytest.fixture(scope="module")
def images() -> list:
    return [natural_image(w, h, seed=i) for i, (w, h) in enumerate(SIZES)]


def test_image_embeddings_match_reference(tiny_model: ClipModel, reference, images) -> None:
    ours = tiny_model.encode_images(images)
    ref = _ref_images(reference, images)
    assert ours.shape == ref.shape == (len(images), tiny_model.dim)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert _cos(ours, ref).min() >= 0.9999


def test_text_embeddings_match_reference(tiny_model: ClipModel, reference) -> None:
    ours = tiny_model.encode_texts(TEXTS)
    ref = _ref_texts(reference, TEXTS)
    assert ours.shape == ref.shape == (len(TEXTS), tiny_model.dim)
    assert _cos(ours, ref).min() >= 0.9999


def test_quick_start_sessions_match_reference(tiny_model_dir: Path, reference, images) -> None:
    """A one-shot CLI query loads unoptimised, unpacked sessions: same vectors."""
    quick = load_model(str(tiny_model_dir), quick_start=True)
    assert _cos(quick.encode_texts(TEXTS), _ref_texts(reference, TEXTS)).min() >= 0.9999
    assert _cos(quick.encode_images(images[:3]), _ref_images(reference, images[:3])).min() >= 0.9999


def test_trimmed_text_batch_equals_one_by_one(tiny_model: ClipModel) -> None:
    batch = tiny_model.encode_texts(TEXTS)
    single = np.concatenate([tiny_model.encode_texts([t]) for t in TEXTS])
    assert np.abs(batch - single).max() < 1e-5


def test_int8_copy_stays_close(
    tiny_model_dir: Path, tiny_model: ClipModel, images, tmp_path: Path
) -> None:
    int8 = load_model(str(quantize_model(tiny_model_dir, tmp_path / "int8")))
    assert _cos(int8.encode_images(images), tiny_model.encode_images(images)).min() >= 0.99
    assert _cos(int8.encode_texts(TEXTS), tiny_model.encode_texts(TEXTS)).min() >= 0.99
    assert (tmp_path / "int8" / "visual" / "model.onnx").stat().st_size < (
        tiny_model_dir / "visual" / "model.onnx"
    ).stat().st_size


def test_fixed_batch_export_equals_dynamic(
    tiny_checkpoint: Path, tiny_model: ClipModel, images, tmp_path: Path
) -> None:
    fixed = load_model(str(export_clip(tiny_checkpoint, tmp_path / "fixed", fixed_batch=True)))
    out = fixed.encode_images(images)  # the graph takes one image at a time
    assert fixed.visual.fixed_batch and fixed.textual.fixed_batch
    assert not tiny_model.visual.fixed_batch
    assert np.abs(out - tiny_model.encode_images(images)).max() < 1e-5
    texts = fixed.encode_texts(TEXTS)
    assert np.abs(texts - tiny_model.encode_texts(TEXTS)).max() < 1e-5
