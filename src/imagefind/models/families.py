"""Text-encoder families of the model zoo, told apart by the model directory itself.

The text graph's inputs and ``config.json``'s ``text_cfg`` (open_clip's model config) say how
a query must be prepared, never the model's name:

- ``text`` input, open_clip's own text tower (OpenAI CLIP, LAION…): tokenizer.json as is;
  pools at the end-of-text token, so trailing padding may be trimmed.
- ``text`` input with ``tokenizer_kwargs.clean`` (SigLIP, SigLIP2: ``canonicalize``): the text
  is cleaned as open_clip cleans it; SigLIP pools at the last position (``pool_type: last``),
  so its padding is part of the input.
- ``text`` input with an NLLB ``hf_tokenizer_name``/``hf_model_name`` (NLLB-CLIP): the
  FLORES-200 code of the query's language glued before the text.
- ``input_ids`` and ``attention_mask`` inputs (M-CLIP): both fed, mask-mean pooled inside.
"""

from __future__ import annotations

import html
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagefind.errors import ModelError
from imagefind.models.languages import to_flores

CLIP_INPUTS = ("text",)
MASKED_INPUTS = ("input_ids", "attention_mask")
CLEAN_MODES = ("canonicalize", "lower", "whitespace")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


@dataclass(frozen=True)
class TextFamily:
    """How one model's texts become graph inputs."""

    name: str
    inputs: tuple[str, ...]
    clean: str | None = None
    """open_clip's clean function (``tokenizer_kwargs.clean``), or None: tokenizer.json alone."""
    trim: bool = False
    """The text tower pools at the end-of-text token: trailing padding never matters."""
    language_prefix: bool = False
    """NLLB-CLIP: a FLORES-200 code glued before each text."""

    def language(self, lang: str | None, model: str) -> str | None:
        """The code this family puts before a text, or None where it takes no language."""
        return to_flores(lang, model) if self.language_prefix else None

    def prepare(self, texts: Sequence[str], lang: str | None, model: str) -> list[str]:
        """The texts as the tokenizer must see them: cleaned, then prefixed."""
        prefix = self.language(lang, model) or ""
        return [prefix + clean_text(t, self.clean) if isinstance(t, str) else t for t in texts]


def clean_text(text: str, mode: str | None) -> str:
    """open_clip's ``get_clean_fn(mode)`` (open_clip/tokenizer.py) without ftfy: ``basic_clean``
    (double HTML unescape, strip), then ``canonicalize_text`` (``_`` to space, ASCII
    punctuation dropped, lower-case, whitespace collapsed), ``lower`` or ``whitespace``."""
    if mode is None:
        return text
    text = html.unescape(html.unescape(text)).strip()
    if mode == "canonicalize":
        text = text.replace("_", " ").translate(_PUNCTUATION).lower()
    elif mode == "lower":
        text = text.lower()
    return " ".join(text.split()).strip()


def _names_nllb(text_cfg: Mapping[str, Any]) -> bool:
    return any(
        "nllb" in str(text_cfg.get(key) or "").lower()
        for key in ("hf_tokenizer_name", "hf_model_name")
    )


def detect(config: Mapping[str, Any], inputs: Sequence[str], model: Path) -> TextFamily:
    """The family of a model from its ``config.json`` and its text graph's input names."""
    text_cfg = config.get("text_cfg") or {}
    if not isinstance(text_cfg, Mapping):
        raise ModelError(f"{model}/config.json: 'text_cfg' must be an object")
    names = set(inputs)
    if names == set(MASKED_INPUTS):
        return TextFamily("M-CLIP", MASKED_INPUTS)
    if names != set(CLIP_INPUTS):
        raise ModelError(
            f"{model}/textual/model.onnx: text graph inputs {sorted(names)} fit no known "
            "family: expected an input named 'text' (OpenAI CLIP, OpenCLIP, SigLIP, NLLB-CLIP) "
            "or 'input_ids' and 'attention_mask' (M-CLIP); re-export the model with "
            "'imagefind models export'"
        )
    kwargs = text_cfg.get("tokenizer_kwargs") or {}
    clean = kwargs.get("clean") if isinstance(kwargs, Mapping) else None
    if clean is not None and clean not in CLEAN_MODES:
        raise ModelError(
            f"{model}/config.json: text_cfg.tokenizer_kwargs.clean {clean!r} is not one of "
            f"{', '.join(CLEAN_MODES)}"
        )
    hf_tower = bool(text_cfg.get("hf_model_name"))
    if _names_nllb(text_cfg):
        # open_clip's HFTokenizer cleans whitespace unless told otherwise.
        return TextFamily("NLLB-CLIP", CLIP_INPUTS, clean or "whitespace", language_prefix=True)
    pool = text_cfg.get("pool_type", "argmax")
    if text_cfg.get("hf_tokenizer_name") and clean is None:
        clean = "whitespace"
    name = "SigLIP" if pool == "last" else "OpenCLIP"
    return TextFamily(name, CLIP_INPUTS, clean, trim=pool == "argmax" and not hf_tower)
