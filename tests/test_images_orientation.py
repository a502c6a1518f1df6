"""images: EXIF orientation, draft decoding, thumbnails and metadata."""

from __future__ import annotations

import hashlib
import io
import time

import pytest
from PIL import Image

from imagefind import images
from imagefind.images import decode, thumbnail
from tests.imagekit import can_save, diff, encode
from tests.imagekit import photo_fixture as photo_fixture  # fixture: photo
from tests.synth import natural_image

# Corrupt and oversized inputs make PIL warn; the tests are about what decode() raises.
pytestmark = [
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
    pytest.mark.filterwarnings("ignore:Tag data larger than file:UserWarning"),
]


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
    taken = decode(_with_exif(tags, ifd), "exif.jpg").info.exif.taken
    assert (taken.isoformat() if taken else None) == expected


def test_sha256_of_raw_bytes(photo: Image.Image) -> None:
    data = encode(photo, "JPEG")
    assert decode(data, "a.jpg").info.sha256 == hashlib.sha256(data).hexdigest()


def test_heif_opener_registered() -> None:
    if images.pillow_heif is None:
        pytest.skip("pillow-heif not installed")
    assert "HEIF" in Image.OPEN
