"""images: decode by content, orientation, draft, guards, thumbnails, metadata."""

from __future__ import annotations

import hashlib
import io
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagefind import images
from imagefind.errors import ImageError, ImagefindError
from imagefind.images import (
    MAX_PIXELS,
    SUPPORTED_FORMATS,
    DecodedImage,
    ImageInfo,
    decode,
    read_file,
    thumbnail,
)
from tests.synth import natural_image, shape_image

Image.init()

# Corrupt and oversized inputs make PIL warn; the tests are about what decode() raises.
pytestmark = [
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
    pytest.mark.filterwarnings("ignore:Tag data larger than file:UserWarning"),
]


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


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return natural_image(96, 64, seed=1)


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
        taken_at=None,
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


# --- orientation --------------------------------------------------------------------------

# What a camera stores for each EXIF orientation, given the upright picture.
STORE = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def _oriented(upright: Image.Image, orientation: int, fmt: str, **opts: object) -> bytes:
    method = STORE[orientation]
    stored = upright if method is None else upright.transpose(method)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, fmt, exif=exif.tobytes(), **opts)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize(
    ("fmt", "tol"), [("PNG", 0.0), ("JPEG", 6.0), ("WEBP", 0.0), ("HEIF", 10.0)]
)
def test_exif_orientation(orientation: int, fmt: str, tol: float) -> None:
    if not can_save(fmt):
        pytest.skip(f"this Pillow/pillow-heif cannot write {fmt}")
    upright = natural_image(60, 40, seed=orientation)
    opts = {"lossless": True} if fmt == "WEBP" else {"quality": 95} if fmt != "PNG" else {}
    decoded = decode(_oriented(upright, orientation, fmt, **opts), f"o{orientation}")
    assert decoded.image.size == (60, 40)
    assert (decoded.info.width, decoded.info.height) == (60, 40)
    assert diff(decoded.image, upright) <= tol


# --- draft decoding -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_jpeg() -> bytes:
    img = natural_image(1000, 750, seed=3).resize((4000, 3000), Image.Resampling.BILINEAR)
    return encode(img, "JPEG", quality=90)


def _best_time(fn: object, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def test_draft_reduces_but_keeps_min_side(big_jpeg: bytes) -> None:
    full = decode(big_jpeg, "big.jpg")
    small = decode(big_jpeg, "big.jpg", min_side=448)
    assert full.image.size == (4000, 3000)
    assert 448 <= min(small.image.size) < 896
    assert small.image.size == (1000, 750)
    assert small.info == full.info  # metadata describes the original, not the draft
    t_full = _best_time(lambda: decode(big_jpeg, "big.jpg"))
    t_small = _best_time(lambda: decode(big_jpeg, "big.jpg", min_side=448))
    assert t_small < t_full


@pytest.mark.parametrize("min_side", [1, 100, 224, 375, 376, 750, 1499, 1500, 2999, 3000, 5000])
def test_draft_never_goes_below_min_side(big_jpeg: bytes, min_side: int) -> None:
    decoded = decode(big_jpeg, "big.jpg", min_side=min_side)
    w, h = decoded.image.size
    assert min(w, h) >= min(min_side, 3000)
    assert (w, h) == (4000 // (4000 // w), 3000 // (3000 // h))  # a power-of-two reduction


@pytest.mark.parametrize("orientation", [6, 8])
def test_draft_on_rotated_jpeg(orientation: int) -> None:
    upright = natural_image(300, 400, seed=4)
    data = _oriented(upright, orientation, "JPEG", quality=95)
    decoded = decode(data, "rot.jpg", min_side=100)
    assert decoded.image.size == (150, 200)
    assert (decoded.info.width, decoded.info.height) == (300, 400)


def test_min_side_ignored_for_png(photo: Image.Image) -> None:
    assert decode(encode(photo, "PNG"), "p.png", min_side=8).image.size == photo.size


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
    ("icon.ico", encode(Image.new("RGB", (16, 16)), "ICO"), "not a supported image"),
    ("pic.ppm", encode(Image.new("RGB", (16, 16)), "PPM"), "not a supported image"),
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


# --- thumbnails and metadata --------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [((1000, 500), (256, 128)), ((300, 900), (85, 256)), ((100, 80), (100, 80))],
)
def test_thumbnail(size: tuple[int, int], expected: tuple[int, int]) -> None:
    data = thumbnail(natural_image(*size, seed=8))
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "WEBP"
        assert img.size == expected


def test_thumbnail_custom_size_and_mode() -> None:
    data = thumbnail(Image.new("L", (400, 200), 90), size=64)
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (64, 32)


def _with_exif(tags: dict[int, object], ifd: dict[int, object] | None = None) -> bytes:
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[tag] = value
    if ifd:
        sub = exif.get_ifd(0x8769)
        sub.update(ifd)
    return encode(natural_image(32, 24, seed=9), "JPEG", exif=exif.tobytes())


@pytest.mark.parametrize(
    ("tags", "ifd", "expected"),
    [
        ({}, {36867: "2021:07:04 18:30:05"}, "2021-07-04T18:30:05"),
        ({306: "2019:01:02 03:04:05"}, None, "2019-01-02T03:04:05"),
        ({306: "2019:01:02 03:04:05"}, {36867: "2021:07:04 18:30:05"}, "2021-07-04T18:30:05"),
        ({306: "2019:01:02 03:04:05"}, {36867: "0000:00:00 00:00:00"}, "2019-01-02T03:04:05"),
        ({306: "    :  :     :  :  "}, None, None),
        ({306: "yesterday"}, None, None),
        ({}, None, None),
    ],
)
def test_taken_at(tags: dict, ifd: dict | None, expected: str | None) -> None:
    assert decode(_with_exif(tags, ifd), "exif.jpg").info.taken_at == expected


def test_sha256_of_raw_bytes(photo: Image.Image) -> None:
    data = encode(photo, "JPEG")
    assert decode(data, "a.jpg").info.sha256 == hashlib.sha256(data).hexdigest()


def test_heif_opener_registered() -> None:
    if images.pillow_heif is None:
        pytest.skip("pillow-heif not installed")
    assert "HEIF" in Image.OPEN
