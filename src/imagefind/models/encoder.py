"""The CLIP model as imagefind uses it: images and texts in, unit vectors out."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from imagefind.errors import ModelError
from imagefind.models.families import MASKED_INPUTS, TextFamily, detect
from imagefind.models.layout import ModelDir
from imagefind.models.session import MAX_BATCH, OnnxGraph
from imagefind.models.tokenizer import ClipTokenizer

if TYPE_CHECKING:
    from PIL import Image

    from imagefind.models.preprocess import Preprocessor

# The image stack (PIL, our decoder) is imported on first image: a text query never needs it.
ImageInput: TypeAlias = "Image.Image | bytes | str | Path"


class ClipModel:
    """Both encoders of one model directory; sessions load on first use."""

    def __init__(
        self,
        model_dir: ModelDir,
        name: str | None = None,
        *,
        threads: int | None = None,
        providers: list[str] | None = None,
        quick_start: bool = False,
    ) -> None:
        self.dir = model_dir
        self.name = name or str(model_dir.path)
        self.dim = model_dir.embed_dim
        options: dict[str, Any] = {
            "threads": threads,
            "providers": providers,
            "quick_start": quick_start,
        }
        self.visual = OnnxGraph(model_dir.visual_onnx, "image", **options)
        self.textual = OnnxGraph(
            model_dir.textual_onnx, "text", alternative=MASKED_INPUTS, **options
        )
        self._tokenizer: ClipTokenizer | None = None
        self._tokenizer_lock = threading.Lock()

    @cached_property
    def preprocess(self) -> Preprocessor:
        from imagefind.models.preprocess import Preprocessor

        return Preprocessor(self.dir.preprocess)

    @property
    def image_size(self) -> int:
        return self.dir.image_size

    @property
    def draft_side(self) -> int:
        """The smallest side a JPEG may be decoded at (DCT scaling, 1/2 to 1/8): the model's
        input size. Against a full decode: pixels 0.4 grey levels apart on average, image
        vectors at cosine >= 0.999998 (benchmarks on 12 MP and 1.6 MP photos)."""
        return self.dir.image_size

    @property
    def tokenizer(self) -> ClipTokenizer:
        with self._tokenizer_lock:
            if self._tokenizer is None:
                self._tokenizer = ClipTokenizer(
                    self.dir.tokenizer_json, self.dir.context_length, self.dir.pad_token
                )
            return self._tokenizer

    @cached_property
    def text_family(self) -> TextFamily:
        """How this model's texts are prepared, told from its directory (families.py)."""
        family = detect(self.dir.config, self.textual.inputs, self.dir.path)
        length = self.textual.fixed_length
        if length is not None and length != self.dir.context_length:
            raise ModelError(
                f"{self.dir.textual_onnx}: the graph takes {length} tokens, config.json's "
                f"text_cfg.context_length says {self.dir.context_length}; make them agree"
            )
        return family

    def language_key(self, lang: str | None) -> str | None:
        """The FLORES-200 code ``lang`` means to this model, None where the model takes no
        language (caches key query vectors by it). Raises QueryError for an unknown code."""
        return self.text_family.language(lang, self.name)

    def fingerprint(self) -> str:
        return self.dir.fingerprint()

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Embeddings for preprocessed pixels float32 [N, 3, S, S]."""
        s = self.image_size
        if pixels.ndim != 4 or pixels.shape[1:] != (3, s, s):
            raise ModelError(f"pixels must have shape [N, 3, {s}, {s}], got {list(pixels.shape)}")
        return self._checked(self.visual.run(pixels))

    def encode_images(self, images: Sequence[ImageInput]) -> np.ndarray:
        """Embeddings float32 [N, D] for PIL images, encoded bytes or file paths."""
        if len(images) == 0:
            raise ModelError("encode_images: the image list is empty")
        pixels = np.stack([self.preprocess(_as_pil(img, i)) for i, img in enumerate(images)])
        return self.encode_pixels(pixels)

    def encode_texts(self, texts: Sequence[str], lang: str | None = None) -> np.ndarray:
        """Embeddings float32 [N, D]. ``lang`` (BCP-47, e.g. ``de``) is the texts' language
        for models that take one (NLLB-CLIP; default English), ignored by the others.
        Padding is trimmed only where the text tower pools at the end-of-text token (CLIP):
        there trailing padding never changes the result."""
        if isinstance(texts, str):
            texts = [texts]
        if len(texts) == 0:
            raise ModelError("encode_texts: the text list is empty")
        family = self.text_family
        ids, mask = self.tokenizer.encode_masked(family.prepare(texts, lang, self.name))
        if family.inputs == MASKED_INPUTS:
            return self._checked(self.textual.run(ids, mask))
        if not (family.trim and self.textual.dynamic_length):
            return self._checked(self.textual.run(ids))
        lengths = mask.sum(axis=1)
        # Sort by length so each chunk is cut to its own longest real row.
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), MAX_BATCH):
            rows = order[start : start + MAX_BATCH]
            out[rows] = self._checked(self.textual.run(ids[rows, : int(lengths[rows].max())]))
        return out

    def _checked(self, emb: np.ndarray) -> np.ndarray:
        if emb.shape[1] != self.dim:
            raise ModelError(
                f"{self.dir.path}: the graph gives {emb.shape[1]}-d vectors, "
                f"config.json says {self.dim}"
            )
        return emb


def _as_pil(item: ImageInput, index: int) -> Image.Image:
    """Bytes and files go through the same checked decoder as indexing (content sniffing,
    EXIF orientation, size guard), so a query image is seen exactly as an indexed one."""
    from PIL import Image

    from imagefind.images import decode, read_file

    if isinstance(item, Image.Image):
        return item
    if isinstance(item, bytes):
        return decode(item, f"image #{index}").image
    path = Path(item)
    return decode(read_file(path), str(path)).image
