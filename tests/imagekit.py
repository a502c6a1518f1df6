"""Shared pieces of the images tests: encoding, comparing, and a small photo."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.synth import natural_image

Image.init()


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **kw)
    return out.getvalue()


def diff(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size
    return float(np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).mean())


def can_save(fmt: str) -> bool:
    try:
        encode(Image.new("RGB", (8, 8)), fmt)
    except (KeyError, OSError, ValueError):
        return False
    return True


@pytest.fixture(scope="module", name="photo")
def photo_fixture() -> Image.Image:
    return natural_image(96, 64, seed=1)
