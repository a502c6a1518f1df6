"""Preprocessing equals transformers' CLIP image processor on OpenAI's configuration."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imagefind.models import ClipModel
from imagefind.models.layout import PreprocessConfig
from imagefind.models.preprocess import Preprocessor
from tests.synth import natural_image

SIZES = [
    (640, 480),
    (480, 640),
    (224, 224),
    (225, 224),
    (1000, 250),
    (97, 313),
    (4000, 3000),
    (1, 1),
    (50, 2000),
    (1920, 1080),
]


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_pixels_match_clip_image_processor(
    tiny_model: ClipModel, reference, width: int, height: int
) -> None:
    _, _, processor = reference
    image = natural_image(width, height, seed=width * 7 + height)
    ours = tiny_model.preprocess(image)
    ref = processor(images=[image], return_tensors="np")["pixel_values"][0]
    assert ours.shape == ref.shape == (3, 224, 224)
    assert np.abs(ours - ref).max() <= 1e-2


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "L", "CMYK", "I;16"])
def test_any_mode_becomes_normalised_rgb(tiny_model: ClipModel, mode: str) -> None:
    image = natural_image(320, 240, seed=3).convert("RGBA" if mode == "P" else "RGB")
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image.convert("L"), dtype=np.uint16) * 257)
    else:
        image = image.convert(mode)
    out = tiny_model.preprocess(image)
    assert out.shape == (3, 224, 224) and out.dtype == np.float32
    assert np.isfinite(out).all()


def test_transparency_uses_a_fixed_background(tiny_model: ClipModel) -> None:
    # The same visible image, whatever colour the transparent pixels store.
    a = np.zeros((100, 100, 4), dtype=np.uint8)
    a[..., 0] = 255
    b = a.copy()
    b[..., :3] = 17
    a[40:60, 40:60, 3] = b[40:60, 40:60, 3] = 255
    pa = tiny_model.preprocess(Image.fromarray(a, "RGBA"))
    pb = tiny_model.preprocess(Image.fromarray(b, "RGBA"))
    assert np.abs(pa[:, :30, :30] - pb[:, :30, :30]).max() == 0


def test_squash_mode_keeps_whole_image() -> None:
    pre = Preprocessor(
        PreprocessConfig(size=64, mean=(0.5,) * 3, std=(0.5,) * 3, resize_mode="squash")
    )
    img = Image.new("RGB", (200, 50), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 20, 50))  # a blue band at the left edge survives squash
    out = pre(img)
    assert out.shape == (3, 64, 64)
    assert out[2, 32, 0] > 0.9 and out[0, 32, 63] > 0.9
