"""images: decode by content, formats, modes, guards, bad input (orientation, draft,
thumbnails and metadata are in test_images_orientation.py)."""

from __future__ import annotations

import hashlib
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagefind.errors import ImageError, ImagefindError
from imagefind.images import (
    MAX_PIXELS,
    SUPPORTED_FORMATS,
    DecodedImage,
    ImageInfo,
    decode,
    read_file,
)
from tests.imagekit import can_save, diff, encode
from tests.imagekit import photo_fixture as photo_fixture  # fixture: photo
from tests.synth import natural_image, shape_image

# Corrupt and oversized inputs make PIL warn; the tests are about what decode() raises.
pytestmark = [
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
    pytest.mark.filterwarnings("ignore:Tag data larger than file:UserWarning"),
]

# (format to save, save options, format decode reports, tolerance of mean abs diff)
FORMATS = [
    ("JPEG", {"quality": 95}, "JPEG", 6.0),
    ("PNG", {}, "PNG", 0.0),
    ("WEBP", {"lossless": True}, "WEBP", 0.0),
    ("GIF", {}, "GIF", 25.0),
    ("BMP", {}, "BMP", 0.0),
    ("TIFF", {}, "TIFF", 0.0),
    ("TIFF", {"compression": "tiff_lzw"}, "TIFF", 0.0),
    ("HEIF", {"quality": 95}, "HEIF", 8.0),
    ("AVIF", {"quality": 95}, "AVIF", 8.0),
]


# --- formats ------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "opts", "reported", "tol"), FORMATS, ids=lambda v: str(v))
def test_format_round_trip(
    photo: Image.Image, fmt: str, opts: dict, reported: str, tol: float
) -> None:
    if not can_save(fmt):
        pytest.skip(f"this Pillow/pillow-heif cannot write {fmt}")
    data = encode(photo, fmt, **opts)
    decoded = decode(data, f"photo.{fmt.lower()}")
    assert isinstance(decoded, DecodedImage)
    assert decoded.image.mode == "RGB"
    assert decoded.image.size == photo.size
    assert diff(decoded.image, photo) <= tol
    info = decoded.info
    assert info == ImageInfo(
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        width=96,
        height=64,
        format=reported,
    )
    assert info.format in SUPPORTED_FORMATS


def test_extension_is_ignored(photo: Image.Image) -> None:
    decoded = decode(encode(photo, "PNG"), "really-a-png.jpg")
    assert decoded.info.format == "PNG"


def test_gif_first_frame() -> None:
    frames = [Image.new("RGB", (32, 24), c) for c in [(250, 0, 0), (0, 0, 250), (0, 250, 0)]]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    decoded = decode(data, "anim.gif")
    assert decoded.image.getpixel((5, 5)) == (250, 0, 0)


def test_tiff_first_page() -> None:
    pages = [shape_image((200, 20, 20), "circle"), shape_image((20, 20, 200), "square")]
    data = encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    decoded = decode(data, "pages.tiff")
    assert diff(decoded.image, pages[0]) == 0


def test_mpo_decodes_as_jpeg_first_frame(photo: Image.Image) -> None:
    other = natural_image(96, 64, seed=2)
    data = encode(photo, "MPO", save_all=True, append_images=[other], quality=95)
    decoded = decode(data, "stereo.jpg")
    assert decoded.info.format in {"MPO", "JPEG"}
    assert diff(decoded.image, photo) < 6


# --- modes --------------------------------------------------------------------------------


def _transparent_rgba() -> Image.Image:
    img = Image.new("RGBA", (40, 30), (0, 0, 0, 0))  # transparent black
    img.paste((200, 10, 10, 255), (0, 0, 20, 30))
    return img


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
def test_transparency_composited_on_white(fmt: str) -> None:
    opts = {"lossless": True} if fmt == "WEBP" else {}
    decoded = decode(encode(_transparent_rgba(), fmt, **opts), f"alpha.{fmt.lower()}")
    assert decoded.image.mode == "RGB"
    assert decoded.image.getpixel((35, 15)) == (255, 255, 255)
    assert decoded.image.getpixel((5, 15)) == (200, 10, 10)


def test_palette_with_transparency_gif() -> None:
    img = Image.new("P", (20, 20), 0)
    img.putpalette([0, 0, 0, 10, 200, 10] + [0] * 762)
    img.paste(1, (0, 0, 10, 20))
    decoded = decode(encode(img, "GIF", transparency=0), "t.gif")
    assert decoded.image.getpixel((15, 5)) == (255, 255, 255)
    assert decoded.image.getpixel((5, 5)) == (10, 200, 10)


def test_palette_with_transparency_png() -> None:
    img = Image.new("P", (20, 20), 0)
    img.putpalette([9, 9, 9, 10, 200, 10] + [0] * 762)
    img.paste(1, (0, 0, 10, 20))
    decoded = decode(encode(img, "PNG", transparency=0), "t.png")
    assert decoded.image.getpixel((15, 5)) == (255, 255, 255)


def test_la_composited() -> None:
    img = Image.new("LA", (10, 10), (0, 0))
    img.paste((100, 255), (0, 0, 5, 10))
    decoded = decode(encode(img, "PNG"), "la.png")
    assert decoded.image.getpixel((8, 5)) == (255, 255, 255)
    assert decoded.image.getpixel((2, 5)) == (100, 100, 100)


def test_16_bit_png_scaled_not_clipped() -> None:
    arr = np.full((10, 20), 65535, dtype=np.uint16)
    arr[:, :10] = 32768
    data = encode(Image.fromarray(arr), "PNG")
    decoded = decode(data, "deep.png")
    assert decoded.image.mode == "RGB"
    assert decoded.image.getpixel((15, 5)) == (255, 255, 255)
    assert decoded.image.getpixel((5, 5))[0] in (127, 128)


@pytest.mark.parametrize("mode", ["L", "CMYK", "1"])
def test_other_modes_become_rgb(photo: Image.Image, mode: str) -> None:
    fmt = "JPEG" if mode != "1" else "PNG"
    decoded = decode(encode(photo.convert(mode), fmt), f"{mode}.img")
    assert decoded.image.mode == "RGB"
    assert decoded.image.size == photo.size


def test_cmyk_jpeg_colours_close(photo: Image.Image) -> None:
    decoded = decode(encode(photo.convert("CMYK"), "JPEG", quality=95), "cmyk.jpg")
    assert diff(decoded.image, photo) < 10


# --- decompression bombs ------------------------------------------------------------------


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny valid 1x1 PNG whose IHDR claims another size (CRC fixed up)."""
    data = bytearray(encode(Image.new("RGB", (1, 1)), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.mark.parametrize(
    ("width", "height", "text"),
    [
        (30000, 30000, "image is 30000\u00d730000 = 900 MP, over the 100 MP limit"),
        (12000, 10000, "image is 12000\u00d710000 = 120 MP, over the 100 MP limit"),
        (100000, 1, None),
    ],
)
def test_declared_size_guard(width: int, height: int, text: str | None) -> None:
    data = _png_declaring(width, height)
    tracemalloc.start()
    try:
        if text is None:  # 100 K pixels: allowed past the guard, then fails as corrupt
            with pytest.raises(ImageError, match=r"bomb\.png: truncated or corrupt"):
                decode(data, "bomb.png")
        else:
            with pytest.raises(ImageError) as err:
                decode(data, "bomb.png")
            assert str(err.value) == f"bomb.png: {text}"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000
    assert MAX_PIXELS == 100_000_000


# --- bad input ----------------------------------------------------------------------------


def _truncated(fmt: str) -> bytes:
    data = encode(natural_image(200, 150, seed=5), fmt)
    return data[: len(data) // 2]


BAD = [
    ("empty.jpg", b"", "not a supported image (empty file)"),
    ("noise.jpg", np.random.default_rng(0).bytes(4096), "not a supported image"),
    ("page.png", b"<!doctype html><html><body>404</body></html>", "not a supported image"),
    (
        "logo.svg",
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10"/>',
        "not a supported image",
    ),
    ("notes.txt", "plain text, ünïcode".encode(), "not a supported image"),
    ("cut.jpg", _truncated("JPEG"), "truncated or corrupt image data"),
    ("cut.png", _truncated("PNG"), "truncated or corrupt image data"),
    ("header.png", encode(Image.new("RGB", (8, 8)), "PNG")[:20], "not a supported image"),
    ("cut.jp2", _truncated("JPEG2000"), "truncated or corrupt image data"),
    ("cut.qoi", _truncated("QOI"), "truncated or corrupt image data"),
    ("ps.eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not a supported image"),
]


@pytest.mark.parametrize(("name", "data", "reason"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_image_error(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(ImageError) as err:
        decode(data, name)
    message = str(err.value)
    assert message.startswith(f"{name}: ")
    assert reason in message
    assert isinstance(err.value, ImagefindError)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP"])
def test_mutated_files_never_crash(fmt: str) -> None:
    """Fuzz: corrupt bytes give a decoded image or an ImageError, nothing else."""
    good = encode(natural_image(48, 32, seed=6), fmt)
    rng = np.random.default_rng(7)
    for _ in range(60):
        data = bytearray(good)
        for pos in rng.integers(0, len(data), size=int(rng.integers(1, 6))):
            data[pos] = int(rng.integers(0, 256))
        cut = int(rng.integers(len(data) // 2, len(data) + 1))
        try:
            decoded = decode(bytes(data[:cut]), "fuzz")
        except ImageError as exc:
            assert str(exc).startswith("fuzz: ")
        else:
            assert decoded.image.mode == "RGB"


def test_read_file(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"abc")
    assert read_file(path) == b"abc"


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_read_file_errors(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "x.jpg"
    if kind == "directory":
        path.mkdir()
    with pytest.raises(ImageError, match=r"x\.jpg: cannot read \(") as err:
        read_file(path)
    assert str(err.value).startswith(f"{path}: cannot read (")
