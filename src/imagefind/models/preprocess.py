"""Image preprocessing from ``visual/preprocess_cfg.json``: resize, crop, normalise.

Sizes and crop offsets follow transformers' ``CLIPImageProcessor`` (short side to S with the
long side truncated, crop offset floored), so our pixels match the reference's.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from imagefind.images import to_rgb
from imagefind.models.layout import PreprocessConfig

RESAMPLING = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}


class Preprocessor:
    """Turns any PIL image into the model's normalised CHW float32 input."""

    def __init__(self, config: PreprocessConfig) -> None:
        self.config = config
        self.size = config.size
        self._resample = RESAMPLING[config.interpolation]
        # Fold /255, mean and std into one multiply-add per pixel.
        std = np.asarray(config.std, dtype=np.float32)
        self._scale = (1.0 / (255.0 * std)).astype(np.float32)
        self._offset = (-np.asarray(config.mean, dtype=np.float32) / std).astype(np.float32)

    def resize(self, image: Image.Image) -> Image.Image:
        """The RGB, resized and cropped SxS image."""
        return self.crop(self.scale(image))

    def scale(self, image: Image.Image) -> Image.Image:
        """The RGB image resized as the model sees it, before the centre crop: its short
        side S (or SxS, squashed). Indexing also makes the gallery thumbnail from it."""
        image = to_rgb(image)
        s = self.size
        if self.config.resize_mode == "squash":
            return image.resize((s, s), resample=self._resample)
        w, h = image.size
        if w <= h:
            new_w, new_h = s, int(s * h / w)
        else:
            new_w, new_h = int(s * w / h), s
        if (new_w, new_h) != (w, h):
            image = image.resize((new_w, new_h), resample=self._resample)
        return image

    def crop(self, scaled: Image.Image) -> Image.Image:
        """The centre SxS of a ``scale``d image."""
        s = self.size
        w, h = scaled.size
        if (w, h) == (s, s):
            return scaled
        top, left = (h - s) // 2, (w - s) // 2
        return scaled.crop((left, top, left + s, top + s))

    def keeps_aspect(self) -> bool:
        return self.config.resize_mode != "squash"

    def __call__(self, image: Image.Image) -> np.ndarray:
        """Normalised pixels, float32 [3, S, S]."""
        return self.normalise(self.resize(image))

    def normalise(self, image: Image.Image) -> np.ndarray:
        """Float32 [3, S, S] from an SxS RGB image."""
        arr = np.asarray(image, dtype=np.float32)
        arr = arr * self._scale + self._offset
        return np.ascontiguousarray(arr.transpose(2, 0, 1))

    def batch(self, images: list[Image.Image]) -> np.ndarray:
        return (
            np.stack([self(img) for img in images])
            if images
            else np.zeros((0, 3, self.size, self.size), dtype=np.float32)
        )
