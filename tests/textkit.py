"""A test set of images with known text, made on the spot: words and short phrases (dates,
numbers, mixed case, a few Chinese strings) rendered with the DejaVu fonts (Chinese with
WenQuanYi Micro Hei) at 14-72 px, in several colours, rotated up to ±8°, on plain, gradient
and noisy photo-like backgrounds; screenshot-like UI images with several lines; and photos
with no text. Deterministic: the same set every run. ``benchmarks/ocr.py`` uses it too.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tests.synth import natural_image

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
LATIN_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf")
CJK_FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
)
SIZES = (14, 20, 28, 40, 56, 72)
BACKGROUNDS = ("plain", "gradient", "photo")
ANGLES = (0.0, -8.0, 5.0, -3.0, 8.0, 2.0)

_FIRST = (
    "Open Air",
    "WiFi-Password",
    "Invoice",
    "Lidl Receipt",
    "Parking Zone",
    "Gate",
    "Flight",
    "Museum Ticket",
    "Coffee Bar",
    "Platform",
    "Room",
    "Order No",
    "Exit Only",
    "Summer Sale",
    "Bakery",
    "Pharmacy",
    "Garage",
    "Meeting",
)
_SECOND = (
    "2023",
    "27.11.2026",
    "Berlin",
    "42,50 EUR",
    "hunter2",
    "B12",
    "Mon-Fri 9-18",
    "Zürich",
    "Track 7",
    "Level -2",
    "No 4711",
    "Café Müller",
    "QUIET PLEASE",
    "#1984",
    "Tuesday",
    "x3 Pack",
    "Kiosk",
    "OPEN 24h",
)
CHINESE = ("欢迎光临", "营业时间", "出口通道", "发票金额", "北京站", "禁止吸烟")


@dataclass
class Sample:
    """One image of the set and the text drawn in it."""

    name: str
    image: Image.Image
    phrases: list[str]  # what a search should find it by (empty: no text)
    condition: dict[str, str] = field(default_factory=dict)

    @property
    def words(self) -> list[str]:
        """The words a reader should recover (a Chinese string counts as one)."""
        return [w for p in self.phrases for w in p.split()]


def cjk_font() -> Path | None:
    return next((p for p in CJK_FONT_CANDIDATES if p.exists()), None)


def latin_phrases(count: int) -> list[str]:
    """Distinct phrases, each first + second part, in a fixed shuffled order."""
    pairs = [f"{a} {b}" for a, b in itertools.product(_FIRST, _SECOND)]
    rng = np.random.default_rng(7)
    order = rng.permutation(len(pairs))
    return [pairs[i] for i in order[:count]]


def _background(kind: str, size: tuple[int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    if kind == "plain":
        tone = tuple(int(c) for c in rng.integers(190, 256, size=3))
        return Image.new("RGB", size, tone)
    if kind == "gradient":
        a, b = rng.integers(0, 256, size=(2, 3))
        t = np.linspace(0, 1, w)[None, :, None]
        arr = (a[None, None, :] * (1 - t) + b[None, None, :] * t).repeat(h, axis=0)
        return Image.fromarray(arr.astype("uint8"), "RGB")
    return natural_image(w, h, seed=seed)


def _ink(background: Image.Image, box: tuple[int, int, int, int], seed: int) -> tuple[int, ...]:
    """A text colour that stands out from the background under the text: dark or light,
    tinted (red, blue, green, …) in turn."""
    region = np.asarray(background.crop(box).convert("L"), dtype=np.float32)
    light = region.mean() < 128
    tints = [(0, 0, 0), (170, 20, 20), (20, 40, 160), (20, 110, 40), (90, 20, 120)]
    tint = tints[seed % len(tints)]
    return tuple(255 - c // 3 for c in tint) if light else tint


def render(
    text: str, font: Path, size: int, background: str, angle: float, seed: int
) -> Image.Image:
    """One phrase on a background sized to it, rotated by ``angle`` degrees."""
    face = ImageFont.truetype(str(font), size)
    left, top, right, bottom = face.getbbox(text)
    tw, th = right - left, bottom - top
    width = max(320, int(tw * 1.3) + 2 * size)
    height = max(160, int(th * 4))
    image = _background(background, (width, height), seed)
    x, y = (width - tw) // 2 - left, (height - th) // 2 - top
    box = (max(0, x + left), max(0, y + top), min(width, x + right), min(height, y + bottom))
    ImageDraw.Draw(image).text((x, y), text, font=face, fill=_ink(image, box, seed))
    if angle:
        image = image.rotate(
            angle, resample=Image.Resampling.BICUBIC, fillcolor=image.getpixel((0, 0))
        )
    return image


def screenshot(seed: int, lines: list[str]) -> Image.Image:
    """A settings-window-like image: title bar, labels and values, buttons."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (640, 400), (246, 246, 248))
    draw = ImageDraw.Draw(image)
    bold = ImageFont.truetype(str(DEJAVU / "DejaVuSans-Bold.ttf"), 16)
    body = ImageFont.truetype(str(DEJAVU / "DejaVuSans.ttf"), 15)
    draw.rectangle((0, 0, 640, 34), fill=(52, 58, 70))
    draw.text((14, 8), "Settings", font=bold, fill=(240, 240, 240))
    y = 56
    for line in lines:
        draw.text((24, y), line, font=body, fill=(30, 30, 30))
        y += 34
    for i, label in enumerate(("Cancel", "Apply")):
        x0 = 400 + i * 110
        draw.rounded_rectangle(
            (x0, 340, x0 + 96, 374), 6, fill=(40, 110, 220) if i else (220, 220, 225)
        )
        draw.text((x0 + 18, 348), label, font=body, fill=(255, 255, 255) if i else (30, 30, 30))
    draw.rectangle((600, 50, 610, 50 + int(rng.integers(60, 240))), fill=(200, 200, 205))
    return image


def make_set(phrases: int = 90, screenshots: int = 12, blanks: int = 100) -> list[Sample]:
    """The whole set: phrase images cycling through sizes, fonts, backgrounds and angles
    (and Chinese strings when a CJK font is installed), screenshots, text-free photos."""
    samples: list[Sample] = []
    cjk = cjk_font()
    chinese = list(CHINESE) if cjk else []
    texts = latin_phrases(phrases - len(chinese)) + chinese
    for i, text in enumerate(texts):
        size = SIZES[i % len(SIZES)]
        background = BACKGROUNDS[(i // len(SIZES)) % len(BACKGROUNDS)]
        angle = ANGLES[(i // 3) % len(ANGLES)]
        is_cjk = text in CHINESE
        font = cjk if is_cjk and cjk else DEJAVU / LATIN_FONTS[i % len(LATIN_FONTS)]
        assert font is not None
        samples.append(
            Sample(
                name=f"phrase-{i:03d}.png",
                image=render(text, font, size, background, angle, seed=i),
                phrases=[text],
                condition={
                    "size": f"{size}px",
                    "background": background,
                    "rotation": "straight" if angle == 0 else "rotated",
                    "script": "chinese" if is_cjk else "latin",
                },
            )
        )
    rng = np.random.default_rng(11)
    for i in range(screenshots):
        code = "".join(rng.choice(list("ABCDEFGHJKLMNPQRSTUVWXYZ23456789"), size=8))
        lines = [
            f"Network: Home-{1000 + i}",
            f"WiFi-Password: {code}",
            f"Updated 0{1 + i % 9}.0{1 + i % 8}.2024 14:{10 + i}",
            f"Storage used {20 + i} GB of 64 GB",
            "Automatic updates: On",
        ]
        samples.append(
            Sample(
                name=f"screen-{i:03d}.png",
                image=screenshot(100 + i, lines),
                phrases=[lines[0], lines[1]],
                condition={"kind": "screenshot"},
            )
        )
    for i in range(blanks):
        samples.append(
            Sample(
                name=f"photo-{i:03d}.jpg",
                image=natural_image(320, 240, seed=1000 + i),
                phrases=[],
                condition={"kind": "no text"},
            )
        )
    return samples


def save(samples: list[Sample], folder: Path) -> dict[str, Sample]:
    """Write the set to ``folder``; its samples by absolute path."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for sample in samples:
        path = folder / sample.name
        sample.image.save(path, quality=92) if path.suffix == ".jpg" else sample.image.save(path)
        out[str(path.resolve())] = sample
    return out
