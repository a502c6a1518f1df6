"""Every format a photo library holds, recognised by content: JPEG 2000, BigTIFF, PSD, TGA,
ICO/CUR, PPM/PGM/PBM, QOI, JPEG XL (and RAW, in test_rawimages.py); decompression bombs
in them refused with their size."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import tifffile
from PIL import Image

from imagefind.errors import ImageError
from imagefind.images import SUPPORTED_FORMATS, decode
from imagefind.scanner import looks_like_image
from tests.imagekit import diff, encode
from tests.rawkit import cur, psd
from tests.synth import natural_image

SCENE = natural_image(120, 80, seed=11)


def _bigtiff(image: Image.Image) -> bytes:
    out = io.BytesIO()
    tifffile.imwrite(out, np.asarray(image), bigtiff=True, photometric="rgb")
    return out.getvalue()


CASES = {
    "JPEG2000 (JP2)": (lambda: encode(SCENE, "JPEG2000"), "JPEG2000", 3.0),
    "JPEG2000 (J2K)": (lambda: encode(SCENE, "JPEG2000", no_jp2=True), "JPEG2000", 3.0),
    "BigTIFF": (lambda: _bigtiff(SCENE), "TIFF", 0.0),
    "PSD": (lambda: psd(SCENE), "PSD", 0.0),
    "TGA": (lambda: encode(SCENE, "TGA"), "TGA", 0.0),
    "TGA (RLE)": (lambda: encode(SCENE, "TGA", compression="tga_rle"), "TGA", 0.0),
    "PPM": (lambda: encode(SCENE, "PPM"), "PPM", 0.0),
    "QOI": (lambda: encode(SCENE, "QOI"), "QOI", 0.0),
    "JPEG XL": (lambda: encode(SCENE, "JXL", lossless=True), "JXL", 0.0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_format_decodes_by_content(case: str) -> None:
    make, fmt, tolerance = CASES[case]
    data = make()
    assert looks_like_image(data[:32])
    decoded = decode(data, "photo.bin", min_side=32)  # the name says nothing: content does
    assert decoded.info.format == fmt and fmt in SUPPORTED_FORMATS
    assert (decoded.info.width, decoded.info.height) == SCENE.size
    assert diff(decoded.image, SCENE) <= tolerance + 0.01


@pytest.mark.parametrize("mode", ["L", "1"])
def test_pgm_and_pbm(mode: str) -> None:
    data = encode(SCENE.convert(mode), "PPM")
    assert data[:2] == (b"P5" if mode == "L" else b"P4")
    decoded = decode(data, "grey.pnm")
    assert decoded.image.mode == "RGB" and decoded.image.size == SCENE.size


def test_ico_takes_its_largest_entry() -> None:
    data = encode(Image.new("RGB", (64, 64), (0, 200, 0)), "ICO", sizes=[(16, 16), (64, 64)])
    decoded = decode(data, "favicon.ico")
    assert decoded.info.format == "ICO" and decoded.image.size == (64, 64)


def test_cur_takes_its_largest_entry() -> None:
    data = cur([16, 48, 32], (200, 0, 0))
    decoded = decode(data, "pointer.cur")
    assert decoded.info.format == "CUR" and decoded.image.size == (48, 48)
    assert decoded.image.getpixel((10, 10)) == (200, 0, 0)


def test_psd_is_its_composite() -> None:
    decoded = decode(psd(Image.new("RGB", (30, 20), (1, 2, 250))), "art.psd")
    assert decoded.image.getpixel((5, 5)) == (1, 2, 250)


def test_text_that_starts_like_a_netpbm_header_is_refused() -> None:
    with pytest.raises(ImageError, match=r"^notes\.txt: "):
        decode(b"P1 is the first point of the plan\n", "notes.txt")
    assert not looks_like_image(b"P1is a plan")


def _bomb_headers() -> dict[str, bytes]:
    w = h = 20_000
    tga = bytes([0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0]) + struct.pack("<HHBB", w, h, 24, 0)
    return {
        "PPM": f"P6\n{w} {h}\n255\n".encode() + bytes(64),
        "QOI": b"qoif" + struct.pack(">IIBB", w, h, 3, 0) + bytes(64),
        "TGA": tga + bytes(64),
        "PSD": b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, h, w, 8, 3) + bytes(64),
        "BigTIFF": _bigtiff_declaring(w, h),
    }


def _bigtiff_declaring(width: int, height: int) -> bytes:
    data = bytearray(_bigtiff(Image.new("RGB", (4, 4))))
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tf:
        tags = tf.pages[0].tags
        for code, value in ((256, width), (257, height)):
            fmt = "<H" if int(tags[code].dtype) == 3 else "<I"
            struct.pack_into(fmt, data, tags[code].valueoffset, value)
    return bytes(data)


@pytest.mark.parametrize("fmt", list(_bomb_headers()))
def test_bombs_report_their_size(fmt: str) -> None:
    with pytest.raises(ImageError) as err:
        decode(_bomb_headers()[fmt], "bomb")
    assert str(err.value) == "bomb: image is 20000\u00d720000 = 400 MP, over the 100 MP limit"
