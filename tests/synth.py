"""Synthetic, natural-looking test images: smooth gradients, soft shapes and sensor-like noise.

Flat colour squares compress and resize unlike photos; these behave closer to real ones in
JPEG, resampling and the encoders, while staying deterministic per seed.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def natural_image(width: int, height: int, seed: int = 0) -> Image.Image:
    """An RGB image with a sky-like gradient, a few blurred shapes and noise."""
    rng = np.random.default_rng(seed)
    # Low-frequency structure: a coarse random field upsampled smoothly.
    coarse = rng.uniform(0, 255, size=(4, 6, 3)).astype("uint8")
    base = Image.fromarray(coarse, "RGB").resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(base)
    for _ in range(int(rng.integers(3, 8))):
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.05, 0.3) * min(width, height)
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        box = [x0 - r, y0 - r * rng.uniform(0.5, 1.5), x0 + r, y0 + r]
        if rng.random() < 0.5:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)
    radius = max(1.0, min(width, height) / 200)
    base = base.filter(ImageFilter.GaussianBlur(radius))
    arr = np.asarray(base, dtype=np.int16)
    noise = rng.normal(0, 6, size=arr.shape).astype(np.int16)
    return Image.fromarray(np.clip(arr + noise, 0, 255).astype("uint8"), "RGB")


def shape_image(
    colour: tuple[int, int, int], shape: str, size: int = 96, seed: int = 0
) -> Image.Image:
    """A single coloured shape on a light background (distinct, recognisable test content)."""
    rng = np.random.default_rng(seed)
    bg = tuple(int(c) for c in rng.integers(200, 256, size=3))
    img = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(img)
    r = size * rng.uniform(0.25, 0.4)
    cx, cy = (
        size / 2 + rng.uniform(-size / 8, size / 8),
        size / 2 + rng.uniform(-size / 8, size / 8),
    )
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif shape == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return img
