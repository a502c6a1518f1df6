"""The prepare step: one read, one hash, a draft decode, the model's pixels and a thumbnail
made from the model's view when that is big enough, the decoded image otherwise; known
content is not decoded, and nothing is written anywhere."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagefind.images import decode
from imagefind.models.layout import PreprocessConfig
from imagefind.models.preprocess import Preprocessor
from imagefind.prepare import THUMB_SIZE, Item, Preparer
from imagefind.records import ImageRecord
from imagefind.scanner import Problem, walk
from tests.synth import natural_image

CONFIG = PreprocessConfig(
    size=224,
    mean=(0.48145466, 0.4578275, 0.40821073),
    std=(0.26862954, 0.26130258, 0.27577711),
    interpolation="bicubic",
    resize_mode="shortest",
)


def _prepare(path: Path, config: PreprocessConfig = CONFIG) -> Item:
    prepare = Preparer(Preprocessor(config), config.size)
    item = prepare(Item(name=str(path), found=next(walk(path))))
    assert isinstance(item, Item), item
    return item


@pytest.mark.parametrize(
    ("size", "thumb"),
    [
        ((1600, 1200), (256, 192)),
        ((900, 1600), (144, 256)),
        ((800, 800), (256, 256)),
        ((2000, 2000), (256, 256)),  # drafted to 500 px, not 250: no smaller than the thumb
        ((100, 80), (100, 80)),
    ],
    ids=["landscape", "portrait", "square", "big-square", "tiny"],
)
def test_prepare_pixels_and_thumbnail(tmp_path: Path, size: tuple[int, int], thumb) -> None:
    path = tmp_path / "photo.jpg"
    natural_image(*size, seed=3).save(path, quality=92)
    item = _prepare(path)
    data = path.read_bytes()
    assert item.sha256 == item.new.sha256 == hashlib.sha256(data).hexdigest()
    expected = Preprocessor(CONFIG)(decode(data, "x", min_side=THUMB_SIZE).image)
    assert np.array_equal(item.pixels, expected)
    shown = Image.open(io.BytesIO(item.thumb))
    assert shown.format == "WEBP" and shown.size == thumb  # never upscaled, never squashed
    assert (item.new.width, item.new.height) == size
    assert 0 < item.read_s <= item.prepare_s


def test_squashing_models_thumbnail_from_the_decoded_image(tmp_path: Path) -> None:
    path = tmp_path / "wide.jpg"
    natural_image(1600, 900, seed=4).save(path, quality=92)
    squash = dataclasses.replace(CONFIG, resize_mode="squash")
    item = _prepare(path, squash)
    assert Image.open(io.BytesIO(item.thumb)).size == (256, 144)
    assert item.pixels.shape == (3, 224, 224)


def test_draft_decode_stays_at_least_the_model_size(tmp_path: Path) -> None:
    out = io.BytesIO()
    natural_image(4000, 3000, seed=5).save(out, "JPEG", quality=90)
    image = decode(out.getvalue(), "big.jpg", min_side=224).image
    assert min(image.size) >= 224 and image.size[0] <= 1000  # 1/8 scale: 500x375


def test_known_content_is_recognised_not_decoded(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    natural_image(640, 480, seed=6).save(path, quality=90)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    row = ImageRecord(1, "/elsewhere.jpg", None, sha, 1, 1.0, 640, 480, "JPEG", None, 0.0)
    asked: list[str] = []

    def known(sha256: str) -> ImageRecord | None:
        asked.append(sha256)
        return row

    item = Preparer(Preprocessor(CONFIG), CONFIG.size, known)(
        Item(name=str(path), found=next(walk(path)))
    )
    assert isinstance(item, Item) and item.known is row and asked == [sha]
    assert item.pixels is None and item.thumb is None and item.new is None


def test_an_upload_is_keyed_by_its_content() -> None:
    out = io.BytesIO()
    natural_image(320, 240, seed=7).save(out, "PNG")
    item = Preparer(Preprocessor(CONFIG), CONFIG.size)(Item(name="up.png", data=out.getvalue()))
    assert isinstance(item, Item)
    assert item.new.upload_key == item.sha256 and item.new.path is None
    assert item.new.name == "up.png" and item.new.format == "PNG"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not a supported image (empty file)"),
        (b"hello", "not a supported image (content is not a supported image format)"),
    ],
)
def test_a_bad_upload_is_a_problem_not_an_exception(data: bytes, reason: str) -> None:
    problem = Preparer(Preprocessor(CONFIG), CONFIG.size)(Item(name="bad.jpg", data=data))
    assert problem == Problem("bad.jpg", reason, key="bad.jpg")  # an item's key: its name
