"""Shared fixtures: a tiny random-weight CLIP exported by our own code, and its reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagefind.models import ClipModel, load_model
from tests.modelkit import random_checkpoint
from tests.pg import pg_server, pg_url, store  # noqa: F401 - fixtures: PostgreSQL, stores

OUTPUT = Path(__file__).resolve().parents[1] / "test-output"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A transformers CLIP checkpoint with random weights and CLIP's real vocabulary."""
    return random_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-clip")


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkpoint exported with `imagefind models export`'s code, dynamic batch."""
    from imagefind.models.export import export_clip

    return export_clip(tiny_checkpoint, tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path) -> ClipModel:
    return load_model(str(tiny_model_dir))


@pytest.fixture(scope="session")
def reference(tiny_checkpoint: Path):
    """The same weights in transformers: the ground truth our ONNX path must equal."""
    from transformers import CLIPModel, CLIPTokenizer
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    model = CLIPModel.from_pretrained(tiny_checkpoint).eval()
    tokenizer = CLIPTokenizer.from_pretrained(tiny_checkpoint)
    processor = CLIPImageProcessorPil.from_pretrained(tiny_checkpoint)
    return model, tokenizer, processor


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT


SHAPES = ("circle", "square", "triangle")
COLOURS = {
    "red": (220, 30, 30), "green": (30, 180, 40), "blue": (30, 60, 220), "yellow": (240, 220, 20),
    "purple": (140, 40, 160), "orange": (250, 140, 10), "black": (10, 10, 10),
    "cyan": (20, 200, 210),
}


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """A folder of distinct coloured shapes plus the awkward cases: an exact copy, an
    EXIF-rotated photo, a corrupt JPEG, a non-image with an image name, hidden junk."""
    from PIL import Image

    from tests.synth import natural_image, shape_image

    root = tmp_path / "photos"
    (root / "shapes").mkdir(parents=True)
    for i, (name, rgb) in enumerate(COLOURS.items()):
        for j, shape in enumerate(SHAPES):
            shape_image(rgb, shape, seed=i * 3 + j).save(root / "shapes" / f"{name}-{shape}.png")
    trip = root / "trip"
    trip.mkdir()
    for i in range(6):
        natural_image(640, 480, seed=100 + i).save(trip / f"IMG_{i:04d}.jpg", quality=90)
    (trip / "IMG_0000-copy.jpg").write_bytes((trip / "IMG_0000.jpg").read_bytes())
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways, shown upright
    natural_image(480, 640, seed=200).save(trip / "rotated.jpg", exif=exif)
    good = (trip / "IMG_0001.jpg").read_bytes()
    (trip / "corrupt.jpg").write_bytes(good[: len(good) // 3])
    (trip / "notes.jpg").write_text("this is a text file with an image name")
    (root / ".hidden").mkdir()
    natural_image(64, 64, seed=1).save(root / ".hidden" / "skip.jpg")
    (root / "@eaDir").mkdir()
    natural_image(64, 64, seed=2).save(root / "@eaDir" / "thumb.jpg")
    return root


PHOTO_COUNT = len(COLOURS) * len(SHAPES) + 6 + 1 + 1  # shapes, trip, copy, rotated
