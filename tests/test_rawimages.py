"""Camera RAW through rawpy: real DNGs written in the test, read back by LibRaw."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import rawpy
from PIL import Image

from imagefind import Library
from imagefind.errors import ImageError
from imagefind.images import decode
from imagefind.rawimages import decode_raw, looks_like_raw, may_be_raw
from imagefind.scanner import looks_like_image
from tests.imagekit import encode
from tests.rawkit import dng
from tests.synth import natural_image

RED = (210, 40, 30)


def _scene(width: int = 384, height: int = 256) -> Image.Image:
    return Image.new("RGB", (width, height), RED)


def test_the_test_dng_is_a_real_raw() -> None:
    data = dng(_scene())
    with rawpy.imread(io.BytesIO(data)) as raw:
        assert (raw.sizes.width, raw.sizes.height) == (384, 256)
        assert raw.raw_image.shape == (256, 384)
        with pytest.raises(rawpy.LibRawNoThumbnailError):
            raw.extract_thumb()
    with rawpy.imread(io.BytesIO(dng(_scene(), preview=_scene(300, 200)))) as raw:
        assert raw.extract_thumb().format == rawpy.ThumbFormat.JPEG


def test_demosaic_without_a_preview() -> None:
    decoded = decode(dng(_scene()), "a.dng", min_side=64)
    assert decoded.info.format == "DNG"
    assert decoded.info.exif.camera == "Test T1"  # the TIFF tags of the RAW
    assert (decoded.info.width, decoded.info.height) == (384, 256)
    assert decoded.image.size == (192, 128)  # half size
    r, g, b = np.asarray(decoded.image, np.float64).reshape(-1, 3).mean(axis=0)
    assert r > g and r > b  # a red scene stays red through the mosaic and back


def test_preview_used_when_big_enough() -> None:
    preview = Image.new("RGB", (360, 240), (20, 30, 220))  # blue: told apart from the raw
    data = dng(_scene(), preview=preview)
    decoded = decode(data, "b.dng", min_side=224)
    r, _, b = np.asarray(decoded.image, np.float64).reshape(-1, 3).mean(axis=0)
    assert b > r  # the preview, not the (red) mosaic
    assert decoded.image.size == (360, 240)
    assert (decoded.info.width, decoded.info.height) == (384, 256)


def test_small_preview_falls_back_to_demosaic() -> None:
    data = dng(_scene(), preview=Image.new("RGB", (160, 120), (20, 30, 220)))
    decoded = decode(data, "c.dng", min_side=224)
    r, _, b = np.asarray(decoded.image, np.float64).reshape(-1, 3).mean(axis=0)
    assert r > b and decoded.image.size == (192, 128)


@pytest.mark.parametrize("with_preview", [False, True])
def test_orientation_from_the_raw(with_preview: bool) -> None:
    scene = natural_image(384, 256, seed=3)
    preview = scene.resize((360, 240)) if with_preview else None
    decoded = decode(dng(scene, preview=preview, orientation=6), "d.dng", min_side=200)
    assert (decoded.info.width, decoded.info.height) == (256, 384)
    assert decoded.image.height > decoded.image.width  # turned upright


def test_plain_tiff_goes_to_pillow() -> None:
    data = encode(natural_image(40, 30), "TIFF")
    assert may_be_raw(data[:16]) and not looks_like_raw(data[:16])
    assert decode_raw(data, "t.tif", min_side=10, max_pixels=10**8) is None
    assert decode(data, "t.tif").info.format == "TIFF"


def test_raw_only_headers_recognised() -> None:
    for header in (b"IIRO\x08\x00\x00\x00", b"IIU\x00\x08\x00", b"FUJIFILMCCD-RAW 0201"):
        assert looks_like_raw(header) and looks_like_image(header)
    cr3 = b"\x00\x00\x00\x18ftypcrx \x00\x00\x00\x01"
    assert looks_like_raw(cr3) and looks_like_image(cr3)


def test_broken_raw_is_an_honest_error() -> None:
    with pytest.raises(ImageError, match=r"^x\.orf: not a supported image"):
        decode(b"IIRO" + b"\x00" * 200, "x.orf")
    data = dng(_scene())
    with pytest.raises(ImageError, match=r"^y\.dng: ") as err:
        decode(data[: len(data) // 3], "y.dng")
    assert "unexpected" not in str(err.value)


def test_raw_over_the_pixel_limit() -> None:
    with pytest.raises(ImageError) as err:
        decode_raw(dng(_scene()), "big.dng", min_side=64, max_pixels=50_000)
    assert str(err.value) == "big.dng: image is 384\u00d7256 = 0 MP, over the 0 MP limit"


@pytest.mark.parametrize("pairs", ["jpeg", "both"])
def test_raw_beside_its_jpeg(tmp_path: Path, tiny_model_dir: Path, pairs: str) -> None:
    folder = tmp_path / "card"
    folder.mkdir()
    (folder / "IMG_1.DNG").write_bytes(dng(_scene()))
    natural_image(192, 128, seed=1).save(folder / "IMG_1.JPG", quality=90)
    (folder / "IMG_2.dng").write_bytes(dng(_scene(), preview=natural_image(360, 240, seed=2)))
    with Library.open(tmp_path / "lib", model=str(tiny_model_dir)) as lib:
        summary = lib.index([folder], raw_pairs=pairs)  # type: ignore[arg-type]
        formats = sorted((Path(i.path or "").name, i.format) for i in lib.images())
    if pairs == "jpeg":
        assert formats == [("IMG_1.JPG", "JPEG"), ("IMG_2.dng", "DNG")]
        assert [(Path(s.path).name, s.reason) for s in summary.skipped] == [
            ("IMG_1.DNG", "RAW beside its JPEG (IMG_1.JPG), which is indexed instead "
             "(--raw-pairs both indexes both)")
        ]  # fmt: skip
    else:
        assert formats == [("IMG_1.DNG", "DNG"), ("IMG_1.JPG", "JPEG"), ("IMG_2.dng", "DNG")]
        assert summary.skipped == []
